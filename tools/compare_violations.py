"""The violations pipeline's own measures on the Giang Vo clip for several detector models (JSON).

For each model, `phatnguoi run` processes the clip with the camera config of
examples/cameras/hanoi_giangvo_langha.yaml (its detector model replaced), and the stop-line crossings and
red-light violations are matched against the by-eye ground truth of
tests/fixtures/violations/hanoi_giangvo_langha_events.yaml (frames within 5, one to one), as in
tests/cli/test_run.py.

    python tools/compare_violations.py yolov8n-coco yolov8n-vn-traffic

Models are manifest names (their files are checked against the manifest's sha256).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from violations.scoring import match_frames as match

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "videos" / "hanoi_giangvo_langha.mp4"
FIXTURE = ROOT / "tests" / "fixtures" / "violations" / "hanoi_giangvo_langha_events.yaml"


def measure(model: str, work: Path, n: int) -> dict[str, object]:
    camera = yaml.safe_load((ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml").read_text())
    camera["detector"]["model"] = model
    cfg = work / f"{n}.yaml"
    cfg.write_text(yaml.safe_dump(camera))
    out = work / str(n)
    cmd = [sys.executable, "-m", "phatnguoi.cli", "run", "--source", str(CLIP), "--scene"]
    cmd += ["examples/scenes/hanoi_giangvo_langha.yaml", "--config", str(cfg), "--out", str(out)]
    cmd += ["--no-plates", "--start-time", "2022-09-25T09:15:40Z", "--json"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{model}: phatnguoi run failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    truth = yaml.safe_load(FIXTURE.read_text())
    labelled = [c["frame"] for c in truth["crossings"]]
    red = [c["frame"] for c in truth["crossings"] if c["light"] == "red" and c["continues"]]
    crossings = [json.loads(x)["frame_index"] for x in (out / "crossings.jsonl").read_text().splitlines()]
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    reds = [e["details"]["crossed_frame_index"] for e in events if e["rule"] == "red_light"]
    hc, hr = match(crossings, labelled), match(reds, red)
    return {
        "crossings": {"found": len(crossings), "labelled": len(labelled), "matched": hc},
        "crossing_precision": round(hc / max(len(crossings), 1), 3),
        "crossing_recall": round(hc / len(labelled), 3),
        "red_light": {"found": len(reds), "labelled": len(red), "matched": hr},
        "red_light_precision": round(hr / max(len(reds), 1), 3),
        "red_light_recall": round(hr / len(red), 3),
        "events_per_rule": json.loads((out / "summary.json").read_text())["events_per_rule"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "models", nargs="*", default=["yolov8n-coco", "yolov8n-vn-traffic"], help="Manifest model names."
    )
    models = parser.parse_args().models
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps({m: measure(m, Path(tmp), n) for n, m in enumerate(models)}, indent=1))


if __name__ == "__main__":
    main()
