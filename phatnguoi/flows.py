"""Flow statistics of one camera: vehicles per lane, direction and class per interval (default 5 min).

A finished track counts once:

- **lane**: the scene lane whose polygon holds most of the track's observed bottom-centre points
  (where the vehicle touched the road); without lanes in the scene every track counts in lane
  ``"all"``. A track that never enters a lane of a scene that has lanes is not counted (skipped as
  ``outside_lanes``): cross traffic is not the flow of these lanes.
- **direction**: from the track's displacement (first to last observed point). In a lane: ``forward``
  within the lane's ``max_angle_deg`` of its direction, ``reverse`` within that angle of the opposite
  direction, ``cross`` otherwise. In lane ``"all"``: the dominant image direction ``up``, ``down``,
  ``left`` or ``right``.
- **class**: the track's majority class, if it is one of the counted vehicle classes.
- **time**: the track's last observed timestamp (when it left the view), on the wall clock
  (``ts_origin + ts``); the interval is ``[floor(t / interval) * interval, + interval)`` in UTC.

Tracks seen on fewer than ``min_observations`` frames, or that moved less than ``min_travel_px``
(parked vehicles, id flicker), are not counted. Stop-line crossings (`CrossingRecord`) can be counted
too (``source``): lane ``line:<line id>``, direction ``in`` (the direction the line governs).

An interval is closed ``grace_s`` after its end (a track is reported finished a couple of seconds after
the vehicle was last seen); its non-zero counts are emitted once, for the outbox. A track that finishes
later for an already closed interval is counted as ``late`` and dropped, with one warning per
interval: the server keeps the first count of a key, so re-emitting a closed interval could only
conflict. Empty combinations are not emitted (no zero rows).

**Clock steps.** When the box's clock is set (NTP correcting a wrong boot time, or by hand), the edge
pipeline reports a step of the frame clock and the worker calls `FlowCounter.clock_stepped` with the
first time on the new clock, after counting the tracks that ended at the step (they are dated by the
old clock). Counts from before the step are dated by a clock that was wrong by the step:

- a step **back** (the clock ran ahead): the open intervals that start after the new time were dated
  ahead of the corrected clock; their counts are dropped with one warning (``skipped["clock_step"]``)
  rather than emitted with dates in the future, which the server refuses and which would clash with
  the real counts of those intervals. Intervals already closed before the step stay emitted (the
  outbox holds them; the server refuses those dated beyond its ``ingest_future_skew_s``). Counting
  resumes at once, in the interval holding the new time: intervals the clock reaches again are
  counted again (the interval of the step without the vehicles seen before it; where an interval
  had been emitted already, the outbox and the server keep the first count of its key).
- a step **forward** (the clock ran behind): nothing is dropped; the intervals from before the step
  lie in the past of the new clock and are closed and emitted as usual, dated by the old clock.

    counter = FlowCounter(scene.camera_id, scene, class_names=detector.class_names, ts_origin=t0,
                          resume_after=outbox.flows_until(scene.camera_id))
    every frame:   counter.add_tracks(track_store.pop_finished())
                   if the pipeline reported a clock step: counter.clock_stepped(frame.ts)
                   outbox.enqueue_flows(counter.close_intervals(frame.ts))
    at shutdown:   outbox.enqueue_flows(counter.flush())    # the open interval, partial
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from detector.tracking import TrackHistory
from violations.geometry import angle_deg, points_in_polygon
from violations.rules.engine import COCO_NAMES
from violations.rules.signal_rules import CrossingRecord
from violations.scene import Lane, Scene

logger = logging.getLogger(__name__)

#: Classes counted by default (a person is not traffic flow).
VEHICLE_CLASSES: tuple[str, ...] = ("motorcycle", "car", "bus", "truck", "bicycle")
#: Lane of every track when the scene has no lanes.
ALL_LANES = "all"
#: Longest lane / direction / class name the server stores.
MAX_KEY_CHARS = 32
#: Closed intervals remembered for the one warning about late tracks per interval.
LATE_WARNED = 16

Direction = Literal["forward", "reverse", "cross", "up", "down", "left", "right", "in"]


class FlowConfig(BaseModel):
    """How flows are counted (the ``flows:`` section of an edge config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: int = Field(
        300,
        ge=60,
        le=3600,
        description="Interval length in seconds; divides an hour (60, 300, 900, 3600...).",
    )
    grace_s: float = Field(
        10.0, ge=0.0, le=600.0, description="An interval is closed this long after its end (late tracks)."
    )
    min_observations: int = Field(3, ge=1, le=1000, description="Frames a track must be observed on.")
    min_travel_px: float = Field(
        20.0,
        ge=0.0,
        le=10000.0,
        description="Least displacement of a counted track (parked cars do not flow).",
    )
    source: Literal["tracks", "crossings", "both"] = Field(
        "tracks", description="Count finished tracks, stop-line crossings, or both (in separate lanes)."
    )
    classes: tuple[str, ...] = Field(VEHICLE_CLASSES, min_length=1, description="Vehicle classes counted.")

    @field_validator("interval_s")
    @classmethod
    def _divides_hour(cls, v: int) -> int:
        if 3600 % v:
            raise ValueError(f"interval_s must divide 3600 so intervals align with hours, got {v}")
        return v


@dataclass(frozen=True, slots=True)
class FlowCount:
    """Vehicles of one class in one lane and direction over one interval (epoch seconds, UTC)."""

    camera_id: str
    lane: str
    direction: str
    vehicle_class: str
    interval_start: float
    interval_end: float
    count: int

    @property
    def key(self) -> tuple[str, str, str, str, float, float]:
        """What the server is idempotent on."""
        return (
            self.camera_id,
            self.lane,
            self.direction,
            self.vehicle_class,
            self.interval_start,
            self.interval_end,
        )

    def to_json(self) -> dict[str, Any]:
        """One entry of ``counts`` of ``POST /api/v1/flows`` (times as ISO 8601 UTC)."""
        return {
            "lane": self.lane,
            "direction": self.direction,
            "vehicle_class": self.vehicle_class,
            "interval_start": iso_second(self.interval_start),
            "interval_end": iso_second(self.interval_end),
            "count": self.count,
        }


@dataclass(frozen=True, slots=True)
class FlowObservation:
    """How one finished track counts: where, which way, what, when; or why it does not count.

    Attributes:
        lane, direction, vehicle_class: the flow key (None when skipped).
        ts: the track's last observed timestamp (stream clock), None when skipped.
        skipped: None when counted, else the reason: ``short``, ``class``, ``stationary``,
            ``outside_lanes``.
    """

    lane: str | None
    direction: str | None
    vehicle_class: str | None
    ts: float | None
    skipped: str | None = None


def iso_second(epoch_s: float) -> str:
    """``2026-11-23T05:15:00Z``: a UTC instant to the second (interval bounds are whole seconds)."""
    return datetime.fromtimestamp(round(epoch_s), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_name(name: str) -> str:
    """`name` shortened to the server's 32 characters, deterministically and without collisions in
    practice: the first 23 characters, ``-`` and 8 hex digits of its SHA-256."""
    if len(name) <= MAX_KEY_CHARS:
        return name
    return f"{name[:23]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def majority_lane(points: npt.ArrayLike, lanes: Sequence[tuple[str, npt.ArrayLike]]) -> str | None:
    """The lane holding most of `points`.

    Args:
        points: (T, 2) bottom-centre points of a track, frame pixels.
        lanes: (lane id, (M, 2) polygon) pairs, in scene order (ties go to the first).

    Returns:
        The lane id, or None when no point lies in any lane.
    """
    best, best_n = None, 0
    for lane_id, polygon in lanes:
        n = int(np.count_nonzero(points_in_polygon(points, polygon)))
        if n > best_n:
            best, best_n = lane_id, n
    return best


def lane_direction(displacement: npt.ArrayLike, direction: npt.ArrayLike, max_angle_deg: float) -> str:
    """``forward``, ``reverse`` or ``cross``: a (2,) displacement against a lane's (2,) unit direction.

    Forward within `max_angle_deg` of the direction, reverse within it of the opposite one.
    Raises ValueError for a zero displacement.
    """
    d = np.asarray(displacement, np.float64).reshape(2)
    if not np.all(np.isfinite(d)) or float(np.hypot(d[0], d[1])) == 0.0:
        raise ValueError(f"displacement must be finite and non-zero, got {d.tolist()}")
    angle = float(angle_deg(d.reshape(1, 2), direction)[0])
    # arccos rounding puts a vector exactly on the limit a few ulps past it.
    if angle <= max_angle_deg + 1e-9:
        return "forward"
    if angle >= 180.0 - max_angle_deg - 1e-9:
        return "reverse"
    return "cross"


def image_direction(displacement: npt.ArrayLike) -> str:
    """``up``, ``down``, ``left`` or ``right``: the dominant axis of a (2,) displacement in image
    coordinates (y down). Ties between axes go to the vertical one. Raises ValueError for zero."""
    dx, dy = (float(v) for v in np.asarray(displacement, np.float64).reshape(2))
    if not (math.isfinite(dx) and math.isfinite(dy)) or (dx == 0.0 and dy == 0.0):
        raise ValueError(f"displacement must be finite and non-zero, got {[dx, dy]}")
    if abs(dy) >= abs(dx):
        return "up" if dy < 0 else "down"
    return "left" if dx < 0 else "right"


def classify_track(
    track: TrackHistory,
    lanes: Sequence[Lane],
    class_names: Sequence[str] = COCO_NAMES,
    config: FlowConfig | None = None,
) -> FlowObservation:
    """How a finished track counts (see the module docstring). Pure.

    Args:
        track: the finished track (its observed rows are used; predicted rows are not).
        lanes: the scene's lanes; empty for lane ``"all"`` with image directions.
        class_names: detector class names indexed by `TrackHistory.class_id`.
        config: thresholds and counted classes.
    """
    cfg = config or FlowConfig()
    seen = np.asarray(track.detected, bool)
    if len(track) == 0 or int(seen.sum()) < cfg.min_observations:
        return FlowObservation(None, None, None, None, "short")
    cid = track.class_id
    name = class_names[cid] if 0 <= cid < len(class_names) else "other"
    if name not in cfg.classes:
        return FlowObservation(None, None, None, None, "class")
    path = track.path()[seen]
    times = track.times()[seen]
    displacement = path[-1] - path[0]
    if float(np.hypot(*displacement)) < max(cfg.min_travel_px, 1e-9):
        return FlowObservation(None, None, None, None, "stationary")
    if not lanes:
        return FlowObservation(ALL_LANES, image_direction(displacement), name, float(times[-1]))
    polygons = [(lane.id, np.asarray(lane.polygon, np.float64)) for lane in lanes]
    lane_id = majority_lane(path, polygons)
    if lane_id is None:
        return FlowObservation(None, None, None, None, "outside_lanes")
    lane = next(la for la in lanes if la.id == lane_id)
    direction = lane_direction(displacement, lane.direction, lane.max_angle_deg)
    return FlowObservation(key_name(lane_id), direction, name, float(times[-1]))


class FlowCounter:
    """Counts of one camera by interval; emits each interval once it is closed. Not thread-safe.

    Args:
        camera_id: the camera (the server checks the device may post for it).
        scene: the camera's scene (its lanes), or None for lane ``"all"``.
        class_names: detector class names indexed by `TrackHistory.class_id`.
        config: interval, thresholds, source.
        ts_origin: epoch seconds added to stream timestamps to get UTC wall time (0 for live
            sources, whose timestamps are the wall clock already).
        resume_after: epoch seconds; counts of intervals starting before it are dropped as late
            (after a restart: `Outbox.flows_until`, the end of the last interval already emitted).
    """

    def __init__(
        self,
        camera_id: str,
        scene: Scene | None = None,
        *,
        class_names: Sequence[str] = COCO_NAMES,
        config: FlowConfig | None = None,
        ts_origin: float = 0.0,
        resume_after: float | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.config = config or FlowConfig()
        self.lanes: tuple[Lane, ...] = tuple(scene.lanes) if scene is not None else ()
        self.class_names = tuple(class_names)
        self.ts_origin = float(ts_origin)
        self._closed_until = -math.inf if resume_after is None else float(resume_after)
        self._open: dict[float, Counter[tuple[str, str, str]]] = {}
        # closed intervals a late track was already logged for (one warning per interval)
        self._late_warned: deque[float] = deque(maxlen=LATE_WARNED)
        self.counted = 0
        self.skipped: Counter[str] = Counter()

    def _interval(self, ts: float) -> float:
        step = self.config.interval_s
        return math.floor((self.ts_origin + ts) / step) * step

    def _add(self, ts: float, lane: str, direction: str, vehicle_class: str) -> bool:
        start = self._interval(ts)
        if start < self._closed_until:
            self.skipped["late"] += 1
            if start not in self._late_warned:
                self._late_warned.append(start)
                logger.warning(
                    "camera %s: a %s finished for the interval from %s, which is closed: not counted "
                    "(one warning per interval)",
                    self.camera_id,
                    vehicle_class,
                    iso_second(start),
                )
            return False
        self._open.setdefault(start, Counter())[(lane, direction, vehicle_class)] += 1
        self.counted += 1
        return True

    def add_tracks(self, tracks: Iterable[TrackHistory]) -> int:
        """Count finished tracks (ignored when ``source`` is ``crossings``). Returns how many counted."""
        if self.config.source == "crossings":
            return 0
        n = 0
        for track in tracks:
            obs = classify_track(track, self.lanes, self.class_names, self.config)
            if obs.skipped is not None:
                self.skipped[obs.skipped] += 1
                continue
            assert obs.lane and obs.direction and obs.vehicle_class and obs.ts is not None
            n += self._add(obs.ts, obs.lane, obs.direction, obs.vehicle_class)
        return n

    def add_crossings(self, records: Iterable[CrossingRecord]) -> int:
        """Count stop-line crossings (ignored when ``source`` is ``tracks``). Returns how many counted."""
        if self.config.source == "tracks":
            return 0
        n = 0
        for rec in records:
            if rec.vehicle_class not in self.config.classes:
                self.skipped["class"] += 1
                continue
            n += self._add(rec.ts, key_name(f"line:{rec.line_id}"), "in", rec.vehicle_class)
        return n

    def close_intervals(self, now_ts: float) -> list[FlowCount]:
        """Counts of every interval that ended at least ``grace_s`` before `now_ts` (stream clock).

        Returns:
            Non-zero counts, oldest interval first, then by lane, direction, class.
        """
        step = self.config.interval_s
        horizon = self.ts_origin + now_ts - self.config.grace_s
        closed_until = math.floor(horizon / step) * step
        out = self._emit([s for s in self._open if s + step <= horizon])
        self._closed_until = max(self._closed_until, closed_until)
        return out

    def clock_stepped(self, now_ts: float) -> int:
        """The frame clock was set and `now_ts` (stream clock) is the first time on the new clock (see
        the module docstring). Call it after counting the tracks that ended at the step.

        Counts of open intervals that start after `now_ts` (dated ahead of the corrected clock: it was
        set back) are dropped with a warning, and counting resumes in the interval holding `now_ts`.
        A step forward changes nothing.

        Returns:
            Vehicles dropped.
        """
        step = self.config.interval_s
        current = math.floor((self.ts_origin + now_ts) / step) * step
        ahead = sorted(s for s in self._open if s > current)
        dropped = sum(sum(self._open.pop(s).values()) for s in ahead)
        if dropped:
            self.skipped["clock_step"] += dropped
            logger.warning(
                "camera %s: the clock was set back to %s: %d vehicle(s) counted in %d interval(s) from %s "
                "on, dated ahead of it, are dropped; counting goes on under the new clock",
                self.camera_id,
                iso_second(self.ts_origin + now_ts),
                dropped,
                len(ahead),
                iso_second(ahead[0]),
            )
        self._closed_until = min(self._closed_until, current)
        return dropped

    def flush(self) -> list[FlowCount]:
        """Counts of every open interval, the current one partial (end of stream, shutdown)."""
        starts = list(self._open)
        out = self._emit(starts)
        if starts:
            self._closed_until = max(self._closed_until, max(starts) + self.config.interval_s)
        return out

    def _emit(self, starts: Iterable[float]) -> list[FlowCount]:
        step = self.config.interval_s
        out: list[FlowCount] = []
        for start in sorted(starts):
            counts = self._open.pop(start)
            for (lane, direction, cls), n in sorted(counts.items()):
                out.append(FlowCount(self.camera_id, lane, direction, cls, start, start + step, n))
        return out

    @property
    def open_intervals(self) -> int:
        """Intervals still collecting counts."""
        return len(self._open)
