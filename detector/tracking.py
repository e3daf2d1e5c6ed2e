"""Multi-object tracking (ByteTrack from the `trackers` package) and per-track history.

`Tracker` gives stable ids to `Detections`; it passes frame timestamps to ByteTrack so its Kalman
filter steps by real elapsed time, which keeps ids through dropped or skipped frames. On frames the
detector skips (``DetectorConfig.every > 1``), `Tracker.bridge` extrapolates each live track from its
own recent motion instead of running ByteTrack, so a track's hit count is never broken by a skip.

`TrackStore` keeps what the rules need per track (`TrackHistory`): box bottom-centre path,
timestamps, frame indices and class votes, pruned by age.
"""

from __future__ import annotations

import warnings
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from detector.config import TrackerConfig
from detector.detections import Detections


class Tracker:
    """ByteTrack on `Detections`, timestamp-driven. One instance per camera."""

    def __init__(self, config: TrackerConfig | None = None, frame_rate: float = 30.0) -> None:
        from trackers import ByteTrackTracker

        self.config = config or TrackerConfig()
        self._frame_rate = frame_rate
        # ByteTrack counts its lost buffer in 30 fps frames; convert our seconds to that.
        self._impl = ByteTrackTracker(
            lost_track_buffer=max(1, round(self.config.lost_track_s * 30)),
            frame_rate=frame_rate,
            track_activation_threshold=self.config.activation_confidence,
            minimum_consecutive_frames=self.config.min_hits,
            minimum_iou_threshold=self.config.match_iou,
            high_conf_det_threshold=self.config.high_confidence,
        )
        self._last: dict[int, tuple[float, npt.NDArray[np.float32], int, float]] = {}
        self._velocity: dict[int, npt.NDArray[np.float32]] = {}

    def update(self, detections: Detections, ts: float) -> Detections:
        """Associate one frame's detections; returns the tracked rows, with `tracker_id`.

        Confirmed tracks missed by the detector for at most ``coast_s`` are returned too, at their
        predicted position; ``data["observed"]`` (bool per row) tells the two apart.

        Args:
            detections: boxes of the frame (frame pixels).
            ts: the frame's time in seconds, non-decreasing.
        """
        import supervision as sv

        sv_in = sv.Detections(
            xyxy=detections.xyxy.astype(np.float32),
            confidence=detections.confidence.astype(np.float32),
            class_id=detections.class_id.astype(int),
            data={"row": np.arange(len(detections))},
        )
        with warnings.catch_warnings():
            # A repeated timestamp only skips the predict step; the library warns about it each time.
            warnings.simplefilter("ignore", UserWarning)
            out = self._impl.update(sv_in, timestamp=ts)
        ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], np.int64)
        if len(out):
            rows = np.asarray(out.data["row"], np.int64)
            tracked = ids >= 0
            result = detections[rows[tracked]].with_tracker_id(ids[tracked])
        else:
            result = Detections.empty().with_tracker_id(np.zeros(0, np.int64))
        result = result.with_data(observed=np.ones(len(result), bool))
        self._remember(result, ts)
        coasting = self._predict(
            ts,
            exclude=set(result.tracker_id.tolist()) if result.tracker_id is not None else set(),
            max_age=self.config.coast_s,
        )
        return Detections.merge([result, coasting]) if len(coasting) else result

    def bridge(self, ts: float) -> Detections:
        """Predicted boxes of live tracks at `ts`, for frames the detector skipped.

        Each box moves by its track's last measured centre velocity, keeping its size; confidence is the
        last one seen.
        """
        self._forget_stale(ts)
        return self._predict(ts, exclude=set(), max_age=self.config.lost_track_s)

    def _predict(self, ts: float, exclude: set[int], max_age: float) -> Detections:
        live = [tid for tid, last in self._last.items() if tid not in exclude and ts - last[0] <= max_age]
        if not live:
            return (
                Detections.empty()
                .with_tracker_id(np.zeros(0, np.int64))
                .with_data(observed=np.zeros(0, bool))
            )
        ids = np.asarray(live, np.int64)
        boxes = np.empty((len(ids), 4), np.float32)
        conf = np.empty(len(ids), np.float32)
        cls = np.empty(len(ids), np.int32)
        for k, tid in enumerate(ids):
            t0, box, class_id, c = self._last[int(tid)]
            v = self._velocity.get(int(tid))
            if v is None:
                boxes[k] = box
            else:
                # Move the box by its centre's velocity and keep its size: extrapolating each corner
                # on its own turns a box that was shrinking (a vehicle driving away) inside out.
                vx, vy = (v[0] + v[2]) / 2, (v[1] + v[3]) / 2
                boxes[k] = box + np.asarray([vx, vy, vx, vy], np.float32) * np.float32(ts - t0)
            conf[k], cls[k] = c, class_id
        return Detections(boxes, conf, cls, ids, {"observed": np.zeros(len(ids), bool)})

    def _remember(self, tracked: Detections, ts: float) -> None:
        assert tracked.tracker_id is not None
        for k, tid in enumerate(tracked.tracker_id.tolist()):
            if tid < 0:
                continue
            box = tracked.xyxy[k].copy()
            prev = self._last.get(tid)
            if prev is not None and ts > prev[0]:
                v = (box - prev[1]) / np.float32(ts - prev[0])
                old = self._velocity.get(tid)
                # Smooth: detector boxes jitter by a few pixels between frames.
                self._velocity[tid] = v if old is None else (0.5 * v + 0.5 * old).astype(np.float32)
            self._last[tid] = (ts, box, int(tracked.class_id[k]), float(tracked.confidence[k]))
        self._forget_stale(ts)

    def _forget_stale(self, ts: float) -> None:
        stale = [tid for tid, (t0, *_rest) in self._last.items() if ts - t0 > self.config.lost_track_s]
        for tid in stale:
            self._last.pop(tid, None)
            self._velocity.pop(tid, None)

    def reset(self) -> None:
        """Forget every track (new video or scene)."""
        self._impl.reset()
        self._last.clear()
        self._velocity.clear()


