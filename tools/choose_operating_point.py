"""Choose a detector's operating confidence on the validation frames, by a rule fixed in advance (JSON).

A model trained on train + val cannot choose its own operating point on val. Its train-only twin (the
same recipe on the train split) can: run this on the twin, then evaluate the train + val model once on
test at the confidence it prints (`phatnguoi eval detector --confidence C`). The rule: the lowest
confidence of the grid at which the class's precision on val reaches the target (precision first: a
false box can become a false accusation).

    python tools/choose_operating_point.py runs/sweep/F07.onnx --target 0.90
    python tools/choose_operating_point.py runs/sweep/F07.onnx --nms-iou 0.45 --no-merge-riders

Issue 12, 2026-11-23: the twin F07 reached val motorcycle precision 0.9029 at 0.30 (recall 0.830).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from detector.dataset import Dataset
from detector.evaluate import evaluate
from models.registry import ModelError
from phatnguoi.detector_eval import _detector

ROOT = Path(__file__).resolve().parents[1]
GRID = tuple(float(c) for c in np.round(np.arange(0.10, 0.801, 0.05), 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model name or .onnx path (the train-only twin)")
    ap.add_argument("--cls", default="motorcycle", help="class whose precision is targeted")
    ap.add_argument("--target", type=float, default=0.90, help="precision to reach on val")
    ap.add_argument("--split", default="val", choices=("train", "val"), help="never test")
    ap.add_argument("--nms-iou", type=float, default=0.5)
    ap.add_argument(
        "--merge-riders",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fold persons into two-wheelers where the model needs it (never for rider + bike models)",
    )
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "vn_traffic" / "clips.yaml")
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    args = ap.parse_args()
    try:
        dataset = Dataset(args.data)
        run = _detector(args.model, 640, nms_iou=args.nms_iou, merge_riders=args.merge_riders)
        frames = dataset.decoded(args.videos, (args.split,))
    except (ModelError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    zones = {n: c.zone for n, c in dataset.spec.clips.items()}
    lines = {n: c.stop_line for n, c in dataset.spec.clips.items()}
    ev = evaluate(frames, run, zones, lines, dataset.spec.classes, 0.5)
    curve = {c: ev.report(c)["classes"][args.cls] for c in GRID}  # type: ignore[index]
    reached = [c for c in GRID if float(curve[c]["precision"]) >= args.target]
    print(
        json.dumps(
            {
                "model": args.model,
                "split": args.split,
                "frames": len(frames),
                "class": args.cls,
                "target_precision": args.target,
                "nms_iou": args.nms_iou,
                "merge_riders": args.merge_riders,
                "confidence": reached[0] if reached else None,
                "curve": {str(c): {k: curve[c][k] for k in ("precision", "recall")} for c in GRID},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
