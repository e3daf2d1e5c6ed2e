"""What every rule shares: the per-frame batch of new track points, signal timelines, event making.

The engine (`violations.rules.engine`) turns the live `TrackHistory` objects into one `Batch` per
frame: only the rows observed since the previous call, one row per new observation, with the motion
measured over a short window and the scene geometry evaluated for all rows at once (numpy). Rules
walk the few rows that concern them and keep small per-vehicle state; they never re-read a whole
history.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from violations.legal import LegalReference
from violations.scene import Scene
from violations.types import RuleId, SignalReading, ViolationEvent, event_id

F64 = npt.NDArray[np.float64]
Box = tuple[float, float, float, float]


@dataclass(slots=True)
class Batch:
    """New observations of all live vehicles at one update, in time order per vehicle.

    Attributes:
        keys: (M,) vehicle key per row (a key survives tracker-id flicker, see the engine).
        tracker_ids: (M,) tracker id per row.
        frames: (M,) frame index per row.
        boxes: (M,) box x1, y1, x2, y2 per row.
        xyxy: (M, 4) float64, the same boxes as an array.
        classes: (M,) majority class name of the row's track.
        ts: (M,) float64 timestamps.
        points: (M, 2) float64 bottom-centre points.
        speed: (M,) float64 pixel speed over the motion window (nan when the window is too short).
        disp: (M, 2) float64 displacement over the motion window (mean of its last third minus mean
            of its first third, so single-frame box flicker averages out).
        span: (M,) float64 seconds the motion window actually covers (short for new tracks).
        rigid: (M,) bool, the box moved as one body over the window (real motion, not a box growing
            or shrinking as occluders come and go): its top edge moved with its bottom, or it changed
            as a vehicle changing its distance to the camera does (width and height scaling together);
            with a speed calibration, its bottom's distance changed as much as its width says. The
            window holds no jump and no such change of shape.
        jump: (M,) bool, the velocity changed implausibly since the vehicle's previous observation
            (the tracker swapped two vehicles, or the box flickered): no evidence of motion.
        stationary: (M,) bool, slower than the stationary threshold over a full window.
        gap: (M,) float64 seconds since the vehicle's previous observation (inf for its first).
        inside: polygon key ("lanes:l1", "stop_zones:np1", ...) → (M,) bool.
        lines: stop line id → (across, along), each (M,) float64 (see `geometry.StopLineFrame`).
        ground: (M, 2) float64 road-plane metres, or None without speed calibration.
        ground_scale: (M,) float64 metres per pixel at each point, or None.
    """

    keys: list[int]
    tracker_ids: list[int]
    frames: list[int]
    boxes: list[Box]
    xyxy: F64
    classes: list[str]
    ts: F64
    points: F64
    speed: F64
    disp: F64
    span: F64
    rigid: npt.NDArray[np.bool_]
    jump: npt.NDArray[np.bool_]
    stationary: npt.NDArray[np.bool_]
    gap: F64
    inside: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    lines: dict[str, tuple[F64, F64]] = field(default_factory=dict)
    ground: F64 | None = None
    ground_scale: F64 | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def occluded(self, row: int, min_cover: float = 0.3) -> bool:
        """Whether another vehicle in front (its box reaches lower in the image, same frame) overlaps
        this one's bottom edge over at least `min_cover` of its width.

        Such a box's bottom edge is where the occluder starts, not where the wheels touch the road,
        so its bottom-centre must not establish a violation.
        """
        x1, _, x2, y2 = self.xyxy[row]
        b = self.xyxy
        overlap_x = np.minimum(b[:, 2], x2) - np.maximum(b[:, 0], x1)
        cover = (
            (np.asarray(self.frames) == self.frames[row])
            & (b[:, 3] > y2)
            & (b[:, 1] < y2 - 1.0)
            & (overlap_x >= min_cover * max(x2 - x1, 1.0))
        )
        cover[row] = False
        return bool(cover.any())


class SignalBook:
    """Recent history of every light's state, so a rule can ask "what was it at time t?".

    Readings are passed every update; a change of state (or of `since_ts`) starts a new segment.
    A light not reported for `stale_s` is unknown from then on.
    """

    def __init__(self, horizon_s: float = 600.0, stale_s: float = 2.0) -> None:
        self.horizon_s = horizon_s
        self.stale_s = stale_s
        self._since: dict[str, list[float]] = {}
        self._readings: dict[str, list[SignalReading]] = {}
        self._last_seen: dict[str, float] = {}

    def observe(self, signals: Mapping[str, SignalReading], now_ts: float) -> None:
        """Record the latest reading of each light (call once per update, before the rules)."""
        for light_id, reading in signals.items():
            since = self._since.setdefault(light_id, [])
            readings = self._readings.setdefault(light_id, [])
            self._last_seen[light_id] = now_ts
            if readings and readings[-1].state == reading.state and since[-1] == reading.since_ts:
                readings[-1] = reading  # same segment; keep the freshest confidence
                continue
            # A reader may date a new state back (debouncing): it replaces what it overlaps.
            cut = bisect.bisect_left(since, reading.since_ts)
            del since[cut:]
            del readings[cut:]
            since.append(reading.since_ts)
            readings.append(reading)
            old = bisect.bisect_left(since, now_ts - self.horizon_s)
            if old > 1:
                del since[: old - 1]
                del readings[: old - 1]

    def at(self, light_id: str | None, t: float) -> SignalReading | None:
        """The reading in force at time `t`, or None when unknown (no reading, stale, or before history)."""
        if light_id is None:
            return None
        since = self._since.get(light_id)
        if not since:
            return None
        if t > self._last_seen.get(light_id, -math.inf) + self.stale_s:
            return None
        k = bisect.bisect_right(since, t) - 1
        if k < 0:
            return None
        return self._readings[light_id][k]

    def reset(self) -> None:
        """Forget everything."""
        self._since.clear()
        self._readings.clear()
        self._last_seen.clear()


class Rule(Protocol):
    """A rule: per-vehicle state over successive batches; no I/O, no drawing."""

    #: Rule ids this object can emit.
    rule_ids: tuple[RuleId, ...]

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        ...

    def forget(self, keys: set[int]) -> None:
        """Drop the state of vehicles that left."""
        ...


def make_event(
    scene: Scene,
    rule: RuleId,
    ref: LegalReference,
    batch: Batch,
    row: int,
    episode_start_ts: float,
    details: dict[str, Any],
) -> ViolationEvent:
    """A `ViolationEvent` established at `row` of `batch`; the legal reference goes into details too.

    `episode_start_ts` is when the offence began as the rule dates it (the stop-line crossing, the
    start of driving against the direction, in the lane, on the sidewalk, of the stop's dwell, of the
    speed measurement): it keys the event id and goes into ``details["began_at_ts"]``, from which the
    evidence dates ``occurred_at`` (`violations.evidence.occurrence`).
    """
    tid = batch.tracker_ids[row]
    full = {
        **details,
        "began_at_ts": round(float(episode_start_ts), 3),
        "legal": {
            "article": ref.article,
            "clause": ref.clause,
            "point": ref.point,
            "summary": ref.summary,
            "fine_vnd": [ref.fine_min_vnd, ref.fine_max_vnd],
            "licence_points": ref.licence_points,
        },
    }
    return ViolationEvent(
        event_id=event_id(scene.camera_id, tid, rule, episode_start_ts),
        rule=rule,
        legal_reference=ref.citation,
        camera_id=scene.camera_id,
        track_id=tid,
        frame_index=batch.frames[row],
        ts=float(batch.ts[row]),
        vehicle_class=batch.classes[row],
        box_xyxy=batch.boxes[row],
        details=full,
    )


def r2(v: float) -> float:
    """Round for JSON details (2 decimals)."""
    return round(float(v), 2)
