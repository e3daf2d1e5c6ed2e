"""`phatnguoi eval detector`: models side by side on the labelled frames of one split, with speed.

Each model runs through the production path (YoloOnnxDetector on the clip's enforcement zone at the
camera's input width, rider merging on), at a low confidence so AP sees the whole curve. Precision and
recall are reported at each model's operating confidence, chosen on the validation split (best mean F1
over classes) and then applied unchanged to the evaluated split. Speed is the median detector time per
frame, the models interleaved frame by frame (alternating which goes first) so machine noise hits both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.config import DetectorConfig
from detector.dataset import Dataset, Split
from detector.detections import Detections
from detector.evaluate import evaluate
from detector.yolo_onnx import YoloOnnxDetector
from models.registry import ModelEntry, ModelError, Registry, default_registry, file_sha256

DEFAULT_CONFIDENCE = 0.25  # operating confidence when the dataset has no validation targets

Runner = Callable[[npt.NDArray[np.uint8], tuple[int, int, int, int]], Detections]


def _detector(model: str, input_width: int, *, nms_iou: float = 0.5, merge_riders: bool = True) -> Runner:
    """The production detector for a model name, or for a candidate .onnx file (a COCO-class YOLOv8
    export of `phatnguoi train detector` not yet in the manifest: it is entered in a private registry
    with its own checksum, as a rider + bike model like the shipped one)."""
    path = Path(model)
    registry = default_registry()
    name = model
    if path.suffix == ".onnx":
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        coco = registry.entry("yolov8n-coco")
        name = f"candidate:{path.name}"
        candidate = ModelEntry(
            name=name,
            task="detect",
            file=path.name,
            sha256=file_sha256(path),
            license="candidate (not in the manifest)",
            classes=coco.classes,
            rider_boxes=True,  # candidates come from `phatnguoi train detector`: rider + bike boxes
        )
        registry = Registry((*registry, candidate))
    cfg = DetectorConfig(
        model=name,
        model_path=path if path.suffix == ".onnx" else None,
        input_width=input_width,
        confidence=0.05,
        iou=nms_iou,
        merge_riders=merge_riders,
        threads=2,
    )
    det = YoloOnnxDetector(cfg, registry)

    def run(image: npt.NDArray[np.uint8], zone: tuple[int, int, int, int]) -> Detections:
        return det.detect_batch([image], [zone])[0]

    return run


def eval_detectors(
    dataset: Dataset,
    videos: Path,
    models: list[str],
    split: Split = "test",
    *,
    input_width: int = 640,
    iou: float = 0.5,
    confidence: float | None = None,
    nms_iou: float = 0.5,
    merge_riders: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Evaluate each model on `split` (operating confidence from `val` unless given) and time them."""
    zones = {n: c.zone for n, c in dataset.spec.clips.items()}
    lines = {n: c.stop_line for n, c in dataset.spec.clips.items()}
    progress(f"decoding labelled frames ({split}, val)")
    test = dataset.decoded(videos, (split,))
    val = dataset.decoded(videos, ("val",)) if confidence is None else []
    if not test:
        raise ValueError(f"no labelled frames in split '{split}' of {dataset.path}")
    runners = {m: _detector(m, input_width, nms_iou=nms_iou, merge_riders=merge_riders) for m in models}
    result: dict[str, Any] = {
        "dataset": str(dataset.path),
        "split": split,
        "frames": len(test),
        "clips": sorted({f.clip for f, _ in test}),
        "input_width": input_width,
        "iou": iou,
        "nms_iou": nms_iou,
        "merge_riders": merge_riders,
        "models": {},
    }
    for name, run in runners.items():
        progress(f"evaluating {name}")
        classes = dataset.spec.classes
        conf, conf_from = confidence, "given"
        if conf is None:
            on_val = evaluate(val, run, zones, lines, classes, iou) if val else None
            if on_val is not None and any(p.n_gt for p in on_val.per_class.values()):
                conf, conf_from = on_val.best_confidence(), "val (best mean F1)"
            else:
                conf, conf_from = DEFAULT_CONFIDENCE, f"default {DEFAULT_CONFIDENCE} (no val targets)"
        report = evaluate(test, run, zones, lines, classes, iou).report(conf)
        report["confidence_from"] = conf_from
        result["models"][name] = report
    progress("timing (interleaved)")
    times: dict[str, list[float]] = {m: [] for m in models}
    for i, (label, image) in enumerate(test):
        order = models if i % 2 == 0 else models[::-1]
        for m in order:
            t0 = time.perf_counter()
            runners[m](image, zones[label.clip])
            times[m].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(times[models[-1]])
    result["speed"] = {
        m: {
            "median_ms": round(statistics.median(t), 2),
            "ratio_to_last": round(statistics.median(t) / base, 3),
        }
        for m, t in times.items()
    }
    return result
