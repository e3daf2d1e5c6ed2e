"""Plate-detection evaluation: recall and precision at an IoU threshold, and milliseconds per image.

Reads a labels CSV with one row per plate box (columns ``file,x1,y1,x2,y2`` plus any others, such as
``text`` or ``country``, which are ignored), runs a detector on each image and matches its boxes to the
labelled ones. No printing: the CLI (``phatnguoi plates …`` / ``bench plates``) formats the result.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from plates.detect import PlateBoxes, box_iou
from plates.errors import PlateError

logger = logging.getLogger(__name__)

_REQUIRED = ("file", "x1", "y1", "x2", "y2")


class ImageDetector(Protocol):
    """Anything that finds plates in a whole image (e.g. `plates.detect.PlateDetector`)."""

    def detect(self, image: npt.NDArray[np.uint8]) -> PlateBoxes:
        """Plate boxes in the image's pixels."""
        ...


@dataclass(frozen=True, slots=True)
class DetEvalRow:
    """Result for one image.

    Attributes:
        file: image file name relative to the root.
        labels: number of labelled plates.
        detections: number of boxes the detector returned.
        matched: labelled plates matched by a detection (IoU >= threshold, one-to-one).
        ious: for each labelled plate (CSV order), the IoU of the detection matched to it, or its best
            IoU with any detection when unmatched (0 when there is none).
        ms: detector time for this image (reading the file excluded).
    """

    file: str
    labels: int
    detections: int
    matched: int
    ious: tuple[float, ...]
    ms: float


@dataclass(frozen=True, slots=True)
class DetEvalResult:
    """Totals over a labels file. Precision is indicative when labels are not exhaustive."""

    iou_threshold: float
    images: int
    labels: int
    detections: int
    matched: int
    recall: float
    precision: float
    ms_median: float
    ms_p90: float
    rows: tuple[DetEvalRow, ...]


def read_box_labels(labels_csv: Path) -> dict[str, npt.NDArray[np.float32]]:
    """Labelled boxes per file, in CSV order: ``{file: (K, 4) float32 xyxy}``.

    Raises:
        PlateError: the file cannot be read, lacks a required column, or has a non-numeric box.
    """
    try:
        with labels_csv.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise PlateError(f"{labels_csv}: missing column(s) {', '.join(missing)}")
            boxes: dict[str, list[list[float]]] = {}
            for line, row in enumerate(reader, start=2):
                try:
                    box = [float(row[c]) for c in _REQUIRED[1:]]
                except (TypeError, ValueError):
                    raise PlateError(f"{labels_csv}:{line}: box is not four numbers") from None
                boxes.setdefault(row["file"], []).append(box)
    except OSError as e:
        raise PlateError(f"cannot read labels {labels_csv}: {e}") from e
    return {f: np.asarray(b, np.float32).reshape(-1, 4) for f, b in boxes.items()}


def match_boxes(
    labels_xyxy: npt.NDArray[np.float32],
    detections: PlateBoxes,
    iou_threshold: float,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float32]]:
    """One-to-one matching, detections taken best first, each to its best free label (as in COCO).

    Args:
        labels_xyxy: (K, 4) labelled boxes.
        detections: the detector's boxes (N of them).
        iou_threshold: minimum IoU of a match.

    Returns:
        matched (K,) bool and iou (K,) float32: the matched detection's IoU, or for an unmatched
        label its best IoU with any detection.
    """
    iou = box_iou(labels_xyxy, detections.xyxy)  # (K, N)
    k = labels_xyxy.shape[0]
    matched = np.zeros(k, bool)
    best = iou.max(axis=1) if iou.shape[1] else np.zeros(k, np.float32)
    matched_iou = best.astype(np.float32)
    for j in np.argsort(-detections.confidence, kind="stable"):
        free = np.where(matched, -1.0, iou[:, j])
        i = int(free.argmax()) if k else -1
        if i >= 0 and free[i] >= iou_threshold:
            matched[i] = True
            matched_iou[i] = iou[i, j]
    return matched, matched_iou


def _images(
    labels: dict[str, npt.NDArray[np.float32]], root: Path
) -> Iterator[tuple[str, npt.NDArray[np.uint8]]]:
    import cv2

    for name in labels:
        image = cv2.imread(str(root / name), cv2.IMREAD_COLOR)
        if image is None:
            raise PlateError(f"cannot read image {root / name}")
        yield name, np.asarray(image, np.uint8)


def evaluate_detection(
    labels_csv: Path,
    root: Path,
    detector: ImageDetector,
    iou: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> DetEvalResult:
    """Recall, precision and time of a plate detector on labelled whole images.

    Args:
        labels_csv: CSV with columns ``file,x1,y1,x2,y2`` (more columns are ignored), one row per plate.
        root: folder the ``file`` names are relative to.
        detector: runs on each image; timed around its `detect` call only.
        iou: IoU a detection needs to count as finding a labelled plate.
        progress: called with (done, total) after each image, e.g. to drive a progress bar.

    Returns:
        `DetEvalResult` with one `DetEvalRow` per image, in CSV order of first appearance.

    Raises:
        PlateError: unreadable labels or image.
        models.runtime.InferenceError: the detector failed.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    labels = read_box_labels(labels_csv)
    rows: list[DetEvalRow] = []
    for done, (name, image) in enumerate(_images(labels, root), start=1):
        start = time.perf_counter()
        found = detector.detect(image)
        ms = (time.perf_counter() - start) * 1000
        matched, ious = match_boxes(labels[name], found, iou)
        rows.append(
            DetEvalRow(name, len(ious), len(found), int(matched.sum()), tuple(float(v) for v in ious), ms)
        )
        if progress is not None:
            progress(done, len(labels))
    n_labels = sum(r.labels for r in rows)
    n_det = sum(r.detections for r in rows)
    n_matched = sum(r.matched for r in rows)
    times = np.array([r.ms for r in rows]) if rows else np.zeros(1)
    result = DetEvalResult(
        iou_threshold=iou,
        images=len(rows),
        labels=n_labels,
        detections=n_det,
        matched=n_matched,
        recall=n_matched / n_labels if n_labels else 0.0,
        precision=n_matched / n_det if n_det else 0.0,
        ms_median=float(np.median(times)),
        ms_p90=float(np.percentile(times, 90)),
        rows=tuple(rows),
    )
    logger.info(
        "%s: recall %.3f precision %.3f over %d images",
        labels_csv,
        result.recall,
        result.precision,
        len(rows),
    )
    return result
