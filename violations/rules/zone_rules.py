"""Rules about where a vehicle is and how it moves there: wrong way, wrong lane, illegal stop, sidewalk.

Each rule keeps a small state per (vehicle, zone) and looks only at the rows inside its zones. Motion
is the displacement over the engine's motion window (``Tolerances.motion_window_s``), which is robust
to the few pixels of box jitter a detector adds from frame to frame.

- wrong way (đi ngược chiều): inside a one-way zone, moving more than ``max_angle_deg`` off the
  allowed direction for ``min_duration_s`` and ``min_travel_px``. The time counted is the time the
  vehicle is seen actually moving against the direction (its wheels advancing, not the motion window
  still remembering a movement that ended); a pause of up to `WrongWayRule.STANDSTILL_S` counts, a
  longer standstill ends the episode, so two short reversals with a wait between never add up.
  Sideways motion holds the timer, motion with the direction resets it, so a U-turn made outside the
  zone is never flagged. Only rigid motion counts (`Batch.rigid`): in a dense queue, a box whose
  bottom edge drops as the bike in front moves away looks like a vehicle moving down the image, but
  its top edge stays put.
- wrong lane (đi không đúng làn): the track's majority class is not allowed in a lane it travels along
  (moving within the lane's ``max_angle_deg`` of its direction) for ``wrong_lane_min_s`` of travel in
  the lane, its wheels at least the lane's ``edge_margin_px`` inside the lane's edges; leaving the
  lane (or riding on its edge) starts over, and a vehicle crossing the lane to turn does not count.
- illegal stop (dừng/đỗ sai quy định): stationary inside a stop zone for ``max_dwell_s``; time spent
  queueing does not count. A queue at a light: while the zone's light is red, amber or unknown, and
  ``queue_release_s`` after it turns green. A queue in stopped traffic (a jam, with or without a
  light): while the vehicle stands in a column of stationary vehicles (one close ahead of it or behind
  it in its direction of travel) and no traffic of its kind drives past it, for at most
  ``max_queue_s`` per stop. A parked car is passed by traffic (fined after ``max_dwell_s``) or stands
  alone (likewise); only a row of parked cars on an empty street looks like a queue, and the bound
  fines it after ``max_dwell_s + max_queue_s`` at the latest.
- sidewalk (đi trên vỉa hè): a (two-wheeled, by default) vehicle moving inside a sidewalk zone for
  ``min_duration_s`` and ``min_travel_px``; crossing the sidewalk to reach a gate is shorter.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from violations import geometry
from violations.legal import reference, regime, stop_reference
from violations.rules.base import Batch, SignalBook, make_event, r2
from violations.scene import Polygon, Scene, StopZone
from violations.types import RuleId, ViolationEvent

logger = logging.getLogger(__name__)


def _angle(dx: float, dy: float, ux: float, uy: float) -> float:
    """Degrees between (dx, dy) and the unit vector (ux, uy); 0 for a zero vector."""
    n = math.hypot(dx, dy)
    if n == 0.0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, (dx * ux + dy * uy) / n))))


def _well_inside(batch: Batch, area: str, polygon: Polygon, margin: float) -> npt.NDArray[np.bool_]:
    """(M,) whether each row's point is inside `area` (a `Batch.inside` key) at least `margin` pixels
    from the edges of its `polygon`: a point on the edge is box jitter, not a vehicle in the area."""
    inside = batch.inside[area].copy()
    rows = inside.nonzero()[0]
    if len(rows) and margin > 0:
        depth = geometry.distance_to_edges(batch.points[rows], polygon)
        inside[rows[depth < margin]] = False
    return inside


@dataclass(slots=True)
class _Episode:
    """Timer state of one vehicle in one zone."""

    last_ts: float
    since: float | None = None
    start_x: float = 0.0
    start_y: float = 0.0
    amount: float = 0.0  # dwell seconds (stop) or distance ridden (sidewalk)
    duration: float = 0.0  # moving seconds (sidewalk)
    excused: float = 0.0  # seconds queueing at the zone's light, not counted (stop)
    queued: float = 0.0  # seconds queueing in stopped traffic, not counted (stop; bounded by max_queue_s)
    column_ts: float = -math.inf  # last time it stood in a column of stationary vehicles (stop)
    moving_since: float | None = None
    # Where and when the vehicle was last seen to move by a step (wrong way).
    anchor_x: float = 0.0
    anchor_y: float = 0.0
    anchor_t: float = -math.inf
    still_since: float | None = None  # stationary over the motion window since (wrong way)
    step_against: bool = False  # its latest step went against the direction (wrong way)
    emitted: bool = False
    arrived: bool = False  # drove in: seen moving further than the dedup radius inside the zone

    def restart(self, t: float) -> None:
        """Reset the timers; `emitted` stays, so a vehicle is reported once per zone."""
        self.last_ts, self.since, self.moving_since = t, None, None
        self.amount = self.duration = self.excused = self.queued = 0.0
        self.column_ts = -math.inf


class _ZoneRule:
    """Shared bookkeeping: state per (key, zone id), forgetting."""

    rule_ids: tuple[RuleId, ...] = ()

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.tol = scene.tolerances
        self._state: dict[tuple[int, str], _Episode] = {}

    def forget(self, keys: set[int]) -> None:
        """Drop the state of vehicles that left."""
        for k in [k for k in self._state if k[0] in keys]:
            del self._state[k]

    def _episode(self, key: int, zone: str, t: float) -> tuple[_Episode, bool]:
        """The vehicle's episode in the zone and whether it (re)started now.

        A gap in the observations longer than ``max_gap_s`` (occlusion, leaving the zone) restarts
        the timers.
        """
        ep = self._state.get((key, zone))
        if ep is None:
            ep = self._state[(key, zone)] = _Episode(last_ts=t)
            return ep, True
        if t - ep.last_ts > self.tol.max_gap_s:
            ep.restart(t)
            return ep, True
        return ep, False


class WrongWayRule(_ZoneRule):
    """Sustained motion against a zone's allowed direction.

    The direction comes from the motion window (`Batch.disp`), which is robust to box jitter but
    remembers a movement for a window's length after it ended (and lags behind a reversal). The time
    comes from steps: the bottom-centre moving ``min_motion_px`` (far more than a box's bottom wobbles)
    from where the previous step ended. The time from one step against the direction to the next is
    time driving against it, so ``against_for_s`` starts with the second such step and ends with the
    latest. A vehicle that makes no step for `STANDSTILL_S`, or stands that long over the motion
    window, is standing, and its episode ends there.
    """

    rule_ids: tuple[RuleId, ...] = ("wrong_way",)

    #: Standing this long ends an episode: a reversal, a wait, another reversal are two short reversals,
    #: not one long one. A shorter pause (slowing behind traffic) is part of the ride.
    STANDSTILL_S = 1.0

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        out: list[ViolationEvent] = []
        step_px = self.tol.min_motion_px
        for zone in self.scene.wrong_way_zones:
            ux, uy = zone.direction
            for i in map(int, batch.inside[f"wrong_way_zones:{zone.id}"].nonzero()[0]):
                cls = batch.classes[i]
                if cls not in zone.classes:
                    continue
                t = float(batch.ts[i])
                x, y = float(batch.points[i, 0]), float(batch.points[i, 1])
                ep, started = self._episode(batch.keys[i], zone.id, t)
                ep.last_ts = t
                if started or batch.jump[i]:
                    # New here, or the tracker swapped vehicles / the box flickered: start over from here.
                    ep.since, ep.duration, ep.still_since, ep.step_against = None, 0.0, None, False
                    ep.anchor_x, ep.anchor_y, ep.anchor_t = x, y, t
                    if batch.jump[i]:
                        continue
                sx, sy = x - ep.anchor_x, y - ep.anchor_y
                pause = t - ep.anchor_t
                stepped = math.hypot(sx, sy) > step_px
                if stepped:
                    ep.anchor_x, ep.anchor_y, ep.anchor_t = x, y, t
                if not batch.stationary[i]:
                    ep.still_since = None
                elif ep.still_since is None:
                    ep.still_since = t
                if (not stepped and pause > self.STANDSTILL_S) or (
                    ep.still_since is not None and t - ep.still_since > self.STANDSTILL_S
                ):
                    # No step for a while, or standing as long: moving against the direction again
                    # is a new episode.
                    ep.since, ep.duration, ep.step_against = None, 0.0, False
                    continue
                if not batch.rigid[i]:
                    continue  # a box resizing: hold
                if stepped:
                    against = _angle(sx, sy, ux, uy) > zone.max_angle_deg
                    if against and ep.step_against and pause <= self.STANDSTILL_S:
                        # From one step against the direction to the next: driving against it. (The
                        # first step's time may include driving the other way before reversing.)
                        ep.duration += pause
                    ep.step_against = against
                dx, dy = float(batch.disp[i, 0]), float(batch.disp[i, 1])
                ang = _angle(dx, dy, ux, uy)
                clear = math.hypot(dx, dy) >= self.tol.min_motion_px  # enough motion to tell a direction
                if clear and ang <= 90.0 and not ep.step_against:
                    # Moving the allowed way. (Just after reversing, the window still shows the motion
                    # before; the steps already go against the direction.)
                    ep.since, ep.duration = None, 0.0
                    continue
                if not clear or ang <= zone.max_angle_deg:
                    continue  # too little motion to tell a direction, or sideways (turning, crossing): hold
                if ep.since is None:
                    # The motion window already covers the recent past: date the episode from its start.
                    ep.since = t - float(batch.span[i])
                    ep.start_x, ep.start_y = x - dx, y - dy
                travel = -((x - ep.start_x) * ux + (y - ep.start_y) * uy)
                # At least the vehicle's own size: a shuffle in a packed queue is not driving.
                need = max(zone.min_travel_px, 0.75 * float(batch.xyxy[i, 3] - batch.xyxy[i, 1]))
                if ep.emitted or ep.duration < zone.min_duration_s or travel < need:
                    continue
                ref = reference("wrong_way", cls)
                if ref is None:
                    continue
                ep.emitted = True
                details = {
                    "zone_id": zone.id,
                    "allowed_direction": [r2(ux), r2(uy)],
                    "motion_angle_deg": r2(ang),
                    "against_for_s": r2(ep.duration),
                    "travel_px": r2(travel),
                }
                out.append(make_event(self.scene, "wrong_way", ref, batch, i, ep.since, details))
        return out


class WrongLaneRule(_ZoneRule):
    """A vehicle class travelling in a lane that does not allow it.

    Only travel in the lane counts, with the wheels (box bottom-centre) at least the lane's
    ``edge_margin_px`` inside its edges: a row outside the lane, or on its edge, starts over, so dips
    into the lane while weaving never add up, and a rider along the divider whose box wobbles across
    it is in its own lane.
    """

    rule_ids: tuple[RuleId, ...] = ("wrong_lane",)

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        out: list[ViolationEvent] = []
        for lane in self.scene.lanes:
            ux, uy = lane.direction
            inside = _well_inside(batch, f"lanes:{lane.id}", lane.polygon, lane.edge_margin_px)
            for i in range(len(batch.keys)):
                ep = self._state.get((batch.keys[i], lane.id))
                if ep is not None and not inside[i]:
                    # Out of the lane (or on its edge): the next row inside starts a new stretch.
                    ep.restart(-math.inf)
            for i in map(int, inside.nonzero()[0]):
                cls = batch.classes[i]
                if cls in lane.classes or reference("wrong_lane", cls) is None:
                    continue
                t = float(batch.ts[i])
                ep, started = self._episode(batch.keys[i], lane.id, t)
                dt = 0.0 if started else t - ep.last_ts
                ep.last_ts = t
                dx, dy = float(batch.disp[i, 0]), float(batch.disp[i, 1])
                if (
                    batch.stationary[i]
                    or batch.jump[i]
                    or not batch.rigid[i]
                    or math.hypot(dx, dy) < self.tol.min_motion_px
                ):
                    continue  # waiting in the lane, or a box resizing: hold, not counted
                if _angle(dx, dy, ux, uy) > lane.max_angle_deg:
                    ep.since, ep.duration = None, 0.0  # crossing the lane, not travelling in it
                    continue
                if ep.since is None:
                    ep.since = t - dt
                ep.duration += dt
                if ep.emitted or ep.duration < self.tol.wrong_lane_min_s:
                    continue
                ref = reference("wrong_lane", cls)
                assert ref is not None
                ep.emitted = True
                details = {
                    "lane_id": lane.id,
                    "allowed_classes": list(lane.classes),
                    "in_lane_for_s": r2(ep.duration),
                }
                out.append(make_event(self.scene, "wrong_lane", ref, batch, i, ep.since, details))
        return out


@dataclass(slots=True)
class _Spot:
    """Where an illegal-stop event was reported, kept while a stationary vehicle is seen there."""

    zone: str
    x: float
    y: float
    key: int
    last_seen: float
    keep_s: float


@dataclass(slots=True)
class _Car:
    """What the illegal-stop rule knows of one vehicle anywhere in view (in a stop zone or not)."""

    t: float  # latest observation
    x: float  # bottom-centre
    y: float
    w: float  # box size
    h: float
    group: str  # regime ("car" for cars, buses, trucks): only its own kind's traffic is its traffic
    still: bool
    hx: float = 0.0  # recent displacement while driving, decayed: the direction it came from
    hy: float = 0.0
    move_ts: float = -math.inf  # latest observation driving
    passed_ts: float = -math.inf  # latest time traffic of its kind drove past it while it stood

    def heading(self) -> tuple[float, float] | None:
        """Unit direction of travel, None for a vehicle never seen driving."""
        n = math.hypot(self.hx, self.hy)
        return None if n < 1.0 else (self.hx / n, self.hy / n)


@dataclass(slots=True)
class _Standing:
    """The stationary vehicles of one update, as arrays for the neighbour tests."""

    keys: npt.NDArray[np.int64]  # (N,)
    pos: npt.NDArray[np.float64]  # (N, 2) bottom-centres
    size: npt.NDArray[np.float64]  # (N, 2) box width, height
    heading: npt.NDArray[np.float64]  # (N, 2) unit direction of travel, (0, 0) when unknown
    known: npt.NDArray[np.bool_]  # (N,) heading known
    group: npt.NDArray[np.str_]  # (N,)


def _extents(
    w: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    ux: npt.NDArray[np.float64],
    uy: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Extents of boxes of size (w, h) along and across unit directions (ux, uy), broadcast: a vehicle's
    length and width as the camera sees them."""
    ax, ay = np.abs(ux), np.abs(uy)
    return ax * w + ay * h, ay * w + ax * h


class IllegalStopRule(_ZoneRule):
    """Stationary inside a no-stopping / no-parking zone longer than allowed, queueing excluded.

    Queueing is time at the zone's light (see `_excused`) and time in stopped traffic: the vehicle
    stands in a column of stationary vehicles (another one within ``COLUMN_REACH`` lengths ahead of it
    or behind it, in its path; any one close by for a vehicle never seen driving) while no traffic of
    its kind drives past it (oncoming traffic, and motorbikes filtering past cars, say nothing about
    its queue). Stopped traffic is excused for at most ``StopZone.max_queue_s`` per stop, so a row of
    parked cars on an empty street (which looks like a queue) is still fined. The rule sees every
    vehicle in view, not only those in its zones: the car ahead of a queue's last one may stand past
    the zone. A queued car with nothing visible ahead of it or behind it looks like a lone parked car
    and its stop counts.

    A reported spot is remembered while any stationary vehicle is seen on it: when the tracker loses
    a parked car behind passing traffic and finds it again under a new id, the new id's dwell is not
    a second violation.
    """

    rule_ids: tuple[RuleId, ...] = ("illegal_stop",)

    #: Moving this long ends a stop episode (a creeping queue does not).
    MOVE_RESET_S = 1.0
    #: Another stationary vehicle this many lengths (box extent along the heading) ahead or behind, ...
    COLUMN_REACH = 2.5
    #: ... and sideways within this fraction of their mean width (the same lane), is in the column.
    IN_PATH = 0.6
    #: A vehicle of the same kind moving by, sideways between IN_PATH and this many widths (the next
    #: lanes) and within COLUMN_REACH lengths along, is traffic driving past a stopped vehicle ...
    PASS_REACH = 4.0
    #: ... when it moves at least this many of its box heights per second (a creeping queue is slower).
    FLOW_SPEED = 0.5
    #: Traffic that drove past a stopped vehicle makes it not queueing for this long.
    PASSED_HOLD_S = 5.0
    #: A vehicle stays queueing this long after the column around it moves off (it starts a moment after
    #: the one ahead; a neighbour's box is missed for a few frames).
    COLUMN_HOLD_S = 3.0
    #: Seconds of driving the heading remembers (a short reverse into a parking space does not flip it).
    HEADING_S = 3.0
    #: A vehicle not seen for this long is nobody's neighbour.
    SEEN_S = 2.0

    def __init__(self, scene: Scene) -> None:
        super().__init__(scene)
        self._spots: list[_Spot] = []
        self._cars: dict[int, _Car] = {}
        self._queue_on = any(zone.max_queue_s > 0 for zone in scene.stop_zones)
        self._standing = self._no_one()

    def forget(self, keys: set[int]) -> None:
        """Drop the state of vehicles that left."""
        super().forget(keys)
        for key in keys:
            self._cars.pop(key, None)

    def _spot(self, zone: str, key: int, x: float, y: float, t: float) -> _Spot | None:
        """Refresh and return a reported spot of `zone` at (x, y) held by another vehicle."""
        found = None
        for spot in self._spots:
            if spot.zone == zone and math.hypot(x - spot.x, y - spot.y) <= self.tol.dedup_radius_px:
                spot.last_seen = t
                if spot.key != key:
                    found = spot
        return found

    def _excused(self, zone: StopZone, t: float, signals: SignalBook) -> bool:
        if zone.light is None:
            return False
        reading = signals.at(zone.light, t)
        if reading is None or reading.confidence < self.tol.min_signal_confidence:
            return True  # cannot tell a queue from a stop: give the benefit of the doubt
        if reading.state != "green":
            return True
        return t - reading.since_ts < zone.queue_release_s

    # --- stopped traffic ---------------------------------------------------------------------------

    @staticmethod
    def _no_one() -> _Standing:
        empty = np.zeros((0, 2), np.float64)
        return _Standing(np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, bool), np.zeros(0, np.str_))

    def _observe(self, batch: Batch, now_ts: float) -> None:
        """Update every vehicle's latest state and heading, then mark the stationary vehicles that
        traffic of their kind drives past."""
        tol = self.tol
        movers: list[int] = []
        for i in range(len(batch)):
            group = regime(batch.classes[i])
            if group is None:
                continue  # people and unknown classes are not traffic
            t = float(batch.ts[i])
            x1, y1, x2, y2 = batch.boxes[i]
            x, y = float(batch.points[i, 0]), float(batch.points[i, 1])
            still = bool(batch.stationary[i])
            car = self._cars.get(batch.keys[i])
            if car is None:
                car = self._cars[batch.keys[i]] = _Car(t, x, y, x2 - x1, y2 - y1, group, still)
            else:
                car.t, car.x, car.y, car.w, car.h, car.group, car.still = (
                    t,
                    x,
                    y,
                    x2 - x1,
                    y2 - y1,
                    group,
                    still,
                )
            dx, dy = float(batch.disp[i, 0]), float(batch.disp[i, 1])
            if still or batch.jump[i] or not batch.rigid[i] or math.hypot(dx, dy) < tol.min_motion_px:
                continue
            keep = math.exp(-(t - car.move_ts) / self.HEADING_S) if car.move_ts > -math.inf else 0.0
            car.hx, car.hy, car.move_ts = car.hx * keep + dx, car.hy * keep + dy, t
            if float(batch.speed[i]) >= self.FLOW_SPEED * (y2 - y1):
                movers.append(i)
        standing = [(k, c) for k, c in self._cars.items() if c.still and now_ts - c.t <= self.SEEN_S]
        if not standing:
            self._standing = self._no_one()
            return
        heads = [c.heading() for _, c in standing]
        self._standing = _Standing(
            keys=np.array([k for k, _ in standing], np.int64),
            pos=np.array([(c.x, c.y) for _, c in standing], np.float64),
            size=np.array([(c.w, c.h) for _, c in standing], np.float64),
            heading=np.array([h if h is not None else (0.0, 0.0) for h in heads], np.float64),
            known=np.array([h is not None for h in heads], bool),
            group=np.array([c.group for _, c in standing], np.str_),
        )
        if movers:
            self._mark_passed(batch, movers)

    def _mark_passed(self, batch: Batch, movers: list[int]) -> None:
        """Mark the stationary vehicles that the moving rows `movers` (M) of `batch` drive past."""
        s = self._standing
        rows = np.asarray(movers)
        d = batch.disp[rows] / np.hypot(batch.disp[rows, 0], batch.disp[rows, 1])[:, None]  # (M, 2)
        # Along and across each stationary vehicle's direction of travel (the mover's own direction for
        # one never seen driving), all (M, N).
        ux = np.where(s.known, s.heading[:, 0], d[:, :1])
        uy = np.where(s.known, s.heading[:, 1], d[:, 1:])
        rx = batch.points[rows, :1] - s.pos[:, 0]
        ry = batch.points[rows, 1:] - s.pos[:, 1]
        along, across = rx * ux + ry * uy, np.abs(rx * uy - ry * ux)
        length, width = _extents(s.size[:, 0], s.size[:, 1], ux, uy)
        box = batch.xyxy[rows]
        own_len, own_wid = _extents(
            (box[:, 2] - box[:, 0])[:, None], (box[:, 3] - box[:, 1])[:, None], ux, uy
        )
        mean_wid = 0.5 * (width + own_wid)
        groups = np.array([self._cars[batch.keys[i]].group for i in movers], np.str_)[:, None]
        keys = np.array([batch.keys[i] for i in movers], np.int64)[:, None]
        by = (
            (s.group == groups)
            & (s.keys != keys)
            & (d[:, :1] * ux + d[:, 1:] * uy > 0.0)  # oncoming traffic says nothing about this side's queue
            & (np.abs(along) <= self.COLUMN_REACH * np.maximum(length, own_len))
            & (across > self.IN_PATH * mean_wid)
            & (across <= self.PASS_REACH * mean_wid)
        )
        for m, n in zip(*by.nonzero(), strict=True):
            car = self._cars[int(s.keys[n])]
            car.passed_ts = max(car.passed_ts, float(batch.ts[movers[m]]))

    def _in_column(self, key: int, car: _Car) -> bool:
        """Whether another stationary vehicle stands close ahead of `car` or behind it, in its path."""
        s = self._standing
        other = s.keys != key
        rx, ry = s.pos[:, 0] - car.x, s.pos[:, 1] - car.y
        heading = car.heading()
        if heading is None:
            # Never seen driving (stationary since its track began): any stationary vehicle close by.
            reach = self.COLUMN_REACH * max(car.w, car.h)
            return bool((other & (np.hypot(rx, ry) <= reach)).any())
        ux, uy = np.full(len(s.keys), heading[0]), np.full(len(s.keys), heading[1])
        along, across = rx * ux + ry * uy, np.abs(rx * uy - ry * ux)
        length, width = _extents(s.size[:, 0], s.size[:, 1], ux, uy)
        own_len, own_wid = _extents(np.full_like(ux, car.w), np.full_like(ux, car.h), ux, uy)
        near = (
            other
            & (np.abs(along) <= self.COLUMN_REACH * np.maximum(length, own_len))
            & (across <= self.IN_PATH * 0.5 * (width + own_wid))
        )
        return bool(near.any())

    def _queueing(self, zone: StopZone, ep: _Episode, key: int, t: float) -> bool:
        """Whether a stationary vehicle is waiting in stopped traffic now (within the zone's bound)."""
        if ep.queued >= zone.max_queue_s:
            return False
        car = self._cars.get(key)
        if car is None or t - car.passed_ts <= self.PASSED_HOLD_S:
            return False  # traffic of its kind drives past it: it is not held up, it stopped
        if self._in_column(key, car):
            ep.column_ts = t
        return t - ep.column_ts <= self.COLUMN_HOLD_S

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        out: list[ViolationEvent] = []
        self._spots = [s for s in self._spots if now_ts - s.last_seen <= s.keep_s]
        if self._queue_on:
            self._observe(batch, now_ts)
        for zone in self.scene.stop_zones:
            for i in map(int, batch.inside[f"stop_zones:{zone.id}"].nonzero()[0]):
                cls = batch.classes[i]
                if cls not in zone.classes:
                    continue
                t = float(batch.ts[i])
                key = batch.keys[i]
                x, y = float(batch.points[i, 0]), float(batch.points[i, 1])
                ep, started = self._episode(key, zone.id, t)
                if started:
                    ep.start_x, ep.start_y = x, y
                dt = 0.0 if started else t - ep.last_ts
                ep.last_ts = t
                if not batch.stationary[i]:
                    if ep.moving_since is None:
                        ep.moving_since = t
                    moved = math.hypot(x - ep.start_x, y - ep.start_y) > self.tol.dedup_radius_px
                    ep.arrived = ep.arrived or moved
                    if moved and t - ep.moving_since >= self.MOVE_RESET_S:
                        # Drove off: a later stop is a new episode and may be reported again.
                        self._state[(key, zone.id)] = _Episode(last_ts=t, start_x=x, start_y=y, arrived=True)
                    continue  # box jitter or creeping in place: hold the dwell
                ep.moving_since = None
                if self._excused(zone, t, signals):
                    ep.excused += dt
                    continue
                if self._queue_on and self._queueing(zone, ep, key, t):
                    # A step that reaches the bound is dwell past it.
                    queued = min(dt, zone.max_queue_s - ep.queued)
                    ep.queued += queued
                    dt -= queued
                    if dt <= 0.0:
                        continue
                # Only a vehicle found standing on a reported spot can be the one reported there (re-found
                # under a new id); one seen driving onto it is the next vehicle to stop there.
                held_by_other = self._spot(zone.id, key, x, y, t)
                if ep.arrived:
                    held_by_other = None
                if ep.since is None:
                    ep.since = t - dt
                    ep.start_x, ep.start_y = x, y
                ep.amount += dt
                if ep.emitted or ep.amount < zone.max_dwell_s:
                    continue
                ref = stop_reference(zone.kind, cls)
                if ref is None:
                    continue
                ep.emitted = True
                if held_by_other is not None:
                    logger.info(
                        "stop zone %s: track %d is the vehicle already reported here",
                        zone.id,
                        batch.tracker_ids[i],
                    )
                    held_by_other.key = key
                    continue
                # Kept through occlusions up to the dwell limit: a car parked there that long already
                # would have been reported anyway.
                keep = max(self.tol.dedup_window_s, zone.max_dwell_s)
                self._spots.append(_Spot(zone.id, x, y, key, t, keep))
                details = {
                    "zone_id": zone.id,
                    "kind": zone.kind,
                    "dwell_s": r2(ep.amount),
                    "max_dwell_s": zone.max_dwell_s,
                    # Not counted: queueing at the light plus in stopped traffic (the latter bounded).
                    "queue_excused_s": r2(ep.excused + ep.queued),
                    "traffic_queue_s": r2(ep.queued),
                    "max_queue_s": zone.max_queue_s,
                    "light_id": zone.light,
                }
                out.append(make_event(self.scene, "illegal_stop", ref, batch, i, ep.since, details))
        return out


