"""Benchmarks that print JSON (`phatnguoi bench …`). Every figure is measured in one run, beside its
baseline, in interleaved rounds (these machines are noisy: medians and ratios, not absolute times).

`bench pipeline`: decode only; the bare 640×640 letterboxed ONNX Runtime detector (the baseline);
the camera's chosen detector configuration; the chosen detect + track; and detect + track on every
other frame. Each decoded frame goes through every configuration in rotating order (so noise from
other processes falls on all of them alike), and each is scored on the labelled frames (recall of
labelled boxes, overall and near the stop line).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from detector import Detections, DetectorConfig, box_iou
from detector.tracking import TrackHistory
from phatnguoi.config import CameraConfig
from phatnguoi.detect import DetectJob
from streams.frame import Frame


@dataclass(frozen=True, slots=True)
class LabelledFrame:
    """Ground-truth boxes of one video frame."""

    index: int
    xyxy: npt.NDArray[np.float32]


def load_yolo_labels(folder: Path, frame_hw: tuple[int, int]) -> list[LabelledFrame]:
    """Labels of a `*_rider_boxes` folder: ``labels/<name>_00NN.txt`` (YOLO, normalised) is frame NN-1."""
    h, w = frame_hw
    out = []
    for path in sorted((folder / "labels").glob("*.txt")):
        index = int(path.stem.rsplit("_", 1)[-1]) - 1
        rows = np.loadtxt(path, ndmin=2, dtype=np.float64)
        if rows.size == 0:
            out.append(LabelledFrame(index, np.zeros((0, 4), np.float32)))
            continue
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
        out.append(LabelledFrame(index, xyxy))
    return sorted(out, key=lambda f: f.index)


@dataclass(slots=True)
class Recall:
    """Recall of labelled boxes (labels are not exhaustive: precision is only indicative)."""

    iou: float
    matched: int = 0
    total: int = 0
    near_matched: int = 0
    near_total: int = 0
    predicted: int = 0
    predicted_matched: int = 0

    def add(
        self, gt: npt.NDArray[np.float32], pred: npt.NDArray[np.float32], near_band: tuple[float, float]
    ) -> None:
        iou = box_iou(gt, pred)
        gt_hit = iou.max(axis=1) >= self.iou if iou.shape[1] else np.zeros(len(gt), bool)
        pred_hit = iou.max(axis=0) >= self.iou if iou.shape[0] else np.zeros(len(pred), bool)
        near = (gt[:, 3] >= near_band[0]) & (gt[:, 3] <= near_band[1])
        self.matched += int(gt_hit.sum())
        self.total += len(gt)
        self.near_matched += int(gt_hit[near].sum())
        self.near_total += int(near.sum())
        self.predicted += len(pred)
        self.predicted_matched += int(pred_hit.sum())

    def as_dict(self) -> dict[str, float | int]:
        return {
            "recall": round(self.matched / self.total, 4) if self.total else 0.0,
            "recall_near_stop_line": round(self.near_matched / self.near_total, 4)
            if self.near_total
            else 0.0,
            "precision_indicative": round(self.predicted_matched / self.predicted, 4)
            if self.predicted
            else 0.0,
            "labelled_boxes": self.total,
            "labelled_near_stop_line": self.near_total,
        }


def read_frames(source: Path, limit: int) -> Iterator[Frame]:
    """Decode up to `limit` frames of a file with OpenCV (the decode cost is part of what is timed)."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    try:
        if not cap.isOpened():
            raise ValueError(f"cannot open video file '{source}'")
        for i in range(limit):
            ok, image = cap.read()
            if not ok:
                return
            yield Frame(image, i, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, "bench")
    finally:
        cap.release()


