"""Detector evaluation on labelled frames: precision, recall and AP@0.5 per class, near the stop line too.

Matching is the usual greedy one: per frame and class, predictions in descending confidence take the
unmatched ground-truth box with the highest IoU ≥ the threshold. Labels are exhaustive only inside each
clip's enforcement zone, so ground truth and predictions are both restricted to it (a box counts when
at least 40 % of it lies inside). AP is the all-point interpolated area under the precision-recall curve
(PASCAL VOC 2010+ / COCO@0.5 style).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from detector.dataset import LabelledFrame, crop_boxes
from detector.detections import Detections, box_iou

#: A box whose bottom-centre lies within this fraction of the zone height of the stop line is "near" it.
NEAR_LINE_FRACTION = 0.15
#: Boxes smaller than this (frame pixels, height) are neither targets nor false positives.
MIN_HEIGHT_PX = 8.0


def match_pairs(
    pred: npt.NDArray[np.float32],
    conf: npt.NDArray[np.float32],
    gt: npt.NDArray[np.float32],
    iou_threshold: float,
) -> npt.NDArray[np.int64]:
    """For each prediction (N,), the index of the ground-truth box (M, 4) it matched, or -1.

    Greedy by confidence: each prediction takes the free target with the highest IoU ≥ the threshold.
    """
    out = np.full(len(pred), -1, np.int64)
    if len(pred) == 0 or len(gt) == 0:
        return out
    iou = box_iou(pred, gt)
    taken = np.zeros(len(gt), bool)
    for i in np.argsort(-conf, kind="stable"):
        cand = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            out[i] = j
            taken[j] = True
    return out


def match(
    pred: npt.NDArray[np.float32],
    conf: npt.NDArray[np.float32],
    gt: npt.NDArray[np.float32],
    iou_threshold: float,
) -> npt.NDArray[np.bool_]:
    """Which predictions (N,) are true positives against ground truth (M, 4), greedy by confidence."""
    return match_pairs(pred, conf, gt, iou_threshold) >= 0


def average_precision(tp: npt.NDArray[np.bool_], conf: npt.NDArray[np.float32], n_gt: int) -> float:
    """All-point interpolated AP from the true-positive flags and confidences of every prediction."""
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-conf, kind="stable")
    hits = tp[order].astype(np.float64)
    tps = np.cumsum(hits)
    fps = np.cumsum(1.0 - hits)
    recall = tps / n_gt
    precision = tps / np.maximum(tps + fps, 1e-9)
    r = np.concatenate([[0.0], recall, [recall[-1]]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass(slots=True)
class _Pool:
    """Every prediction of one class (or subset) with its TP flag, and the number of targets."""

    tp: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    conf: list[npt.NDArray[np.float32]] = field(default_factory=list)
    n_gt: int = 0

    def add(self, tp: npt.NDArray[np.bool_], conf: npt.NDArray[np.float32], n_gt: int) -> None:
        self.tp.append(tp)
        self.conf.append(conf)
        self.n_gt += n_gt

    def summary(self, at_confidence: float) -> dict[str, float | int]:
        tp = np.concatenate(self.tp) if self.tp else np.zeros(0, bool)
        conf = np.concatenate(self.conf) if self.conf else np.zeros(0, np.float32)
        kept = conf >= at_confidence
        n_tp = int(tp[kept].sum())
        n_pred = int(kept.sum())
        return {
            "targets": self.n_gt,
            "predictions": n_pred,
            "precision": round(n_tp / n_pred, 4) if n_pred else float("nan"),
            "recall": round(n_tp / self.n_gt, 4) if self.n_gt else float("nan"),
            "ap50": round(average_precision(tp, conf, self.n_gt), 4),
        }

    def f1(self, at_confidence: float) -> float:
        s = self.summary(at_confidence)
        p, r = float(s["precision"]), float(s["recall"])
        return 0.0 if not (p > 0 and r > 0) else 2 * p * r / (p + r)


def near_line(
    xyxy: npt.NDArray[np.float32],
    line: tuple[tuple[int, int], tuple[int, int]],
    zone: tuple[int, int, int, int],
) -> npt.NDArray[np.bool_]:
    """Whether each box's bottom-centre lies within NEAR_LINE_FRACTION of the zone height of the line
    (perpendicular distance), inside the line's horizontal extent widened by a tenth of its length."""
    (ax, ay), (bx, by) = line
    px = (xyxy[:, 0] + xyxy[:, 2]) / 2
    py = xyxy[:, 3]
    dx, dy = bx - ax, by - ay
    length = float(np.hypot(dx, dy)) or 1.0
    dist = np.abs(dy * (px - ax) - dx * (py - ay)) / length
    lo, hi = min(ax, bx), max(ax, bx)
    margin = 0.1 * (hi - lo)
    band = NEAR_LINE_FRACTION * (zone[3] - zone[1])
    return (dist <= band) & (px >= lo - margin) & (px <= hi + margin)


