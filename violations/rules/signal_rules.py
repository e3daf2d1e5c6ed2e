"""Red-light running and stop-line encroachment: crossing a stop line while its light is red.

Both rules watch the same thing, the vehicle's bottom-centre crossing a governed stop line in the
approach direction, and split on what happens next:

- red light (vượt đèn đỏ): it crossed while the light was red (judged when its front crossed, see
  below), at least ``amber_grace_s`` after red began, and went on at least ``red_light_min_travel_px``
  past the line (through the junction) while the light was still not green (one that waited on the
  line and drove off on green did not run it). Crossing on amber or green, or in the first moments of
  red, is not a violation.
- stop line (dừng quá vạch): it crossed on red (same grace) and then stopped with its bottom-centre
  at least ``min_travel_past_line_px`` but less than the red-light travel past the line, and stayed
  stopped there for ``stop_line_confirm_s`` while the light stayed red.

Neither is established on an observation whose bottom edge is hidden by a vehicle in front (in a
queue, a partly hidden bike's box ends where the bike in front begins, above its wheels), nor, for
the red light, on a box that grew instead of moving (`Batch.rigid`).

Movements (``stop_lines[].exits``): where a turn out of a shared lane has a light of its own (a green
right-turn arrow) or a sign permitting it, crossing on red is allowed for the vehicles making that turn.
A vehicle's movement is the first exit its bottom-centre enters after it crossed. When a movement was
permitted at the moment its front crossed (`SignalLineRule._permitted`: free, its light green then or
until ``amber_grace_s`` before; an arrow head drawn with only its green lamp is not permitted when dark),
its red-light and stop-line events wait for its movement: none if it enters a permitted exit; made if it
enters another one (the red-light event at that moment, so the evidence shows the movement; then held
for the light reader as usual); none if its movement is not seen: its track ends, the video ends, or it
enters no exit within ``movement_window_s`` of the crossing or of its last stop past the line (a wrong
fine for a permitted turn is worse than a missed one). When no movement was permitted, nothing waits.
On such lines events give ``details["movement"]`` (the exit entered; None when not seen yet) and
``details["permitted_movements"]``.

The crossing log (`CrossingRecord`, every vehicle that drove over a governed line and on, whatever the
light: `phatnguoi run`'s crossings.jsonl and the edge's flow counts) gives, on lines with exits, the
movement too (turn counts). A vehicle is logged once it is ``red_light_min_travel_px`` past the line
(it drove on); on a line with exits its record then waits for its movement, at most
``movement_window_s`` (not restarted by a stop: flow counts close an interval ``grace_s`` after its
end), and says None when it is not seen by then, its track ends first, or the video ends (`release`
with ``final``, `forget`). Every record is written once, when it is decided.

A vehicle already past the line when red began (it entered on green) is neither. The crossing time
is interpolated between the two observations that straddle the line. If a vehicle that was reported for
the stop line later drives on through the red, the red-light event says so in ``details["supersedes"]``.

The light is judged when the vehicle's FRONT crossed the line (it entered then), not its
bottom-centre: for a vehicle driving away from the camera (up the image) the bottom-centre is its
rear, which crosses a vehicle length later (1.5 s for a 12 m bus at 8 m/s), perhaps after the light
turned red though it entered on amber. The front is estimated in the driver's favour (no later than
it can have been): it is taken to cross when the point `lead` pixels ahead of the bottom-centre did
(see `SignalLineRule.leads`), interpolated between observations, or, for a vehicle first seen with
that point already past the line, extrapolated back with its speed (at most
``FRONT_EXTRAPOLATION_S``). `lead` is the box's extent ahead of its bottom-centre along the travel
direction (driving away: its box height, which is length plus height, an over-estimate) or, with a
ground calibration (``scene.speed``), the class's longest length on the road if that is shorter. A
two-wheeler's box is mostly its rider, so without a ground calibration it gets only the box's
sideways extent (none when it drives straight up the image): its own length (about 2 m: 0.35 s at
20 km/h, more for a slow rider) is left to the amber grace. A vehicle driving toward the camera has
its front at the box bottom: lead 0, judged as before. Events give the estimate in
``details["front_crossed_at_ts"]`` and ``details["front_lead_px"]``; ``red_for_s`` counts from it.
The stop-line rule uses the same time.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from violations import geometry
from violations.geometry import StopLineFrame
from violations.legal import reference
from violations.rules.base import F64, Batch, SignalBook, make_event, r2
from violations.scene import TWO_WHEELERS, Exit, Scene, StopLine
from violations.types import RuleId, ViolationEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CrossingRecord:
    """One vehicle crossing a governed stop line, whatever the light (for flow counts and audits)."""

    vehicle_key: int
    tracker_id: int
    line_id: str
    ts: float  # interpolated time the bottom-centre crossed the line
    frame_index: int  # the first frame observed past the line
    x: float
    vehicle_class: str
    signal: str  # red | amber | green | unknown when the front crossed
    on_red: bool  # red, confident, after the amber grace, when the front crossed
    front_ts: float | None = None  # estimated time the front crossed (see the module docstring)
    # Lines with exits: the exit entered after the crossing, None when not seen within movement_window_s
    # (or before the track or the video ended); always None on a line without exits.
    movement: str | None = None


@dataclass(slots=True)
class _Crossing:
    ts: float  # the bottom-centre crossed
    front_ts: float  # the front crossed (estimated): the light is judged then
    lead_px: float  # the front's distance ahead of the bottom-centre at the crossing
    frame: int
    on_red: bool  # red, confident, after the amber grace, when the front crossed
    red_for_s: float | None
    confidence: float
    stopped_since: float | None = None
    red_emitted: bool = False
    stop_event_id: str | None = None
    logged: bool = False  # written to the crossing log
    confirmed: bool = False  # on red, read again `signal_settle_s` after the crossing
    # Lines with exits: the first exit entered after the crossing, and the last time the vehicle was seen
    # stopped past the line (the movement window starts again from there).
    movement: str | None = None
    still_ts: float = -math.inf
    excused: bool = False  # its movement was permitted (logged once)


#: A crossing counts only when the step over the line is what the vehicle's (smoothed) motion predicts,
#: within this many pixels (or this share of its box height, whichever is more, plus half the distance
#: its speed covers in the step): a larger step is an id that moved to another vehicle.
CROSSING_STEP_PX = 12.0
CROSSING_STEP_RATIO = 0.3
#: Weight of the newest step in the smoothed speed the crossing step is predicted with.
SPEED_SMOOTHING = 0.3
#: A front first seen already past the line crossed it at most this long before (extrapolated).
FRONT_EXTRAPOLATION_S = 3.0
#: Longest vehicle of each class on Vietnamese roads (metres; rigid bus 12.2 m, tractor with
#: semi-trailer 20 m), the most its front can be ahead of its rear, with a ground calibration.
FRONT_LENGTH_M: dict[str, float] = {"motorcycle": 2.3, "bicycle": 2.0, "car": 6.0, "bus": 13.0, "truck": 20.0}


@dataclass(frozen=True, slots=True)
class _Held:
    """A red-light event waiting for the light reader to settle."""

    line: StopLine
    key: int
    went_on_ts: float  # when it was first `red_light_min_travel_px` past the line
    event: ViolationEvent


@dataclass(slots=True)
class _Due:
    """Events of a vehicle that crossed on red while a movement out of its line was permitted, waiting
    for the vehicle to show its movement (see `SignalLineRule.process`)."""

    line: StopLine
    key: int
    tracker_id: int  # when it crossed (for log lines)
    crossing: _Crossing
    red_went_on: float | None = None  # the red-light case: when it went on (the event is made on decision)
    stop: ViolationEvent | None = None  # the stop-line event, made when the vehicle stopped


@dataclass(slots=True)
class _LineState:
    side: int  # -1 behind the line, +1 past it, 0 on it (not yet known)
    last_across: float
    last_ts: float
    lane_ok: bool
    crossing: _Crossing | None = None
    speed: float = 0.0  # px/s across the line between the last two clean observations
    smooth_speed: float = 0.0  # the same, smoothed (box noise counts once, not in every step)
    after_jump: bool = False  # a jump was seen since the last clean observation
    # The front (the point `lead` ahead of the bottom-centre): its last clean observation behind or on
    # the line and the first one past it since, as (ts, across + lead).
    front_behind: tuple[float, float] | None = None
    front_past: tuple[float, float] | None = None
    # The bottom-centre's and the top-centre's distance past the line at the last clean observation
    # behind it: whether the body advanced over the line, or only its box's bottom edge moved.
    behind: tuple[float, float] | None = None

    def see_front(self, t: float, front: float) -> None:
        """A clean observation of the front at `t`, `front` pixels past the line."""
        if front <= 0:
            self.front_behind, self.front_past = (t, front), None
        elif self.front_past is None:
            self.front_past = (t, front)


class SignalLineRule:
    """Red-light and stop-line rules over every stop line governed by a light."""

    def __init__(self, scene: Scene, frames: dict[str, StopLineFrame], emit: set[RuleId]) -> None:
        """Args:
        scene: the scene (lines, tolerances).
        frames: `StopLineFrame` per stop line id (the engine computes them once).
        emit: which of "red_light" / "stop_line" to report.
        """
        self.scene = scene
        self.tol = scene.tolerances
        self.lines: tuple[StopLine, ...] = scene.signal_lines()
        self.frames = frames
        self.emit = emit
        self.rule_ids: tuple[RuleId, ...] = tuple(r for r in ("red_light", "stop_line") if r in emit)
        self._state: dict[tuple[int, str], _LineState] = {}
        # every crossing since the engine last drained them (`RuleEngine.pop_crossings`)
        self.crossings: list[CrossingRecord] = []
        # Rows further than this from a line cannot change its state for anyone.
        self._band = self.tol.red_light_min_travel_px + 100.0
        self._held: list[_Held] = []
        # Lines with exits: the exits' polygons, the vehicles waiting to show their movement, and which
        # lights can show amber (a head drawn with only a green arrow lamp cannot: dark is its red).
        self._exits: dict[str, list[tuple[Exit, F64]]] = {
            line.id: [(ex, np.asarray(ex.polygon, np.float64)) for ex in line.exits]
            for line in self.lines
            if line.exits
        }
        self._due: dict[tuple[int, str], _Due] = {}
        # Lines with exits: crossing records waiting for the vehicle's movement (see `_log_movements`),
        # with the crossing and the time the vehicle went on past the line (the wait starts then).
        self._unlogged: list[tuple[CrossingRecord, _Crossing, float]] = []
        self._shows_amber = {
            light.id: light.lamps is None or light.lamps.amber is not None for light in scene.lights
        }
        speed = scene.speed
        # image → ground homography, its inverse and where it holds
        self._ground: tuple[F64, F64, F64] | None = None
        if speed is not None:
            h = speed.homography
            self._ground = (h, np.asarray(np.linalg.inv(h), np.float64), speed.measurement_zone())

    @property
    def held(self) -> int:
        """Red-light events waiting for the light reader to settle, and vehicles whose events wait for
        their movement."""
        return len(self._held) + len(self._due)

    def release(self, signals: SignalBook, now_ts: float, *, final: bool = False) -> list[ViolationEvent]:
        """The red-light events held `signal_settle_s` since the vehicle went on, now that the light
        reader has had time to confirm a change and date it back. A vehicle that went on only once the
        light was green (as dated now, at any confidence: a doubt goes to the driver) is no red-light
        runner: it waited on or just past the line (a stop-line case at most). The green is confirmed
        ~0.3 s late and its confidence climbs for a second, so deciding when the vehicle went on read
        a rider who left on green as leaving on red. `final` (the video ended): decide every held event
        on the readings there are. Vehicles waiting to show their movement (lines with exits) whose
        movement window passed, or all of them when `final`, are dropped: not fined. The crossing
        records waiting for a movement are decided likewise (`_log_movements`)."""
        out: list[ViolationEvent] = []
        keep: list[_Held] = []
        for held in self._held:
            line_id, key = held.line.id, held.key
            if now_ts < held.went_on_ts:
                # Time went back (the clock was set, a new stream): no later reading will come to
                # clear it; it was on red when it went on, as read then.
                logger.info("line %s: time went back: red-light event of track %d decided now", line_id, key)
                out.append(held.event)
                continue
            if now_ts - held.went_on_ts < self.tol.signal_settle_s and not final:
                keep.append(held)
                continue
            now = signals.at(held.line.light, now_ts)
            if now is not None and now.state == "green" and now.since_ts <= held.went_on_ts:
                logger.info("line %s: track %d went on after green: not a red-light run", line_id, key)
                continue
            out.append(held.event)
        self._held = keep
        window = self.tol.movement_window_s
        for k, due in list(self._due.items()):
            c = due.crossing
            if final or now_ts < c.ts or now_ts - max(c.ts, c.still_ts) > window:
                del self._due[k]
                logger.info(
                    "line %s: track %d crossed on red while a turn was permitted, but its movement was not "
                    "seen (%s): not fined",
                    due.line.id,
                    due.tracker_id,
                    "decided now: the stream ended or its clock stepped"
                    if final
                    else f"in no exit within {window:g} s",
                )
        self._log_movements(now_ts, final=final)
        return out

    def _log_movements(
        self, now_ts: float | None, *, final: bool = False, gone: set[int] | frozenset[int] = frozenset()
    ) -> None:
        """Write the crossing records waiting for their vehicle's movement once it is known: the exit
        entered, or None when by `now_ts` `movement_window_s` passed since the vehicle went on past the
        line (`now_ts` None: not judged by time), the vehicle left (`gone`), the stream ended (`final`)
        or time went back."""
        if not self._unlogged:
            return
        window = self.tol.movement_window_s
        keep: list[tuple[CrossingRecord, _Crossing, float]] = []
        for rec, c, went_on in self._unlogged:
            late = now_ts is not None and (now_ts < went_on or now_ts - went_on > window)
            if c.movement is not None or final or late or rec.vehicle_key in gone:
                self.crossings.append(dataclasses.replace(rec, movement=c.movement))
            else:
                keep.append((rec, c, went_on))
        self._unlogged = keep

    def forget(self, keys: set[int]) -> None:
        """Drop the state of vehicles that left. One that crossed on red while a turn was permitted and
        left before its movement was seen is not fined: it may have turned."""
        for k in [k for k in self._state if k[0] in keys]:
            del self._state[k]
        self._log_movements(None, gone=keys)
        for k in [k for k in self._due if k[0] in keys]:
            due = self._due.pop(k)
            logger.info(
                "line %s: track %d crossed on red while a turn was permitted; its track ended before its "
                "movement was seen: not fined",
                due.line.id,
                due.tracker_id,
            )

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        out: list[ViolationEvent] = []
        for line in self.lines:
            across, along = batch.lines[line.id]
            lead = self.leads(line, batch, across)
            length = self.frames[line.id].length
            margin = self.tol.line_end_margin_px
            near = (across + lead > -self._band) & (across < self._band)
            near &= (along > -margin - self._band) & (along < length + margin + self._band)
            for i in map(int, near.nonzero()[0]):
                ev = self._row(
                    line, batch, i, float(across[i]), float(along[i]), float(lead[i]), length, signals
                )
                if ev is not None:
                    out.append(ev)
            if line.id in self._exits:
                out.extend(self._movements(line, batch, across, signals))
        return out

    def _movements(
        self, line: StopLine, batch: Batch, across: F64, signals: SignalBook
    ) -> list[ViolationEvent]:
        """Watch the vehicles that crossed `line` (one with exits) for the first exit they enter, and
        decide the events that wait for it."""
        out: list[ViolationEvent] = []
        exits = self._exits[line.id]
        for i, key in enumerate(batch.keys):
            st = self._state.get((key, line.id))
            c = st.crossing if st is not None else None
            if st is None or c is None or st.side != 1 or c.movement is not None or batch.jump[i]:
                continue
            if batch.stationary[i]:
                c.still_ts = float(batch.ts[i])
            point = batch.points[i : i + 1]
            entered = next((ex.id for ex, poly in exits if geometry.points_in_polygon(point, poly)[0]), None)
            if entered is None:
                continue
            c.movement = entered
            due = self._due.get((key, line.id))
            if due is not None and due.crossing is c:
                del self._due[(key, line.id)]
                out.extend(self._decide(due, batch, i, float(across[i]), signals))
        return out

    def _decide(self, due: _Due, batch: Batch, i: int, a: float, signals: SignalBook) -> list[ViolationEvent]:
        """The events of a vehicle whose movement was just seen (at row `i`, `a` pixels past the line):
        none when that movement was permitted; the stop-line event now, the red-light event held for the
        light reader to settle (`release`), made at this row (the evidence shows the movement)."""
        line, c = due.line, due.crossing
        permitted = self._permitted(line, c, signals)
        if self._excused(line, c, permitted, batch.tracker_ids[i]):
            return []
        out: list[ViolationEvent] = []
        if due.stop is not None:
            details = {**due.stop.details, "movement": c.movement, "permitted_movements": permitted}
            out.append(dataclasses.replace(due.stop, details=details))
        if due.red_went_on is not None:
            ev = self._event("red_light", line, batch, i, c, a, permitted)
            if ev is not None:
                self._held.append(_Held(line, due.key, due.red_went_on, ev))
        return out

    @staticmethod
    def _excused(line: StopLine, c: _Crossing, permitted: list[str], tracker_id: int) -> bool:
        """Whether the vehicle's movement (seen) was one permitted when it crossed."""
        if c.movement is None or c.movement not in permitted:
            return False
        if c.excused:
            return True
        c.excused = True
        logger.info(
            "line %s: track %d crossed on red and went %s, which was permitted then: not fined",
            line.id,
            tracker_id,
            c.movement,
        )
        return True

    def _wait_for_movement(
        self, line: StopLine, key: int, c: _Crossing, permitted: list[str], tracker_id: int
    ) -> _Due | None:
        """Where a red-light or stop-line event of a vehicle that crossed on red waits for its movement:
        None when it need not wait (no movement was permitted, or the movement is already seen)."""
        if not permitted or c.movement is not None:
            return None
        due = self._due.get((key, line.id))
        if due is None or due.crossing is not c:
            due = self._due[(key, line.id)] = _Due(line, key, tracker_id, c)
            logger.info(
                "line %s: track %d crossed on red while %s was permitted: waiting for its movement",
                line.id,
                tracker_id,
                ", ".join(permitted),
            )
        return due

    def _permitted(self, line: StopLine, c: _Crossing, signals: SignalBook) -> list[str]:
        """Ids of `line`'s exits whose movement was permitted when the vehicle's front crossed: free, or
        its light green then (or until `amber_grace_s` before), or amber on a head that shows amber. A
        head drawn with only a green lamp (an arrow) reads amber when its lamp went dark after green: that
        is its red, not an amber."""
        out = []
        for ex in line.exits:
            if ex.free:
                out.append(ex.id)
            elif ex.light is not None:
                now = signals.at(ex.light, c.front_ts)
                before = signals.at(ex.light, c.front_ts - self.tol.amber_grace_s)
                if (
                    (now is not None and now.state == "green")
                    or (now is not None and now.state == "amber" and self._shows_amber.get(ex.light, True))
                    or (before is not None and before.state == "green")
                ):
                    out.append(ex.id)
        return out

    def leads(self, line: StopLine, batch: Batch, across: F64) -> F64:
        """(M,) how far (pixels, along the line's travel direction) each row's vehicle's front can be
        ahead of its bottom-centre: at most this, so it crossed no earlier than that point did.

        The box's extent ahead of its bottom-centre: half its width times the sideways part of the
        travel, plus its height when the travel goes up the image (away from the camera: the box bottom
        is the rear, its top the roof or the rider's head, further up than the front can be). A
        two-wheeler gets only the sideways part (its box height is mostly its rider). Where the scene's
        ground calibration covers the bottom-centre, the class's longest length (`FRONT_LENGTH_M`)
        mapped into the image, if shorter (for two-wheelers too).
        """
        tx, ty = (float(v) for v in self.frames[line.id].travel)
        b = batch.xyxy
        side = 0.5 * (b[:, 2] - b[:, 0]) * abs(tx)
        box = side + (b[:, 3] - b[:, 1]) * max(0.0, -ty)
        two = np.fromiter((c in TWO_WHEELERS for c in batch.classes), bool, len(batch))
        lead = np.where(two, side, box)
        if self._ground is None:
            return lead
        h, h_inv, zone = self._ground
        metres = np.fromiter((FRONT_LENGTH_M.get(c, math.nan) for c in batch.classes), float, len(batch))
        rows = np.isfinite(metres) & (across + box > -self._band) & (across < self._band)
        idx = rows.nonzero()[0]
        if len(idx):
            idx = idx[geometry.points_in_polygon(batch.points[idx], zone)]
        if len(idx) == 0:
            return lead
        p = batch.points[idx]
        travel = np.array([tx, ty])
        g = geometry.apply_homography(h, p)
        step = geometry.apply_homography(h, p + travel) - g  # one pixel along the travel, on the road
        norm = np.hypot(step[:, 0], step[:, 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            front = geometry.apply_homography(h_inv, g + metres[idx, None] * step / norm[:, None])
        mapped = (front - p) @ travel
        ok = np.isfinite(mapped) & (mapped >= 0)
        lead[idx[ok]] = np.minimum(box[idx[ok]], mapped[ok])
        return lead

    def _lane_ok(self, line: StopLine, batch: Batch, i: int) -> bool:
        if not line.lanes:
            return True
        return any(batch.inside[f"lanes:{lane}"][i] for lane in line.lanes)

    def _row(
        self,
        line: StopLine,
        batch: Batch,
        i: int,
        a: float,
        along: float,
        lead: float,
        length: float,
        signals: SignalBook,
    ) -> ViolationEvent | None:
        tol = self.tol
        key = batch.keys[i]
        t = float(batch.ts[i])
        h = tol.crossing_hysteresis_px
        st = self._state.get((key, line.id))
        if st is None:
            side = -1 if a <= -h else (1 if a >= 0 else 0)
            st = self._state[(key, line.id)] = _LineState(side, a, t, self._lane_ok(line, batch, i))
            st.see_front(t, a + lead)
            return None
        if batch.jump[i]:
            # The tracker swapped vehicles or the box flickered: this position is no evidence either
            # way. The state waits for the next clean observation (a crossing is then interpolated
            # between the last clean position behind the line and the first clean one past it).
            st.after_jump = True
            return None
        if st.after_jump:
            st.after_jump = False
            expected = st.last_across + st.speed * (t - st.last_ts)
            if abs(a - expected) > tol.jump_px:
                # Not where the vehicle was heading: the id now follows another vehicle (a swap, not
                # a flicker). Nothing carries over: a vehicle already past the line when it took the
                # id (it entered on green) must not inherit a crossing from the one behind it.
                st.side = -1 if a <= -h else (1 if a >= 0 else 0)
                st.crossing, st.speed = None, 0.0
                st.last_across, st.last_ts = a, t
                st.front_behind = st.front_past = st.behind = None
                st.see_front(t, a + lead)
                return None
        st.see_front(t, a + lead)
        if a < 0:
            st.behind = (a, self._top_across(line, batch, i))
        if a <= -h:
            # Behind the line (again): a vehicle backing up behind it starts over.
            st.side, st.crossing = -1, None
            st.lane_ok = self._lane_ok(line, batch, i)
        elif a >= 0 and st.side == -1:
            in_span = -tol.line_end_margin_px <= along <= length + tol.line_end_margin_px
            dt = t - st.last_ts
            box_h = float(batch.xyxy[i, 3] - batch.xyxy[i, 1])
            expected = st.last_across + st.smooth_speed * dt
            if (
                abs(a - expected)
                > max(CROSSING_STEP_PX, CROSSING_STEP_RATIO * box_h) + 0.5 * abs(st.smooth_speed) * dt
            ):
                # Over the line in a step its motion does not explain: the id now follows another
                # vehicle (a swap under the jump threshold, or a stitch onto one that was already past
                # the line, e.g. one that entered on green). Nothing carries over.
                st.side = 1 if a >= 0 else 0
                st.crossing, st.speed, st.smooth_speed = None, 0.0, 0.0
                st.last_across, st.last_ts = a, t
                st.front_behind = st.front_past = st.behind = None
                st.see_front(t, a + lead)
                return None
            if in_span and st.lane_ok and st.last_across < 0 and dt <= tol.max_gap_s:
                frac = -st.last_across / (a - st.last_across)
                tc = st.last_ts + frac * (t - st.last_ts)
                front_ts = self._front_ts(st, tc)
                st.crossing = self._crossing(line, tc, front_ts, lead, batch.frames[i], signals)
            st.side = 1
        if t > st.last_ts:
            st.speed = (a - st.last_across) / (t - st.last_ts)
            st.smooth_speed += SPEED_SMOOTHING * (st.speed - st.smooth_speed)
        st.last_across, st.last_ts = a, t
        c = st.crossing
        if c is not None and st.side == 1 and not c.logged and a >= tol.red_light_min_travel_px:
            # The crossing log holds vehicles that drove over the line and on, whatever the light
            # (a queued vehicle jittering on the line never gets this far past it).
            c.logged = True
            reading = signals.at(line.light, c.front_ts)
            record = CrossingRecord(
                vehicle_key=key,
                tracker_id=batch.tracker_ids[i],
                line_id=line.id,
                ts=c.ts,
                frame_index=c.frame,
                x=float(batch.points[i][0]),
                vehicle_class=batch.classes[i],
                signal=reading.state if reading is not None else "unknown",
                on_red=c.on_red,
                front_ts=c.front_ts,
                movement=c.movement,
            )
            if line.exits and c.movement is None:
                self._unlogged.append((record, c, t))  # written once its movement is known (`release`)
            else:
                self.crossings.append(record)
        if c is None or st.side != 1 or not c.on_red:
            return None
        if t - c.ts < tol.signal_settle_s:
            return None  # the light's state at the crossing may still be re-dated (see signal_settle_s)
        if not c.confirmed:
            # Read the light at the crossing time again, now that the reader has had time to confirm
            # a change and date it back: a green that began just before the crossing clears it.
            again = self._crossing(line, c.ts, c.front_ts, c.lead_px, c.frame, signals)
            if not again.on_red:
                logger.info(
                    "line %s: the light reader re-dated red at %.2f s: not on red", line.id, c.front_ts
                )
                c.on_red = False
                return None
            c.confirmed = True
        if a >= tol.red_light_min_travel_px and not c.red_emitted:
            # Establish only on a clean observation: the whole box moved (not a box growing as an
            # occluder leaves) and nothing in front hides the wheels.
            if not batch.rigid[i] or batch.occluded(i):
                return None
            c.red_emitted = True
            if "red_light" not in self.emit:
                return None
            permitted = self._permitted(line, c, signals) if line.exits else []
            due = self._wait_for_movement(line, key, c, permitted, batch.tracker_ids[i])
            if due is not None:
                due.red_went_on = t  # decided when the vehicle enters an exit (`_movements`)
                return None
            if self._excused(line, c, permitted, batch.tracker_ids[i]):
                return None
            ev = self._event("red_light", line, batch, i, c, a, permitted)
            if ev is not None:
                # Held for `signal_settle_s` (see `release`), also if the vehicle leaves view meanwhile:
                # whether the light was green when it went on is known only once the reader has
                # confirmed a change and dated it back.
                self._held.append(_Held(line, key, t, ev))
            return None
        if "stop_line" not in self.emit or c.red_emitted or c.stop_event_id is not None:
            return None
        now = signals.at(line.light, t)
        still_red = now is not None and now.state == "red" and now.confidence >= tol.min_signal_confidence
        if (
            batch.stationary[i]
            and tol.min_travel_past_line_px <= a < tol.red_light_min_travel_px
            and still_red
        ):
            if c.stopped_since is None:
                c.stopped_since = t
            if (
                t - c.stopped_since >= tol.stop_line_confirm_s
                and not batch.occluded(i)
                and self._advanced(st, line, batch, i, a)
            ):
                permitted = self._permitted(line, c, signals) if line.exits else []
                if self._excused(line, c, permitted, batch.tracker_ids[i]):
                    return None
                ev = self._event("stop_line", line, batch, i, c, a, permitted)
                if ev is not None:
                    c.stop_event_id = ev.event_id
                    due = self._wait_for_movement(line, key, c, permitted, batch.tracker_ids[i])
                    if due is not None:
                        due.stop = ev  # waiting on the line's edge may be a permitted turn: decided later
                        return None
                return ev
        else:
            c.stopped_since = None
        return None

    def _top_across(self, line: StopLine, batch: Batch, i: int) -> float:
        """How far past `line` row `i`'s box top-centre is (pixels, negative behind it)."""
        x1, y1, x2, _ = batch.xyxy[i]
        across, _ = self.frames[line.id].coords(np.array([[0.5 * (x1 + x2), y1]], np.float64))
        return float(across[0])

    def _advanced(self, st: _LineState, line: StopLine, batch: Batch, i: int, a: float) -> bool:
        """Whether a vehicle standing `a` pixels past `line` got there by moving: its box top advanced
        at least half as far as its bottom since it was last seen behind the line. In a queue, the
        rider behind hides the rear wheel of the one in front, and the detector's box then ends higher
        up: its bottom edge rises over the line while the vehicle stands still behind it."""
        if st.behind is None:
            return False  # never seen behind the line: nothing shows how it got past
        bottom, top = st.behind
        moved_bottom = a - bottom
        moved_top = self._top_across(line, batch, i) - top
        if moved_top >= 0.5 * moved_bottom:
            return True
        logger.debug(
            "line %s: track %d's box bottom moved %.0f px over the line but its top %.0f px: not a stop "
            "past the line (the box shrank)",
            line.id,
            batch.tracker_ids[i],
            moved_bottom,
            moved_top,
        )
        return False

    def _front_ts(self, st: _LineState, tc: float) -> float:
        """When the front crossed, the bottom-centre having crossed at `tc` (see `_LineState.see_front`)."""
        past = st.front_past
        if past is None:
            return tc
        behind = st.front_behind
        if behind is None:
            # First seen with its front already past the line: back along its speed, not too far.
            speed = st.smooth_speed
            back = past[1] / speed if speed > 0 else math.inf
            return min(past[0] - min(back, FRONT_EXTRAPOLATION_S), tc)
        (t0, f0), (t1, f1) = behind, past
        if t1 - t0 > self.tol.max_gap_s:
            return min(t0, tc)  # not seen in between: as early as it can have been
        return min(t0 + (t1 - t0) * -f0 / (f1 - f0), tc)

    def _crossing(
        self, line: StopLine, tc: float, front_ts: float, lead_px: float, frame: int, signals: SignalBook
    ) -> _Crossing:
        reading = signals.at(line.light, front_ts)
        tol = self.tol
        if reading is None or reading.confidence < tol.min_signal_confidence or reading.state != "red":
            return _Crossing(
                tc, front_ts, lead_px, frame, False, None, reading.confidence if reading else 0.0
            )
        red_for = front_ts - reading.since_ts
        on_red = red_for >= tol.amber_grace_s
        if not on_red:
            logger.debug("line %s: front crossed %.2f s into red: within the amber grace", line.id, red_for)
        return _Crossing(tc, front_ts, lead_px, frame, on_red, red_for, reading.confidence)

    def _event(
        self,
        rule: RuleId,
        line: StopLine,
        batch: Batch,
        i: int,
        c: _Crossing,
        a: float,
        permitted: list[str] | None = None,
    ) -> ViolationEvent | None:
        ref = reference(rule, batch.classes[i])
        if ref is None:
            return None
        details: dict[str, object] = {
            "line_id": line.id,
            "light_id": line.light,
            "signal": "red",
            "red_for_s": r2(c.red_for_s) if c.red_for_s is not None and math.isfinite(c.red_for_s) else None,
            "signal_confidence": r2(c.confidence),
            "crossed_at_ts": round(c.ts, 3),
            "crossed_frame_index": c.frame,
            "front_crossed_at_ts": round(c.front_ts, 3),
            "front_lead_px": r2(c.lead_px),
            "past_line_px": r2(a),
        }
        if rule == "red_light" and c.stop_event_id is not None:
            details["supersedes"] = c.stop_event_id
        if rule == "stop_line" and c.stopped_since is not None:
            details["stopped_for_s"] = r2(float(batch.ts[i]) - c.stopped_since)
        if line.exits:
            details["movement"] = c.movement  # None: not seen yet (no movement was permitted)
            details["permitted_movements"] = permitted or []
        return make_event(self.scene, rule, ref, batch, i, c.ts, details)