def crossing_continuity(
    tracks: list[TrackHistory],
    line: tuple[tuple[float, float], tuple[float, float]],
    margin: float = 40.0,
    warmup_s: float = 1.0,
) -> dict[str, float | int]:
    """Does the id that crosses the stop line belong to the vehicle that approached it?

    A *crossing* is a track whose bottom-centre path has points on both sides of the line segment and
    reaches at least ``margin`` px from it on one side (jitter of a vehicle stopped on the line is
    not a crossing). It is *continuous* when the track began at least ``margin`` px before the line:
    the same id followed the vehicle on its approach. An id switch near the line leaves a track born
    at the line; those are also counted as ``born_at_line`` (after the first ``warmup_s`` seconds,
    when every track is new).
    """
    (x1, y1), (x2, y2) = line
    t_start = min((t.first_ts for t in tracks if len(t)), default=0.0)
    crossing = continuous = born_at_line = 0
    extents = []
    for t in tracks:
        if len(t) < 2:
            continue
        p = t.path()
        inside = (p[:, 0] >= min(x1, x2)) & (p[:, 0] <= max(x1, x2))
        if not inside.any():
            continue
        # signed vertical distance to the line at each point's x
        y_line = y1 + (y2 - y1) * (p[:, 0] - x1) / (x2 - x1 if x2 != x1 else 1e-9)
        d = (p[:, 1] - y_line)[inside]
        if abs(d[0]) < margin and t.first_ts - t_start >= warmup_s and np.abs(d).max() >= margin:
            born_at_line += 1
        if d.min() < 0 < d.max() and np.abs(d).max() >= margin:
            crossing += 1
            extents.append(float(p[:, 1].max() - p[:, 1].min()))
            if abs(d[0]) >= margin:
                continuous += 1
    return {
        "crossing_tracks": crossing,
        "continuous_from_approach": continuous,
        "continuity": round(continuous / crossing, 4) if crossing else 0.0,
        "born_at_line": born_at_line,
        "median_path_extent_px": round(statistics.median(extents), 1) if extents else 0.0,
    }