@dataclass(slots=True)
class Evaluation:
    """Pools of one model's predictions over a set of labelled frames."""

    classes: dict[int, str]
    iou: float
    per_class: dict[int, _Pool] = field(default_factory=dict)
    near: dict[int, _Pool] = field(default_factory=dict)
    frames: int = 0

    def report(self, at_confidence: float) -> dict[str, object]:
        out: dict[str, object] = {"frames": self.frames, "iou": self.iou, "confidence": at_confidence}
        out["classes"] = {
            self.classes[k]: pool.summary(at_confidence) for k, pool in self.per_class.items() if pool.n_gt
        }
        out["near_stop_line"] = {
            self.classes[k]: pool.summary(at_confidence) for k, pool in self.near.items() if pool.n_gt
        }
        return out

    def best_confidence(self, grid: Sequence[float] = tuple(np.round(np.arange(0.1, 0.8, 0.05), 2))) -> float:
        """The confidence with the best mean F1 over classes with targets (chosen on validation frames)."""
        pools = [p for p in self.per_class.values() if p.n_gt]
        if not pools:
            raise ValueError("no labelled targets to choose a confidence on")
        scores = [float(np.mean([p.f1(c) for p in pools])) for c in grid]
        return float(grid[int(np.argmax(scores))])


def evaluate(
    frames: Iterable[tuple[LabelledFrame, npt.NDArray[np.uint8]]],
    detect: Callable[[npt.NDArray[np.uint8], tuple[int, int, int, int]], Detections],
    zones: dict[str, tuple[int, int, int, int]],
    stop_lines: dict[str, tuple[tuple[int, int], tuple[int, int]] | None],
    classes: dict[int, str],
    iou: float = 0.5,
) -> Evaluation:
    """Run `detect(frame, zone)` on each labelled frame and pool matches per class.

    Args:
        frames: labelled frames with their decoded BGR images.
        detect: the detector under test; returns frame-pixel detections.
        zones, stop_lines: per clip.
        classes: COCO id → name of the classes evaluated; other predictions are ignored.
    """
    ev = Evaluation(classes=classes, iou=iou)
    for k in classes:
        ev.per_class[k] = _Pool()
        ev.near[k] = _Pool()
    for label, image in frames:
        zone = zones[label.clip]
        line = stop_lines.get(label.clip)
        det = detect(image, zone)
        gt_keep = _inside(label.xyxy, zone)
        pr_keep = _inside(det.xyxy, zone)
        ev.frames += 1
        for k in classes:
            g = label.xyxy[gt_keep & (label.class_id == k)]
            m = pr_keep & (det.class_id == k)
            p, c = det.xyxy[m], det.confidence[m]
            pairs = match_pairs(p, c, g, iou)
            tp = pairs >= 0
            ev.per_class[k].add(tp, c, len(g))
            if line is not None:
                # Matching is done once on the whole frame; a hit counts near the line when its target
                # is near the line, a false alarm when the prediction itself is (so a box straddling the
                # band's edge is never both a miss and a false alarm).
                gn, pn = near_line(g, line, zone), near_line(p, line, zone)
                hit_near = tp & np.isin(pairs, np.flatnonzero(gn))
                keep = hit_near | (~tp & pn)
                ev.near[k].add(hit_near[keep], c[keep], int(gn.sum()))
    return ev


def _inside(xyxy: npt.NDArray[np.float32], zone: tuple[int, int, int, int]) -> npt.NDArray[np.bool_]:
    if len(xyxy) == 0:
        return np.zeros(0, bool)
    _, keep = crop_boxes(xyxy, zone)
    tall = (xyxy[:, 3] - xyxy[:, 1]) >= MIN_HEIGHT_PX
    return keep & tall
