"""`RuleEngine`: runs a scene's enabled rules over the live tracks of one camera, frame after frame.

Per update it

1. reads only the rows each track gained since the previous update (observed rows: boxes the tracker
   predicted on frames without a detection never establish a violation),
2. gives each vehicle a key that survives tracker-id flicker: a new id that starts within
   ``stitch_gap_s`` and ``stitch_radius_px`` of where a vanished track was heading continues it,
   rule state included,
3. measures motion over ``motion_window_s`` (speed, displacement, stationary) per vehicle, never
   across a detection gap longer than ``max_gap_s``, and whether the box moved as one body in it
   (`Batch.rigid`; a box scaling as the vehicle's distance changes does, a box whose bottom an
   occluder covers or uncovers does not),
4. evaluates the scene geometry for all new rows at once (stop-line coordinates, polygon membership,
   ground positions),
5. runs the rules, drops duplicates (same rule, same line/zone, a nearby spot, a short time apart,
   from a vehicle whose track has ended) and forgets vehicles that left.

Time that steps (the system clock set by NTP or by hand; `streams.clock` follows such a step at once)
cannot be measured across: `restart` decides the held events on what was known before the step and
forgets every vehicle, so durations, dwells and motion are measured afresh from the first frame after
it. A vehicle reported before the step that is found where it was heading right after it is the same
vehicle: it is not reported again for the same thing. The engine restarts by itself when time goes
back by more than `RuleEngine.TIME_BACK_S`; a step forward looks like a gap in the frames, so the
caller, who can tell the two apart (`phatnguoi.pipeline`), calls `restart`.

Cost per update is a few vectorised numpy calls per scene element plus light Python per new row.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from detector.tracking import TrackHistory
from violations import geometry
from violations.legal import regime
from violations.rules.base import Batch, Box, Rule, SignalBook
from violations.rules.signal_rules import CrossingRecord, SignalLineRule
from violations.rules.speed import SpeedingRule
from violations.rules.zone_rules import IllegalStopRule, SidewalkRule, WrongLaneRule, WrongWayRule
from violations.scene import Scene, Tolerances
from violations.types import RULE_IDS, RuleId, SignalReading, ViolationEvent

logger = logging.getLogger(__name__)

_Polygon = tuple[str, npt.NDArray[np.float64], tuple[float, float, float, float]]

#: Class names of the default detector (COCO ids 0..7); ids beyond map to "other".
COCO_NAMES: tuple[str, ...] = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck")


@dataclass(slots=True)
class _Motion:
    """Motion of a vehicle at one observation, over the motion window."""

    dx: float  # robust displacement of the bottom-centre
    dy: float
    span: float  # seconds covered
    speed: float  # px/s, nan when the window is empty
    rigid: bool  # the box moved as one body over the window (see `_Vehicle.observe`), no jump in it
    jump: bool  # implausible change of velocity since the previous observation


@dataclass(slots=True)
class _Vehicle:
    """Motion state of one vehicle key."""

    key: int
    tracker_id: int
    group: str
    t: deque[float] = field(default_factory=deque)
    x: deque[float] = field(default_factory=deque)
    y: deque[float] = field(default_factory=deque)
    top: deque[float] = field(default_factory=deque)  # box top edge (y1), to tell motion from growth
    log_w: deque[float] = field(default_factory=deque)  # ln box width
    log_h: deque[float] = field(default_factory=deque)  # ln box height
    log_near: deque[float] = field(default_factory=deque)  # ln(1 / depth) of the bottom-centre (`horizon`)
    first_ts: float = math.inf
    last_ts: float = -math.inf
    vx: float = 0.0  # window velocity (px/s), for stitching
    vy: float = 0.0
    step_v: tuple[float, float] | None = None  # velocity of the last step between observations
    last_jump_ts: float = -math.inf
    last_change_ts: float = -math.inf  # the box last changed shape (see `observe`)

    @property
    def window(self) -> tuple[deque[float], ...]:
        """The per-observation queues of the motion window, oldest first in each."""
        return (self.t, self.x, self.y, self.top, self.log_w, self.log_h, self.log_near)

    def observe(
        self, t: float, box: Box, tol: Tolerances, horizon: tuple[float, float, float] | None = None
    ) -> _Motion:
        """Add one observation; its motion over the window.

        Args:
            horizon: a, b, c such that ``|a·x + b·y + c|`` is proportional to 1 / depth of a road point
                at pixel (x, y) (the third row of a road-plane homography), or None without one.
        """
        x1, y1, x2, y2 = box
        x, y = (x1 + x2) * 0.5, y2
        jump = False
        if self.t and t - self.last_ts > tol.max_gap_s:
            # Unseen for longer than a jump can be told from motion (the tracker may have re-found the
            # id on another vehicle): motion is measured from here on, never across the gap.
            for q in self.window:
                q.clear()
        if self.t and 0 < t - self.last_ts <= tol.max_gap_s:
            dt = t - self.last_ts
            vx, vy = (x - self.x[-1]) / dt, (y - self.y[-1]) / dt
            if self.step_v is not None:
                # A velocity that changes by more than a fraction of the box in one step is not a
                # vehicle's motion: the tracker swapped vehicles or the box flickered.
                change = math.hypot(vx - self.step_v[0], vy - self.step_v[1]) * dt
                jump = change > max(tol.jump_px, tol.jump_height_ratio * (y2 - y1))
            self.step_v = (vx, vy)
        else:
            self.step_v = None
        if jump:
            self.last_jump_ts = t
        self.t.append(t)
        self.x.append(x)
        self.y.append(y)
        self.top.append(y1)
        self.log_w.append(math.log(max(x2 - x1, 1.0)))
        self.log_h.append(math.log(max(y2 - y1, 1.0)))
        if horizon is not None:
            self.log_near.append(math.log(max(abs(horizon[0] * x + horizon[1] * y + horizon[2]), 1e-12)))
        window = tol.motion_window_s
        while len(self.t) > 2 and t - self.t[1] >= window:
            for q in self.window:
                if q:  # log_near stays empty without a calibration
                    q.popleft()
        span = t - self.t[0]
        # Mean of the first and last thirds of the window: single-frame box flicker averages out.
        n = len(self.t)
        k = max(1, n // 3)
        xs, ys, tops = list(self.x), list(self.y), list(self.top)
        dx = (sum(xs[-k:]) - sum(xs[:k])) / k
        dy = (sum(ys[-k:]) - sum(ys[:k])) / k
        dtop = (sum(tops[-k:]) - sum(tops[:k])) / k
        if n > 1 and k > 1:
            # The thirds' centres are closer together than the window's ends.
            tt = list(self.t)
            span_eff = (sum(tt[-k:]) - sum(tt[:k])) / k
        else:
            span_eff = span
        speed = math.hypot(dx, dy) / span_eff if span_eff > 0 else math.nan
        if span_eff > 0:
            self.vx, self.vy = dx / span_eff, dy / span_eff
        # The whole box moved, not just grew or shrank: when an occluder passes, a box's bottom edge
        # slides or jumps while the rest of the box does not follow. Either the top edge moved with the
        # bottom, or the box changed as a vehicle changing its distance to the camera does (see
        # `_scaled`); and with a road-plane calibration, the bottom's distance changed as much as the
        # width says (`_bottom_follows_width`). A window that holds a jump or such a change of shape
        # measures them, not the vehicle.
        together = abs(dtop - dy) <= 0.5 * max(math.hypot(dx, dy), math.hypot(dx, dtop)) + 4.0
        rigid = self.t[0] > self.last_jump_ts
        if n < 3:
            rigid = rigid and together  # one step: too few to tell the box's jitter from its change
        else:
            one_body = together or _scaled(list(self.log_w), list(self.log_h), k)
            if one_body and n >= MIN_SHAPE_POINTS and len(self.log_near) == n:
                one_body = _bottom_follows_width(list(self.log_w), list(self.log_near), k)
            if not one_body:
                self.last_change_ts = t
            rigid = rigid and self.t[0] > self.last_change_ts
        self.first_ts = min(self.first_ts, t)
        self.last_ts = t
        return _Motion(dx, dy, span, speed, rigid, jump)


#: Observations a motion window needs before the bottom-centre's distance is compared with the box
#: width (`_bottom_follows_width`): the box jitter is estimated from their frame-to-frame changes.
MIN_SHAPE_POINTS = 9
#: How far a rigid vehicle's box height may change beyond its width, as a fraction of the width's
#: change (in logarithms): the box top is the far edge of the roof, which perspective scales less than
#: the near bottom edge and width. 0 for a flat upright object; up to 0.37 for simulated cars (1.2-1.5
#: m high), trucks, buses and motorbikes on cameras 4-12 m up, looking along the road or up to 45°
#: across it.
MAX_TOP_LAG = 0.4
#: A box's change is shape, not motion, when it is this many standard errors of the box jitter away
#: from what a rigid vehicle's motion explains.
SHAPE_Z = 3.5
#: How much more the bottom-centre's distance to the camera may change than the box width says, as a
#: fraction of the bottom's change, beyond the jitter: what an occluder covering or uncovering the
#: bottom edge may add to a speed unseen. A rigid vehicle's reads at most 0.03 (a truck on a camera
#: turned 25° from the road, whose box width spans some of its side), within the jitter tolerance.
MAX_BOTTOM_LEAD = 0.02
#: How much less it may change: the box width of a vehicle off the camera's axis spans its nearer
#: side too, which perspective scales faster (up to 0.24 in the same simulations, for motorbikes).
MAX_BOTTOM_LAG = 0.35
#: Box jitter assumed at least, pixels (1 sigma): a noiseless track would have no tolerance at all.
MIN_JITTER_PX = 0.5


def _thirds_change(values: list[float], k: int) -> float:
    """Mean of the last `k` values minus mean of the first `k`."""
    return (sum(values[-k:]) - sum(values[:k])) / k


def _jitter_se(values: list[float], k: int, floor: float) -> float:
    """Standard error of `_thirds_change(values, k)` from box jitter alone.

    The jitter of one value is estimated from the median frame-to-frame change (robust to a flicker,
    and to the slow trend of a vehicle's motion), at least `floor`.
    """
    steps = sorted(abs(b - a) for a, b in itertools.pairwise(values))
    sigma = steps[len(steps) // 2] / (0.6745 * math.sqrt(2.0)) if steps else 0.0
    return max(sigma, floor) * math.sqrt(2.0 / k)


def _scaled(log_w: list[float], log_h: list[float], k: int) -> bool:
    """Whether the box changed as a rigid vehicle's does when its distance to the camera changes:
    width and height scale together (translation plus a uniform scale), the height by up to
    `MAX_TOP_LAG` more (the roof's far edge), within the jitter.

    An occluder covering or uncovering the bottom (or top) edge changes the height, not the width.

    Args:
        log_w: (N,) ln box width over the motion window, oldest first.
        log_h: (N,) ln box height, the same observations.
        k: observations in each third compared.
    """
    scale = _thirds_change(log_w, k)
    aspect = [h - w for w, h in zip(log_w, log_h, strict=True)]
    change = _thirds_change(aspect, k)
    lo, hi = sorted((0.0, MAX_TOP_LAG * scale))
    floor = MIN_JITTER_PX * (math.exp(-min(log_w)) + math.exp(-min(log_h)))
    tol = SHAPE_Z * _jitter_se(aspect, k, floor)
    return lo - tol <= change <= hi + tol


def _bottom_follows_width(log_w: list[float], log_near: list[float], k: int) -> bool:
    """Whether the bottom-centre's distance to the camera changed as much as the box width says.

    On the road plane, 1 / depth of the bottom-centre (`log_near`, from the calibration) and the width
    of the vehicle's near end both scale with 1 / its distance: their ratio stays put as it drives
    towards the camera or away. An occluder covering or uncovering the bottom edge moves the bottom
    and not the width, the bottom then reads a distance changing faster or slower than the vehicle's.

    Args:
        log_w: (N,) ln box width over the motion window, oldest first.
        log_near: (N,) ln(1 / depth) of the bottom-centre, up to a constant, the same observations.
        k: observations in each third compared.
    """
    near = _thirds_change(log_near, k)
    ratio = [w - d for w, d in zip(log_w, log_near, strict=True)]
    lead = -_thirds_change(ratio, k) * (1.0 if near >= 0 else -1.0)  # > 0: the bottom ran ahead
    tol = SHAPE_Z * _jitter_se(ratio, k, MIN_JITTER_PX * math.exp(-min(log_w)))
    return -MAX_BOTTOM_LAG * abs(near) - tol <= lead <= MAX_BOTTOM_LEAD * abs(near) + tol


class _Cursor(NamedTuple):
    """The last row of a track the engine read, and the latest time read from it."""

    frame: int
    ts: float
    read_until: float  # rows not later than this are not read (-inf right after a restart)


@dataclass(frozen=True, slots=True)
class _Carried:
    """A vehicle reported before the clock stepped: where it was heading, and for what."""

    reported: frozenset[tuple[RuleId, str]]
    x: float
    y: float
    vx: float
    vy: float
    step_s: float  # its last interval between observations (the frame gap across the step is unknown)
    group: str


@dataclass(slots=True)
class _Emitted:
    ts: float
    rule: RuleId
    ref: str
    x: float
    y: float
    key: int
    window_s: float
    first_seen: float  # the reporting vehicle's first and last observation, once it is forgotten
    last_seen: float


def _horizon(scene: Scene) -> tuple[float, float, float] | None:
    """The road plane's depth in the image, from the speed calibration: a, b, c with
    ``|a·x + b·y + c|`` proportional to 1 / depth of the road point at pixel (x, y) (the third row of
    the image → road homography); None without a calibration, or when depth hardly changes across the
    frame (a camera looking straight down): then the bottom tells no distance to compare the width with.
    """
    if scene.speed is None:
        return None
    a, b, c = (float(v) for v in scene.speed.homography[2])
    width, height = scene.resolution
    near = [abs(a * x + b * y + c) for x in (0, width) for y in (0, height)]
    if max(near) <= 1.1 * min(near):
        return None
    return a, b, c


def _group(vehicle_class: str) -> str:
    """Coarse class for stitching: a motorbike id never continues a car's."""
    reg = regime(vehicle_class)
    return reg if reg is not None else vehicle_class


class RuleEngine:
    """The enabled rules of one scene, with per-vehicle state, fed once per processed frame."""

    #: Two tracks seen together for this long are two vehicles, not one re-found under a new id.
    COEXIST_S = 0.5
    #: Update times that go back by more than this: the clock was set (or a source restarted with its
    #: own clock), and the engine restarts (see `restart`). Container times of a file may wobble by a
    #: few milliseconds; the live frame clock steps only by more than a second.
    TIME_BACK_S = 0.5

    def __init__(
        self,
        scene: Scene,
        class_names: Sequence[str] = COCO_NAMES,
        rules: Iterable[RuleId] | None = None,
        signal_stale_s: float = 2.0,
    ) -> None:
        """Args:
        scene: the camera's scene.
        class_names: detector class names indexed by `TrackHistory.class_id`.
        rules: the rules to run (default: all the scene enables).
        signal_stale_s: a light not reported for this long counts as unknown.

        Raises:
            ValueError: a requested rule the scene cannot enforce (the message says why).
        """
        self.scene = scene
        self.tol = scene.tolerances
        self.class_names = tuple(class_names)
        status = scene.rule_status()
        wanted = tuple(rules) if rules is not None else scene.enabled_rules()
        for rule in wanted:
            if rule not in RULE_IDS:
                raise ValueError(f"unknown rule {rule!r}")
            if status[rule] is not None:
                raise ValueError(f"rule {rule} cannot run on this scene: {status[rule]}")
        self.enabled: tuple[RuleId, ...] = tuple(r for r in RULE_IDS if r in wanted)
        self.signals = SignalBook(stale_s=signal_stale_s)
        self.line_frames = {
            line.id: geometry.StopLineFrame(line.points, line.travel) for line in scene.stop_lines
        }
        self.rules: list[Rule] = []
        signal_rules: set[RuleId] = {r for r in self.enabled if r in ("red_light", "stop_line")}
        # The one rule that holds events back and logs crossings, when enabled.
        self._signal_rule = SignalLineRule(scene, self.line_frames, signal_rules) if signal_rules else None
        if self._signal_rule is not None:
            self.rules.append(self._signal_rule)
        if "wrong_way" in self.enabled:
            self.rules.append(WrongWayRule(scene))
        if "wrong_lane" in self.enabled:
            self.rules.append(WrongLaneRule(scene))
        if "illegal_stop" in self.enabled:
            self.rules.append(IllegalStopRule(scene))
        if "sidewalk" in self.enabled:
            self.rules.append(SidewalkRule(scene))
        if "speeding" in self.enabled:
            self.rules.append(SpeedingRule(scene))
        self._polygons = self._needed_polygons()
        self._horizon = _horizon(scene)
        self._signal_lines = [line.id for line in scene.signal_lines()] if signal_rules else []
        self._vehicles: dict[int, _Vehicle] = {}
        self._key_of: dict[int, int] = {}  # tracker id → vehicle key
        self._cursor: dict[int, _Cursor] = {}  # tracker id → the last row read
        self._next_key = 1
        self._emitted: deque[_Emitted] = deque()
        self._now: float | None = None  # time of the last update
        self._reported: dict[int, set[tuple[RuleId, str]]] = {}  # vehicle key → (rule, line/zone) kept
        # Vehicles reported before the last restart, for the vehicles first seen just after it.
        self._carried: list[_Carried] = []
        self._carry_from: float | None = None  # time of the first update after the restart
        self._inherited: dict[int, frozenset[tuple[RuleId, str]]] = {}  # vehicle key → reported before
        logger.info("camera %s: rules %s", scene.camera_id, ", ".join(self.enabled) or "none")

    def _needed_polygons(self) -> list[_Polygon]:
        s = self.scene
        polys: list[tuple[str, npt.NDArray[np.float64]]] = []
        lane_ids = {lane for line in s.signal_lines() for lane in line.lanes}
        for lane in s.lanes:
            if "wrong_lane" in self.enabled or lane.id in lane_ids:
                polys.append((f"lanes:{lane.id}", np.asarray(lane.polygon, np.float64)))
        if "wrong_way" in self.enabled:
            polys += [(f"wrong_way_zones:{z.id}", np.asarray(z.polygon)) for z in s.wrong_way_zones]
        if "illegal_stop" in self.enabled:
            polys += [(f"stop_zones:{z.id}", np.asarray(z.polygon)) for z in s.stop_zones]
        if "sidewalk" in self.enabled:
            polys += [(f"sidewalks:{z.id}", np.asarray(z.polygon)) for z in s.sidewalks]
        if "speeding" in self.enabled and s.speed is not None:
            polys.append(("speed:zone", s.speed.measurement_zone()))
        out = []
        for name, poly in polys:
            lo, hi = poly.min(axis=0), poly.max(axis=0)
            out.append((name, poly, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))))
        return out

    # --- the per-frame entry point ---------------------------------------------------------------

    def update(
        self, tracks: Iterable[TrackHistory], signals: Mapping[str, SignalReading], now_ts: float
    ) -> list[ViolationEvent]:
        """Feed the live tracks after a frame; returns the violations established by it (and, when
        `now_ts` went back by more than `TIME_BACK_S`, first the held ones `restart` decided).

        Args:
            tracks: every live track (e.g. a `TrackStore`); a track missing from here has ended.
            signals: the latest reading of each light, by light id (pass them on every update).
            now_ts: the frame's timestamp.
        """
        decided: list[ViolationEvent] = []
        if self._now is not None and now_ts < self._now - self.TIME_BACK_S:
            logger.warning(
                "camera %s: time went back %.3f s (from %.3f to %.3f): rules start afresh",
                self.scene.camera_id,
                self._now - now_ts,
                self._now,
                now_ts,
            )
            decided = self.restart()
        self._now = now_ts
        if self._carried:
            if self._carry_from is None:
                self._carry_from = now_ts
            elif now_ts - self._carry_from > self.tol.stitch_gap_s:
                self._carried = []  # whoever appears now is not one of them
        self.signals.observe(signals, now_ts)
        batch, live = self._collect(tracks, now_ts)
        events: list[ViolationEvent] = []
        if len(batch):
            self._geometry(batch)
            for rule in self.rules:
                events.extend(rule.process(batch, self.signals, now_ts))
        if self._signal_rule is not None:  # events held for the light reader to settle
            events.extend(self._signal_rule.release(self.signals, now_ts))
        if events:
            events = self._dedup(events, now_ts)
        self._gc(live, now_ts)
        return decided + events

    @property
    def held(self) -> int:
        """Events established but held back for a moment (see `SignalLineRule.release`)."""
        return self._signal_rule.held if self._signal_rule is not None else 0

    def finish(self, now_ts: float) -> list[ViolationEvent]:
        """The video ended at `now_ts`: the events still held (red lights waiting for the light
        reader to settle), decided on the readings there are. Crossings waiting for their vehicle's
        movement (lines with exits) are decided too, with the movement seen so far: call
        `pop_crossings` after it."""
        if self._signal_rule is None:
            return []
        events = self._signal_rule.release(self.signals, now_ts, final=True)
        return self._dedup(events, now_ts) if events else events

    def pop_crossings(self) -> list[CrossingRecord]:
        """Stop-line crossings (any light state) decided since the last call, oldest first. On a line
        with exits a crossing is decided once its movement is known (see `SignalLineRule`), up to
        ``movement_window_s`` after it, or at `finish`."""
        if self._signal_rule is None:
            return []
        out, self._signal_rule.crossings = self._signal_rule.crossings, []
        return sorted(out, key=lambda c: c.ts)

    @property
    def vehicle_count(self) -> int:
        """Vehicles whose state the engine holds (live tracks plus those waiting to be stitched)."""
        return len(self._vehicles)

    def reset(self) -> None:
        """Forget every vehicle, signal and emitted event (new video)."""
        self._forget_all()
        self._cursor.clear()

    def restart(self) -> list[ViolationEvent]:
        """The clock stepped (set by NTP or by hand): times before and after cannot be compared.

        Decides the held events on the readings there are at the last update (as `finish` does, so
        nothing decided on readings from after the step), then forgets every vehicle, signal and
        emitted event: durations, dwells and motion are measured afresh from the next update. The rows
        of the live tracks read so far stay read. A vehicle first seen within ``stitch_gap_s`` of
        the next update where a vehicle reported before was heading continues it: it is not reported
        again for the same rule and line or zone.

        Returns:
            The held events, decided.
        """
        events = self.finish(self._now) if self._now is not None else []
        carried: list[_Carried] = []
        for key, veh in self._vehicles.items():
            reported = self._reported.get(key, set()) | self._inherited.get(key, frozenset())
            if not reported or not veh.x:
                continue
            step = veh.t[-1] - veh.t[-2] if len(veh.t) > 1 else 0.0
            carried.append(
                _Carried(frozenset(reported), veh.x[-1], veh.y[-1], veh.vx, veh.vy, step, veh.group)
            )
        self._forget_all()
        self._cursor = {
            tid: _Cursor(c.frame, c.ts, -math.inf) for tid, c in self._cursor.items()
        }  # rows after these are new, whatever their time says
        self._carried = carried
        return events

    def _forget_all(self) -> None:
        gone = set(self._vehicles)
        for rule in self.rules:
            rule.forget(gone)
        self._vehicles.clear()
        self._key_of.clear()
        self._emitted.clear()
        self._reported.clear()
        self._inherited.clear()
        self._carried = []
        self._carry_from = None
        self._now = None
        self.signals.reset()

    # --- internals ---------------------------------------------------------------------------------

    def _class_name(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) else "other"

    def _collect(self, tracks: Iterable[TrackHistory], now_ts: float) -> tuple[Batch, set[int]]:
        keys: list[int] = []
        tids: list[int] = []
        frames: list[int] = []
        boxes: list[Box] = []
        classes: list[str] = []
        ts: list[float] = []
        xs: list[float] = []
        ys: list[float] = []
        speed: list[float] = []
        dx: list[float] = []
        dy: list[float] = []
        rigid: list[bool] = []
        jump: list[bool] = []
        span: list[float] = []
        stationary: list[bool] = []
        gap: list[float] = []
        live: set[int] = set()
        tol = self.tol
        fresh: list[tuple[TrackHistory, list[int]]] = []
        for track in tracks:
            tid = track.tracker_id
            live.add(tid)
            rows = self._new_rows(track)
            if rows:
                fresh.append((track, rows))
        updated = {track.tracker_id for track, _ in fresh}
        for track, rows in fresh:
            tid = track.tracker_id
            cls = self._class_name(track.class_id)
            veh = self._vehicle_for(track, rows[0], cls, updated)
            for j in rows:
                if not track.detected[j]:
                    continue
                t = track.ts[j]
                x1, y1, x2, y2 = track.xyxy[j]
                box = (float(x1), float(y1), float(x2), float(y2))
                g = t - veh.last_ts
                m = veh.observe(t, box, tol, self._horizon)
                keys.append(veh.key)
                tids.append(tid)
                frames.append(track.frame_index[j])
                boxes.append(box)
                classes.append(cls)
                ts.append(t)
                xs.append((box[0] + box[2]) * 0.5)
                ys.append(box[3])
                speed.append(m.speed)
                dx.append(m.dx)
                dy.append(m.dy)
                rigid.append(m.rigid)
                jump.append(m.jump)
                span.append(m.span)
                stationary.append(m.span >= 0.8 * tol.motion_window_s and m.speed < tol.stationary_speed_px_s)
                gap.append(g)
        batch = Batch(
            keys=keys,
            tracker_ids=tids,
            frames=frames,
            boxes=boxes,
            xyxy=np.asarray(boxes, np.float64).reshape(-1, 4),
            classes=classes,
            ts=np.asarray(ts, np.float64),
            points=np.stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)], axis=1),
            speed=np.asarray(speed, np.float64),
            disp=np.stack([np.asarray(dx, np.float64), np.asarray(dy, np.float64)], axis=1),
            span=np.asarray(span, np.float64),
            rigid=np.asarray(rigid, bool),
            jump=np.asarray(jump, bool),
            stationary=np.asarray(stationary, bool),
            gap=np.asarray(gap, np.float64),
        )
        return batch, live

    def _new_rows(self, track: TrackHistory) -> list[int]:
        """Indices of the rows `track` gained since the last update, in order (usually one).

        The rows after the last one read, by position (a track only grows at its end, and loses old
        rows at its start), that are later than every row read before: a row dated back a moment (a
        file's container time wobbling) is skipped, and after a `restart` every row after the last
        one read is new, whatever its time.
        """
        ts, frames = track.ts, track.frame_index
        n = len(ts)
        if not n:
            return []
        cursor = self._cursor.get(track.tracker_id)
        start, until = n, -math.inf
        if cursor is None:
            start = 0
        else:
            until = cursor.read_until
            while start > 0 and not (frames[start - 1] == cursor.frame and ts[start - 1] == cursor.ts):
                start -= 1  # not found: the track lost its old rows (or is another): all rows are new
        self._cursor[track.tracker_id] = _Cursor(frames[-1], ts[-1], max(until, ts[-1]))
        return [j for j in range(start, n) if ts[j] > until]

    def _vehicle_for(self, track: TrackHistory, start: int, cls: str, updated: set[int]) -> _Vehicle:
        """The vehicle state of a track: its own, a flickered predecessor's, or a new one."""
        tid = track.tracker_id
        key = self._key_of.get(tid)
        if key is not None:
            veh = self._vehicles.get(key)
            if veh is not None and veh.tracker_id == tid:
                return veh
            # Otherwise this old id came back after its key moved on to a successor: a new vehicle.
        elif start == 0:
            stitched = self._stitch(track, cls, updated)
            if stitched is not None:
                self._key_of[tid] = stitched.key
                return stitched
        veh = _Vehicle(key=self._next_key, tracker_id=tid, group=_group(cls))
        self._next_key += 1
        self._vehicles[veh.key] = veh
        self._key_of[tid] = veh.key
        if self._carried:
            self._inherit(veh, track, start)
        return veh

    def _inherit(self, veh: _Vehicle, track: TrackHistory, start: int) -> None:
        """A new vehicle first seen just after a restart, where a vehicle reported before the clock
        stepped was heading: the same vehicle, already reported (see `restart`)."""
        assert self._carry_from is not None
        dt = max(0.0, track.ts[start] - self._carry_from)
        x1, _, x2, y2 = track.xyxy[start]
        fx, fy = (x1 + x2) * 0.5, y2
        best: _Carried | None = None
        best_d = self.tol.stitch_radius_px
        for c in self._carried:
            if c.group != veh.group:
                continue
            ahead = dt + c.step_s
            d = math.hypot(fx - (c.x + c.vx * ahead), fy - (c.y + c.vy * ahead))
            if d <= best_d:
                best, best_d = c, d
        if best is not None:
            self._carried.remove(best)
            self._inherited[veh.key] = best.reported
            logger.info(
                "track %d continues a vehicle reported before the clock stepped (%.0f px)",
                track.tracker_id,
                best_d,
            )

    def _stitch(self, track: TrackHistory, cls: str, updated: set[int]) -> _Vehicle | None:
        """A vanished vehicle this new track continues, if one fits in time and space.

        Only vehicles whose own track got no row in this update qualify: a neighbour that is still
        being tracked is another vehicle.
        """
        tol = self.tol
        first_t = track.ts[0]
        bx1, _, bx2, by2 = track.xyxy[0]
        fx, fy = (bx1 + bx2) * 0.5, by2
        group = _group(cls)
        best: _Vehicle | None = None
        best_d = tol.stitch_radius_px
        for veh in self._vehicles.values():
            gap = first_t - veh.last_ts
            if not (0 < gap <= tol.stitch_gap_s) or veh.group != group or not veh.t:
                continue
            if veh.tracker_id in updated:
                continue
            px = veh.x[-1] + veh.vx * gap
            py = veh.y[-1] + veh.vy * gap
            d = math.hypot(fx - px, fy - py)
            if d <= best_d:
                best, best_d = veh, d
        if best is not None:
            logger.debug("track %d continues track %d (%.0f px)", track.tracker_id, best.tracker_id, best_d)
            best.tracker_id = track.tracker_id
        return best

    def _geometry(self, batch: Batch) -> None:
        pts = batch.points
        x, y = pts[:, 0], pts[:, 1]
        for name, poly, (x0, y0, x1, y1) in self._polygons:
            mask = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
            if mask.any():
                idx = mask.nonzero()[0]
                mask[idx] = geometry.points_in_polygon(pts[idx], poly)
            batch.inside[name] = mask
        for line_id in self._signal_lines:
            batch.lines[line_id] = self.line_frames[line_id].coords(pts)
        speed = self.scene.speed
        if speed is not None and "speeding" in self.enabled:
            zone = batch.inside["speed:zone"]
            ground = np.full((len(batch), 2), np.nan)
            scale = np.full(len(batch), np.nan)
            if zone.any():
                ground[zone] = geometry.apply_homography(speed.homography, pts[zone])
                scale[zone] = geometry.homography_scale(speed.homography, pts[zone])
            batch.ground, batch.ground_scale = ground, scale

    def _dedup(self, events: list[ViolationEvent], now_ts: float) -> list[ViolationEvent]:
        tol = self.tol
        while self._emitted and now_ts - self._emitted[0].ts > self._emitted[0].window_s:
            self._emitted.popleft()
        kept: list[ViolationEvent] = []
        for ev in events:
            d = ev.details
            ref = str(d.get("line_id") or d.get("zone_id") or d.get("lane_id") or "")
            x = (ev.box_xyxy[0] + ev.box_xyxy[2]) * 0.5
            y = ev.box_xyxy[3]
            key = self._key_of.get(ev.track_id, -1)
            if (ev.rule, ref) in self._inherited.get(key, ()):
                logger.info(
                    "dropped %s event for track %d: the vehicle was reported before the clock stepped",
                    ev.rule,
                    ev.track_id,
                )
                continue
            cur = self._vehicles.get(key)
            first = cur.first_ts if cur is not None else ev.ts
            window = tol.dedup_window_s
            duplicate = False
            for old in self._emitted:
                if old.rule != ev.rule or old.ref != ref or old.key == key:
                    continue
                if abs(ev.ts - old.ts) > max(window, old.window_s):
                    continue
                if math.hypot(x - old.x, y - old.y) > tol.dedup_radius_px:
                    continue
                holder = self._vehicles.get(old.key)
                if holder is not None:
                    since, until = holder.first_ts, holder.last_ts
                else:
                    since, until = old.first_seen, old.last_seen
                if until >= now_ts:
                    continue  # the earlier vehicle is still here: two vehicles, two events
                if until - max(since, first) >= self.COEXIST_S:
                    # Both were tracked at the same time (a follower that reached the spot after the
                    # leader drove out of view): two vehicles, whatever the tracker does later.
                    continue
                duplicate = True
                break
            if duplicate:
                logger.info("dropped duplicate %s event for track %d", ev.rule, ev.track_id)
                continue
            self._emitted.append(_Emitted(ev.ts, ev.rule, ref, x, y, key, window, first, now_ts))
            if key in self._vehicles:
                self._reported.setdefault(key, set()).add((ev.rule, ref))
            kept.append(ev)
        return kept

    def _gc(self, live: set[int], now_ts: float) -> None:
        """Forget vehicles whose track ended and that nothing continued within the stitch gap."""
        gone = {
            key
            for key, veh in self._vehicles.items()
            if veh.tracker_id not in live and now_ts - veh.last_ts > self.tol.stitch_gap_s
        }
        if gone:
            for rule in self.rules:
                rule.forget(gone)
            for em in self._emitted:
                if em.key in gone:
                    veh = self._vehicles[em.key]
                    em.first_seen, em.last_seen = veh.first_ts, veh.last_ts
            for key in gone:
                del self._vehicles[key]
                self._reported.pop(key, None)
                self._inherited.pop(key, None)
        for tid in [tid for tid in self._key_of if tid not in live]:
            del self._key_of[tid]
            self._cursor.pop(tid, None)