def bench_pipeline(
    source: Path,
    camera: CameraConfig,
    labels: list[LabelledFrame] | None,
    near_band: tuple[float, float],
    line: tuple[tuple[float, float], tuple[float, float]] | None = None,
    frames: int = 120,
    rounds: int = 3,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure decode, baseline detector, chosen detector, chosen detect + track. See module docstring."""
    from detector.yolo_onnx import YoloOnnxDetector

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    chosen_cfg = camera.detector
    baseline_cfg = DetectorConfig(
        model=chosen_cfg.model,
        model_path=chosen_cfg.model_path,
        input_width=640,
        input_height=640,
        confidence=0.25,
        merge_riders=False,
        threads=chosen_cfg.threads,
        providers=chosen_cfg.providers,
    )
    baseline = YoloOnnxDetector(baseline_cfg)
    chosen = YoloOnnxDetector(chosen_cfg)
    # The baseline at the chosen confidence threshold: separates what the threshold buys from the rest.
    baseline_same_conf = YoloOnnxDetector(
        baseline_cfg.model_copy(update={"confidence": chosen_cfg.confidence})
    )

    # The chosen configuration detecting on every other frame, the tracker bridging the frames between.
    skip_every = 2 if chosen_cfg.every == 1 else 1
    skip_camera = camera.model_copy(update={"detector": chosen_cfg.model_copy(update={"every": skip_every})})

    import cv2

    cap = cv2.VideoCapture(str(source))
    fps_nominal = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    frame_hw = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
    cap.release()

    # Interleaved per frame: every configuration processes the same decoded frame, in an order that
    # rotates from frame to frame, so load from other processes hits all of them in the same window.
    names = ("baseline", "chosen", "detect_track", "detect_track_every_k")
    timings: dict[str, list[float]] = {name: [] for name in ("decode", *names)}
    for r in range(rounds):
        say(f"round {r + 1}/{rounds}")
        jobs = {
            "detect_track": DetectJob(camera, detector=chosen, frame_rate=fps_nominal),
            "detect_track_every_k": DetectJob(skip_camera, detector=chosen, frame_rate=fps_nominal),
        }
        spent = dict.fromkeys(timings, 0.0)
        n = 0
        frames_iter = read_frames(source, frames)
        while True:
            t0 = time.perf_counter()
            f = next(frames_iter, None)
            spent["decode"] += time.perf_counter() - t0
            if f is None:
                break
            for k in range(len(names)):
                name = names[(n + k) % len(names)]
                t0 = time.perf_counter()
                if name == "baseline":
                    baseline.detect(f.image)
                elif name == "chosen":
                    chosen.detect(f.image)
                else:
                    jobs[name].step(f)
                spent[name] += time.perf_counter() - t0
            n += 1
        # fps of each pipeline = frames / (decode + its own processing)
        timings["decode"].append(n / spent["decode"])
        for name in names:
            timings[name].append(n / (spent["decode"] + spent[name]))
    fps = {k: round(statistics.median(v), 2) for k, v in timings.items()}

    result: dict[str, Any] = {
        "source": str(source),
        "frames_per_round": frames,
        "timing": "per-frame interleaved; fps = frames / (decode + processing); median of rounds",
        "rounds": rounds,
        "frame_size": [frame_hw[1], frame_hw[0]],
        "providers": chosen.providers,
        "threads": chosen_cfg.threads,
        "baseline_config": {"input": "640x640 letterbox", "confidence": 0.25, "merge_riders": False},
        "chosen_config": {
            "input": "{}x{}".format(*reversed(chosen.input_size(frame_hw))),
            "roi": list(chosen_cfg.roi) if chosen_cfg.roi else None,
            "confidence": chosen_cfg.confidence,
            "merge_riders": chosen_cfg.merge_riders,
            "every": chosen_cfg.every,
        },
        "fps": {
            "decode_only": fps["decode"],
            "baseline_detector": fps["baseline"],
            "chosen_detector": fps["chosen"],
            "chosen_detect_track": fps["detect_track"],
            f"chosen_detect_track_every_{skip_every}": fps["detect_track_every_k"],
        },
        "fps_rounds": {k: [round(x, 2) for x in v] for k, v in timings.items()},
        "ratios": {
            "chosen_detector_vs_baseline": round(fps["chosen"] / fps["baseline"], 3),
            "detect_track_vs_baseline": round(fps["detect_track"] / fps["baseline"], 3),
            "detect_track_vs_chosen_detector": round(fps["detect_track"] / fps["chosen"], 3),
        },
    }

    if labels:
        say("recall on labelled frames")
        last = max(f.index for f in labels)
        by_index = {f.index: f for f in labels}
        recall: dict[str, dict[str, Any]] = {}
        skip_key = f"detect_track_every_{skip_every}"
        for iou in (0.3, 0.5):
            rec = {
                k: Recall(iou)
                for k in ("baseline", "baseline_at_chosen_confidence", "chosen", "detect_track", skip_key)
            }
            job = DetectJob(camera, detector=chosen, frame_rate=fps_nominal)
            skip_job = DetectJob(skip_camera, detector=chosen, frame_rate=fps_nominal)
            for f in read_frames(source, last + 1):
                tracked, _ = job.step(f)
                skip_tracked, _ = skip_job.step(f)
                gt = by_index.get(f.index)
                if gt is None:
                    continue
                rec["baseline"].add(gt.xyxy, baseline.detect(f.image).xyxy, near_band)
                rec["baseline_at_chosen_confidence"].add(
                    gt.xyxy, baseline_same_conf.detect(f.image).xyxy, near_band
                )
                rec["chosen"].add(gt.xyxy, chosen.detect(f.image).xyxy, near_band)
                rec["detect_track"].add(gt.xyxy, tracked.xyxy, near_band)
                rec[skip_key].add(gt.xyxy, skip_tracked.xyxy, near_band)
            recall[f"iou_{iou}"] = {k: v.as_dict() for k, v in rec.items()}
        result["recall"] = recall
        result["labelled_frames"] = len(labels)
        result["near_stop_line_band_y"] = list(near_band)

    if line is not None:
        say("track continuity through the stop line")
        job = DetectJob(camera, detector=chosen, frame_rate=fps_nominal)
        for f in read_frames(source, frames):
            job.step(f)
        result["tracking"] = crossing_continuity(job.all_tracks(), line)
    return result


def detections_of(job: DetectJob, frames: Iterator[Frame]) -> Iterator[tuple[Frame, Detections]]:
    """Run a job over frames, yielding each frame with its tracked boxes."""
    for f in frames:
        tracked, _ = job.step(f)
        yield f, tracked
