"""Plates end to end: find plates in an image (or on one vehicle), read each, decide its colour.

`PlateScanner` composes the plate detector (`plates.detect`), the reader (`plates.reader`) and the
colour classifier (`plates.colour`); each is injectable. On one vehicle of a frame (`scan_vehicle`) it
keeps only the plates that are that vehicle's, not a neighbour's showing in its box.
`evaluate_end_to_end` scores it on a set of whole images with labelled plate boxes and texts
(`vn_scenes`): a labelled plate counts as read only when a detected box matches it (IoU ≥ 0.5) and its
reading equals the label.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plates.colour import ColourReading, plate_colour
from plates.detect import PlateBoxes, PlateDetector, plate_owners
from plates.errors import PlateError
from plates.eval import LabelRow, canonical, cut_box, read_labels
from plates.reader import PlateReader, load_image
from plates.types import PlateReading

UInt8Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class PlateFinding:
    """One plate found and read."""

    box_xyxy: tuple[float, float, float, float]
    detector_confidence: float
    reading: PlateReading
    colour: ColourReading
    crop: UInt8Image

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (for the CLI and the evidence manifest)."""
        r = self.reading
        return {
            "box": [round(v, 1) for v in self.box_xyxy],
            "detector_confidence": round(self.detector_confidence, 3),
            "text": r.compact,
            "formatted": r.text,
            "valid": r.valid,
            "readable": r.readable,
            "confidence": round(r.confidence, 4),
            "lines": r.lines,
            "colour": self.colour.colour.value,
            "raw": r.raw,
            "alternatives": [[f, round(p, 4)] for f, p in r.alternatives],
            "ms": round(r.times.total_ms, 2),
        }


class PlateScanner:
    """Detect → cut with a margin → read → colour."""

    def __init__(
        self,
        detector: PlateDetector | None = None,
        reader: PlateReader | None = None,
        margin: float = 0.1,
        max_plates: int = 5,
    ) -> None:
        self.detector = detector or PlateDetector()
        self.reader = reader or PlateReader()
        self.margin = margin
        self.max_plates = max_plates

    def read_boxes(self, image: UInt8Image, boxes: PlateBoxes) -> list[PlateFinding]:
        """Read the plates at given boxes (the best `max_plates`) of an image."""
        findings = []
        for k in range(min(len(boxes), self.max_plates)):
            box = tuple(float(v) for v in boxes.xyxy[k])
            xyxy = (box[0], box[1], box[2], box[3])
            try:
                crop = cut_box(image, xyxy, self.margin)
            except PlateError:
                continue  # a box clipped away at the frame edge
            reading = self.reader.read(crop)
            findings.append(PlateFinding(xyxy, float(boxes.confidence[k]), reading, plate_colour(crop), crop))
        return findings

    def scan(self, image: UInt8Image) -> list[PlateFinding]:
        """Every plate in a whole image, best detection first."""
        return self.read_boxes(image, self.detector.detect(image))

    def scan_vehicle(
        self, frame: UInt8Image, vehicle_xyxy: npt.ArrayLike, others: npt.ArrayLike | None = None
    ) -> list[PlateFinding]:
        """This vehicle's plates in a frame, best detection first (boxes in frame coordinates).

        Of the plates seen in the vehicle's box, only those `plate_owners` gives to it among `others`,
        the frame's other vehicles: a neighbour's plate showing through is not its. A plate of it whose
        reading is also read on a plate that is not its (a duplicate box, or the same plate given to
        nobody) is left out too: one plate text on two vehicles of a frame belongs to neither for sure.

        Args:
            frame: (H, W, 3) uint8 BGR whole frame.
            vehicle_xyxy: (4,) the vehicle's box.
            others: (N, 4) the boxes of the frame's other vehicles; None when there are none.

        Raises:
            PlateError: bad frame, or a vehicle box that is degenerate or outside the frame.
        """
        findings = self.read_boxes(frame, self.detector.detect_in_vehicle(frame, vehicle_xyxy))
        if not findings:
            return findings
        box = np.asarray(vehicle_xyxy, np.float32).reshape(1, 4)  # 4 finite numbers: the detector checked
        rest = np.zeros((0, 4), np.float32) if others is None else np.asarray(others, np.float32)
        vehicles = np.vstack([box, rest.reshape(-1, 4)])
        owners = plate_owners(
            [f.box_xyxy for f in findings], vehicles, below=self.detector.config.crop_margin
        )
        claimed = {
            f.reading.compact for f, o in zip(findings, owners, strict=True) if o != 0 and f.reading.compact
        }
        return [
            f
            for f, o in zip(findings, owners, strict=True)
            if o == 0 and (f.reading.compact is None or f.reading.compact not in claimed)
        ]

    def read_crop(self, crop: UInt8Image) -> PlateFinding:
        """A crop that is already one plate: read it as it is."""
        h, w = crop.shape[:2]
        return PlateFinding(
            (0.0, 0.0, float(w), float(h)), 1.0, self.reader.read(crop), plate_colour(crop), crop
        )


