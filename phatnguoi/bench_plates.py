"""`phatnguoi bench plates`: plate reading speed and accuracy on the shared sets, beside the raw
PP-OCRv6 baselines, all measured in one run on this machine.

- OCR on `vn_gold` crops: ours (line finding, rectification, batched rec, grammar) vs PP-OCRv6 rec on
  the whole crop and PP-OCRv6 det + rec (no grammar); exact match overall / one-line / two-line,
  valid-but-wrong, ms median and p95, and ms of two-line crops alone.
- One vehicle: the COCO detector finds the vehicle in each OpenALPR photo (not timed), then plate
  detection on the vehicle crop + OCR is timed (detect, OCR, total; median and p95).
- Whole images: `vn_scenes` end to end (detect + read), plate detection recall on `vn_scenes` and
  `openalpr`.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2) if values else 0.0,
        "p95": round(_pct(values, 95), 2),
    }


def bench_plates(
    data: Path, threads: int = 2, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run every measurement; `data` is the shared ``plates`` folder."""
    from detector import DetectorConfig
    from detector.yolo_onnx import YoloOnnxDetector
    from plates.anpr import PlateScanner, evaluate_end_to_end
    from plates.det_eval import evaluate_detection
    from plates.detect import PlateDetector
    from plates.eval import baseline_readers, evaluate_all
    from plates.reader import PlateReader, PlateReaderConfig, load_image

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    reader = PlateReader(PlateReaderConfig(threads=threads))
    plate_detector = PlateDetector()
    result: dict[str, Any] = {"threads": threads}

    say("OCR on vn_gold crops: ours and the raw PP-OCRv6 baselines")
    gold = data / "vn_gold"
    readers = {"ours": reader, **baseline_readers(threads)}
    evals = evaluate_all(gold / "labels.csv", gold, readers, crop=True)
    result["ocr_vn_gold"] = {name: ev.summary() for name, ev in evals.items()}
    for name, ev in evals.items():
        two = [r.ms for r in ev.rows if r.lines_expected == 2]
        result["ocr_vn_gold"][name]["two_line_ms"] = _ms(two)

    say("one vehicle: plate detection on the vehicle crop + OCR (OpenALPR photos)")
    vehicles = YoloOnnxDetector(DetectorConfig(classes=("car", "bus", "truck"), merge_riders=False))
    alpr = data / "openalpr"
    det_ms: list[float] = []
    ocr_ms: list[float] = []
    total_ms: list[float] = []
    with (alpr / "labels.csv").open(newline="", encoding="utf-8") as fh:
        files = sorted({row["file"] for row in csv.DictReader(fh)})
    scanner = PlateScanner(plate_detector, reader)
    for file in files:
        image = load_image(alpr / file)
        found = vehicles.detect(image)
        if len(found) == 0:
            continue
        box = found.xyxy[int(np.argmax(found.area))]
        t0 = time.perf_counter()
        boxes = plate_detector.detect_in_vehicle(image, box)
        t1 = time.perf_counter()
        findings = scanner.read_boxes(image, boxes)
        t2 = time.perf_counter()
        det_ms.append((t1 - t0) * 1000)
        if findings:
            ocr_ms.append((t2 - t1) * 1000)
        total_ms.append((t2 - t0) * 1000)
    result["vehicle_crop_ms"] = {
        "vehicles": len(det_ms),
        "plate_detect": _ms(det_ms),
        "ocr": _ms(ocr_ms),
        "total": _ms(total_ms),
    }

    say("whole images: vn_scenes end to end")
    scenes = data / "vn_scenes"
    e2e = evaluate_end_to_end(scenes / "labels.csv", scenes, scanner)
    result["end_to_end_vn_scenes"] = e2e.summary()

    say("plate detection recall: vn_scenes and openalpr")
    result["plate_detection"] = {}
    for name in ("vn_scenes", "openalpr"):
        folder = data / name
        det = evaluate_detection(folder / "labels.csv", folder, plate_detector)
        result["plate_detection"][name] = {
            "recall": round(det.recall, 4),
            "precision_indicative": round(det.precision, 4),
            "ms_median": round(det.ms_median, 1),
        }
    return result