@dataclass(slots=True)
class TrackHistory:
    """What the rules see of one track: its path on the road and what it was classified as.

    Arrays are built on demand from the appended rows; a track holds at most a few hundred rows.
    """

    tracker_id: int
    frame_index: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    xyxy: list[tuple[float, float, float, float]] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    class_votes: Counter[int] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def first_ts(self) -> float:
        return self.ts[0]

    @property
    def last_ts(self) -> float:
        return self.ts[-1]

    @property
    def class_id(self) -> int:
        """Majority class over the track's detected frames, weighted by confidence."""
        return self.class_votes.most_common(1)[0][0] if self.class_votes else -1

    def boxes(self) -> npt.NDArray[np.float32]:
        """(T, 4) float32 boxes, oldest first."""
        return np.asarray(self.xyxy, np.float32).reshape(-1, 4)

    def path(self) -> npt.NDArray[np.float32]:
        """(T, 2) float32 bottom-centre points (where the vehicle touches the road), oldest first."""
        b = self.boxes()
        return np.stack([(b[:, 0] + b[:, 2]) * 0.5, b[:, 3]], axis=1)

    def times(self) -> npt.NDArray[np.float64]:
        """(T,) float64 timestamps in seconds."""
        return np.asarray(self.ts, np.float64)

    def trim(self, keep_after: float) -> None:
        """Drop rows older than `keep_after` (seconds)."""
        cut = 0
        while cut < len(self.ts) and self.ts[cut] < keep_after:
            cut += 1
        if cut:
            for seq in (self.frame_index, self.ts, self.xyxy, self.confidence, self.detected):
                del seq[:cut]


class TrackStore:
    """Histories of the tracks of one camera, pruned by age."""

    def __init__(self, history_s: float = 30.0, lost_s: float = 2.0) -> None:
        self.history_s = history_s
        self.lost_s = lost_s
        self._tracks: dict[int, TrackHistory] = {}
        self._finished: deque[TrackHistory] = deque(maxlen=1024)
        self.total_tracks = 0

    def update(self, frame_index: int, ts: float, tracked: Detections, detected: bool = True) -> None:
        """Append one frame's tracked boxes (rows without a tracker id are ignored).

        A row counts as observed (and votes for its class) when the detector ran on the frame
        (`detected`) and the row is not a prediction (``data["observed"]``, if present).
        """
        if tracked.tracker_id is None:
            raise ValueError("TrackStore.update needs tracked detections (tracker_id set)")
        ids = tracked.tracker_id.tolist()
        observed = tracked.data.get("observed")
        seen = observed.tolist() if observed is not None else [detected] * len(ids)
        boxes = tracked.xyxy.tolist()
        conf = tracked.confidence.tolist()
        cls = tracked.class_id.tolist()
        for k, tid in enumerate(ids):
            if tid < 0:
                continue
            hist = self._tracks.get(tid)
            if hist is None:
                hist = self._tracks[tid] = TrackHistory(tid)
                self.total_tracks += 1
            hist.frame_index.append(frame_index)
            hist.ts.append(ts)
            hist.xyxy.append((boxes[k][0], boxes[k][1], boxes[k][2], boxes[k][3]))
            hist.confidence.append(conf[k])
            hist.detected.append(detected and seen[k])
            if detected and seen[k]:
                hist.class_votes[cls[k]] += 1
        self._prune(ts)

    def _prune(self, ts: float) -> None:
        gone = [tid for tid, h in self._tracks.items() if ts - h.last_ts > self.lost_s]
        for tid in gone:
            self._finished.append(self._tracks.pop(tid))
        for h in self._tracks.values():
            if ts - h.first_ts > self.history_s:
                h.trim(ts - self.history_s)

    def get(self, tracker_id: int) -> TrackHistory | None:
        """The live history of one track."""
        return self._tracks.get(tracker_id)

    def __iter__(self) -> Iterator[TrackHistory]:
        return iter(self._tracks.values())

    def __len__(self) -> int:
        return len(self._tracks)

    def pop_finished(self) -> list[TrackHistory]:
        """Tracks that ended since the last call (for summaries and flow counts)."""
        out = list(self._finished)
        self._finished.clear()
        return out