@dataclass(frozen=True, slots=True)
class EndToEndRow:
    """One labelled plate of a whole-image set."""

    file: str
    expected: str
    detected: bool
    got: str
    ok: bool
    iou: float
    ms: float


@dataclass(frozen=True, slots=True)
class EndToEndResult:
    """End-to-end accuracy on labelled plates that have text."""

    rows: tuple[EndToEndRow, ...]
    plates: int
    detected: int
    exact: int
    wrong_valid: int
    ms_per_image_median: float

    @property
    def exact_rate(self) -> float:
        return self.exact / self.plates if self.plates else 0.0

    @property
    def detection_recall(self) -> float:
        return self.detected / self.plates if self.plates else 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "plates_with_text": self.plates,
            "detected": self.detected,
            "detection_recall": round(self.detection_recall, 4),
            "exact": self.exact,
            "exact_rate": round(self.exact_rate, 4),
            "valid_but_wrong": self.wrong_valid,
            "ms_per_image_median": round(self.ms_per_image_median, 1),
        }


def evaluate_end_to_end(
    labels_csv: Path,
    root: Path,
    scanner: PlateScanner,
    iou_threshold: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> EndToEndResult:
    """Scan each image of a ``file,x1,y1,x2,y2,text`` CSV and score the labelled plates with text."""
    from detector.detections import box_iou

    labels = read_labels(labels_csv)
    if any(r.box is None for r in labels):
        raise PlateError(
            f"{labels_csv}: an end-to-end evaluation needs the plate boxes (columns x1, y1, x2, y2);"
            " for a CSV of plate crops, evaluate the crops"
        )
    by_file: dict[str, list[LabelRow]] = {}
    for row in labels:
        by_file.setdefault(row.file, []).append(row)
    rows: list[EndToEndRow] = []
    times: list[float] = []
    for n, (file, plates) in enumerate(by_file.items()):
        image = load_image(root / file)
        t0 = time.perf_counter()
        found = scanner.scan(image)
        ms = (time.perf_counter() - t0) * 1000
        times.append(ms)
        gt = np.array([p.box for p in plates], np.float32).reshape(-1, 4)
        det = np.array([f.box_xyxy for f in found], np.float32).reshape(-1, 4)
        iou = box_iou(gt, det)
        for i, p in enumerate(plates):
            expected = p.text  # canonical; rows a person could not read are not in `labels`
            j = int(iou[i].argmax()) if iou.shape[1] else -1
            best = float(iou[i, j]) if j >= 0 else 0.0
            detected = best >= iou_threshold
            got = canonical(found[j].reading.compact or "") if detected else ""
            rows.append(
                EndToEndRow(file, expected, detected, got, got == expected, round(best, 3), round(ms, 1))
            )
        if progress is not None:
            progress(n + 1, len(by_file))
    wrong_valid = sum(1 for r in rows if r.got and not r.ok)
    return EndToEndResult(
        rows=tuple(rows),
        plates=len(rows),
        detected=sum(r.detected for r in rows),
        exact=sum(r.ok for r in rows),
        wrong_valid=wrong_valid,
        ms_per_image_median=statistics.median(times) if times else 0.0,
    )
