"""`phatnguoi detect`: detection + tracking over one source, written as tracks.jsonl + annotated MP4.

`DetectJob` composes a source, a detector and a tracker (each injectable, STYLE.md §6) and is also
what the benchmark times, so the measured path is the one users run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from detector import Detections
from detector.base import Detector
from detector.config import DetectorConfig
from detector.tracking import Tracker, TrackHistory, TrackStore
from phatnguoi.config import CameraConfig
from streams.frame import Frame

logger = logging.getLogger(__name__)

#: Frame time going back by more than this is a step of the clock (or a source that restarted its
#: own): tracking restarts (`DetectJob.restart`). Container times of a file may wobble by a few
#: milliseconds; the live frame clock steps only by more than a second. The rules use the same bound
#: (`violations.rules.RuleEngine.TIME_BACK_S`).
TIME_BACK_S = 0.5


class FrameSink(Protocol):
    """Receives each processed frame (a video writer, a preview, nothing)."""

    def write(self, frame: Frame, tracked: Detections) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class DetectSummary:
    """What a detect run did (printed by the CLI, written as summary.json)."""

    source: str
    camera_id: str
    frames: int = 0
    detected_frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    detector_ms_median: float = 0.0
    input_size: tuple[int, int] | None = None
    tracks: int = 0
    tracks_per_class: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    outputs: dict[str, str] = field(default_factory=dict)


def build_detector(config: DetectorConfig) -> Detector:
    """The configured back-end."""
    if config.backend == "ultralytics":
        from detector.ultralytics_backend import UltralyticsDetector

        return UltralyticsDetector(config)
    from detector.yolo_onnx import YoloOnnxDetector

    return YoloOnnxDetector(config)


class DetectJob:
    """Detect every k-th frame, track every frame, keep per-track history."""

    def __init__(
        self,
        camera: CameraConfig,
        detector: Detector | None = None,
        frame_rate: float = 30.0,
        keep_finished: bool = True,
    ) -> None:
        self.camera = camera
        self.detector = detector or build_detector(camera.detector)
        self.tracker = Tracker(camera.tracker, frame_rate=frame_rate)
        self.store = TrackStore(history_s=camera.tracker.history_s, lost_s=camera.tracker.lost_track_s + 0.5)
        self.every = camera.detector.every
        self.detector_ms: deque[float] = deque(maxlen=10_000)  # the most recent (bounded for a worker)
        self._count = 0
        self.class_votes: Counter[int] = Counter()
        # Finished tracks: kept for a bounded run's summary (detect, bench); a long-running worker
        # drains them with `pop_finished` instead (keep_finished=False).
        self.keep_finished = keep_finished
        self._finished: list[TrackHistory] = []
        self._pending: list[TrackHistory] = []
        self._last_ts: float | None = None  # time of the last frame stepped

    def wants_detection(self) -> bool:
        """Whether the next frame is one the detector runs on (every k-th)."""
        return self._count % self.every == 0

    def step(self, frame: Frame, detections: Detections | None = None) -> tuple[Detections, bool]:
        """Process one frame. Returns its tracked boxes and whether the detector ran on it.

        Args:
            frame: the next frame of this camera.
            detections: the frame's detections when the caller ran the detector itself (a batch
                over several cameras); used only on frames where `wants_detection()` was true.
        """
        if self._last_ts is not None and frame.ts < self._last_ts - TIME_BACK_S:
            logger.warning(
                "camera %s: frame time went back %.3f s (from %.3f to %.3f): tracking starts afresh",
                self.camera.id,
                self._last_ts - frame.ts,
                self._last_ts,
                frame.ts,
            )
            self.restart()
        self._last_ts = frame.ts
        run_detector = self.wants_detection()
        self._count += 1
        if run_detector:
            t0 = time.perf_counter()
            dets = detections if detections is not None else self.detector.detect(frame.image)
            self.detector_ms.append((time.perf_counter() - t0) * 1000)
            tracked = self.tracker.update(dets, frame.ts)
        else:
            tracked = self.tracker.bridge(frame.ts)
        self.store.update(frame.index, frame.ts, tracked, detected=run_detector)
        ended = self.store.pop_finished()
        self._pending.extend(ended)
        if self.keep_finished:
            self._finished.extend(ended)
        return tracked, run_detector

    def restart(self) -> None:
        """Track afresh from the next frame: the frame clock stepped, so times before and after
        cannot be compared (a tracker fed an earlier time skips every frame until its clock catches
        up). Every live track ends here and is handed on by `pop_finished` like any ended track;
        tracker ids start over."""
        ended = [*self.store.pop_finished(), *self.store]
        self._pending.extend(ended)
        if self.keep_finished:
            self._finished.extend(ended)
        old = self.store
        self.store = TrackStore(history_s=old.history_s, lost_s=old.lost_s)
        self.store.total_tracks = old.total_tracks
        self.tracker.reset()
        self._last_ts = None

    def pop_finished(self) -> list[TrackHistory]:
        """Tracks that ended since the last call (for flow counts)."""
        out, self._pending = self._pending, []
        return out

    def all_tracks(self) -> list[TrackHistory]:
        """Finished and live tracks seen so far."""
        return [*self._finished, *self.store]


def _track_line(frame: Frame, tracked: Detections, detected: bool, names: tuple[str, ...]) -> str:
    ids = tracked.tracker_id if tracked.tracker_id is not None else np.full(len(tracked), -1)
    objects = [
        {
            "id": int(ids[k]),
            "class": names[int(tracked.class_id[k])],
            "box": [round(float(v), 1) for v in tracked.xyxy[k]],
            "conf": round(float(tracked.confidence[k]), 3),
        }
        for k in range(len(tracked))
    ]
    return json.dumps(
        {"frame": frame.index, "ts": round(frame.ts, 3), "detected": detected, "objects": objects},
        separators=(",", ":"),
    )


class VideoSink:
    """Writes annotated frames to an MP4 (mp4v) with the detection region outlined."""

    def __init__(
        self, path: Path, fps: float, class_names: tuple[str, ...], roi: tuple[int, int, int, int] | None
    ):
        self.path = path
        self.fps = fps if fps and fps > 0 else 25.0
        self.class_names = class_names
        self.roi = roi
        self._writer: object | None = None

    def write(self, frame: Frame, tracked: Detections) -> None:
        import cv2

        from detector.annotate import draw_detections, draw_roi

        image = draw_detections(draw_roi(frame.image, self.roi), tracked, self.class_names)
        if self._writer is None:
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
        self._writer.write(image)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # type: ignore[attr-defined]
            self._writer = None


def run_detect(
    frames: Iterable[Frame],
    job: DetectJob,
    out_dir: Path,
    source_label: str,
    fps: float | None,
    write_video: bool = True,
    stop: threading.Event | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> DetectSummary:
    """Run a detect job over frames, writing tracks.jsonl, annotated.mp4 and summary.json to `out_dir`.

    Stops early (summary marked interrupted) when `stop` is set. Files are complete at every point:
    each JSON line is flushed whole.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    names = job.detector.class_names
    summary = DetectSummary(source=source_label, camera_id=job.camera.id)
    tracks_path = out_dir / "tracks.jsonl"
    sink: FrameSink | None = None
    if write_video:
        sink = VideoSink(out_dir / "annotated.mp4", fps or 25.0, names, job.camera.detector.roi)
    t_start = time.perf_counter()
    fh: IO[str]
    with tracks_path.open("w", encoding="utf-8") as fh:
        try:
            for frame in frames:
                if stop is not None and stop.is_set():
                    summary.interrupted = True
                    break
                tracked, detected = job.step(frame)
                fh.write(_track_line(frame, tracked, detected, names) + "\n")
                if sink is not None:
                    sink.write(frame, tracked)
                summary.frames += 1
                summary.detected_frames += int(detected)
                if summary.input_size is None and hasattr(job.detector, "input_size"):
                    summary.input_size = job.detector.input_size(frame.image.shape[:2])
                if on_frame is not None:
                    on_frame(frame)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            if sink is not None:
                sink.close()
    if stop is not None and stop.is_set():
        summary.interrupted = True  # the source may have been closed under us, ending iteration
    summary.seconds = round(time.perf_counter() - t_start, 3)
    summary.fps = round(summary.frames / summary.seconds, 2) if summary.seconds > 0 else 0.0
    summary.detector_ms_median = round(float(np.median(job.detector_ms)), 1) if job.detector_ms else 0.0
    tracks = [t for t in job.all_tracks() if len(t) >= 3]
    summary.tracks = len(tracks)
    per_class = Counter(names[t.class_id] if 0 <= t.class_id < len(names) else "?" for t in tracks)
    summary.tracks_per_class = dict(per_class.most_common())
    summary.outputs = {"tracks": str(tracks_path)}
    if write_video and summary.frames:  # the video file is made with its first frame
        summary.outputs["video"] = str(out_dir / "annotated.mp4")
    (out_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2), encoding="utf-8")
    return summary