class SidewalkRule(_ZoneRule):
    """Riding along a sidewalk."""

    rule_ids: tuple[RuleId, ...] = ("sidewalk",)

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        out: list[ViolationEvent] = []
        for zone in self.scene.sidewalks:
            inside = _well_inside(batch, f"sidewalks:{zone.id}", zone.polygon, zone.edge_margin_px)
            for i in range(len(batch.keys)):
                ep = self._state.get((batch.keys[i], zone.id))
                if ep is not None and not inside[i]:
                    # On the road (or on the curb's edge) again: riding the sidewalk starts over.
                    ep.restart(float(batch.ts[i]))
                    ep.start_x, ep.start_y = float(batch.points[i, 0]), float(batch.points[i, 1])
            for i in map(int, inside.nonzero()[0]):
                cls = batch.classes[i]
                if cls not in zone.classes:
                    continue
                t = float(batch.ts[i])
                key = batch.keys[i]
                x, y = float(batch.points[i, 0]), float(batch.points[i, 1])
                ep, started = self._episode(key, zone.id, t)
                if started:
                    # Entering (again): a brief crossing ends with the gap, so it never adds up.
                    ep.start_x, ep.start_y = x, y
                    continue
                dt = t - ep.last_ts
                step = math.hypot(x - ep.start_x, y - ep.start_y)
                ep.last_ts, ep.start_x, ep.start_y = t, x, y
                if batch.stationary[i] or batch.jump[i] or not batch.rigid[i]:
                    continue  # standing on the sidewalk is not riding it; a resizing box is no motion
                if ep.since is None:
                    ep.since = t - dt
                ep.duration += dt
                ep.amount += step
                if ep.emitted or ep.duration < zone.min_duration_s or ep.amount < zone.min_travel_px:
                    continue
                ref = reference("sidewalk", cls)
                if ref is None:
                    continue
                ep.emitted = True
                details = {
                    "zone_id": zone.id,
                    "moving_for_s": r2(ep.duration),
                    "travel_px": r2(ep.amount),
                }
                out.append(make_event(self.scene, "sidewalk", ref, batch, i, ep.since, details))
        return out
