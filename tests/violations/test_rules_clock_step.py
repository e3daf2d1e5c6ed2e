"""The clock steps while vehicles are in view (NTP or an installer sets it; `streams.clock` follows
such a step at once): what the rules measured before cannot be continued across the step, so they
restart, measure afresh, and report nobody twice.

The tracks here continue across the step under the same tracker id, as they do for a caller that
keeps its tracker (the edge pipeline restarts its tracker too, see tests/cli/test_pipeline_clock_step).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable

import pytest

from detector.tracking import TrackHistory
from tests.violations import COCO, Drive, SignalFn, make_scene, moving, phases
from violations.rules import RuleEngine
from violations.types import ViolationEvent

ONE_WAY = [{"id": "ow1", "polygon": [[100, 150], [540, 150], [540, 470], [100, 470]], "direction": "up"}]
CAR_LANE = [
    {
        "id": "cars",
        "polygon": [[100, 100], [300, 100], [300, 470], [100, 470]],
        "direction": "up",
        "classes": ["car"],
    }
]
NO_PARKING = [
    {
        "id": "np1",
        "kind": "no_parking",
        "polygon": [[100, 150], [540, 150], [540, 470], [100, 470]],
        "max_dwell_s": 3,
        "max_queue_s": 0,
    }
]


def engine_for(rule: str) -> RuleEngine:
    scenes = {
        "wrong_way": make_scene(wrong_way_zones=ONE_WAY),
        "wrong_lane": make_scene(lanes=CAR_LANE),
        "illegal_stop": make_scene(stop_zones=NO_PARKING),
    }
    return RuleEngine(scenes[rule], rules=[rule])  # type: ignore[list-item]


#: A motorbike riding down a one-way-up zone, a motorbike riding up a cars-only lane, a car parked
#: in a no-parking zone, each until t1.
RIDES: dict[str, Callable[[float], Drive]] = {
    "wrong_way": lambda t1: moving(1, (300, 160), (0, 40), 0.0, t1),
    "wrong_lane": lambda t1: moving(1, (200, 460), (0, -45), 0.0, t1),
    "illegal_stop": lambda t1: Drive(1, [(0.0, 300.0, 300.0), (t1, 300.0, 300.0)], "car", size=(80.0, 60.0)),
}


def run_stepped(
    engine: RuleEngine,
    drives: Iterable[Drive],
    offset: Callable[[float], float],
    until: float,
    *,
    signals: SignalFn | None = None,
    on_step: Callable[[RuleEngine], list[ViolationEvent]] | None = None,
    fps: float = 10.0,
    lost_s: float = 2.0,
) -> list[ViolationEvent]:
    """Like `tests.violations.run`, but frame k is stamped ``k / fps + offset(k / fps)`` (the clock
    that stepped); `on_step` runs once, before the first update after the offset changes, and its
    events count."""
    drives = list(drives)
    histories: dict[int, TrackHistory] = {}
    events: list[ViolationEvent] = []
    before = offset(0.0)
    for k in range(math.floor(until * fps) + 1):
        t = k / fps
        ts = t + offset(t)
        if offset(t) != before and on_step is not None:
            events.extend(on_step(engine))
        before = offset(t)
        for d in drives:
            p = d.at(t)
            if p is None:
                continue
            h = histories.setdefault(d.tid, TrackHistory(d.tid))
            h.frame_index.append(k)
            h.ts.append(ts)
            h.xyxy.append(d.box(*p))
            h.confidence.append(0.9)
            h.detected.append(True)
            h.class_votes[COCO[d.cls]] += 1
        live = [
            h
            for d, h in ((d, histories.get(d.tid)) for d in drives)
            if h and t - d.waypoints[-1][0] <= lost_s
        ]
        events.extend(engine.update(live, signals(ts) if signals else {}, ts))
    return events


@pytest.mark.parametrize("step_s", [-5.0, -60.0])
@pytest.mark.parametrize("rule", ["wrong_way", "wrong_lane"])
def test_a_ride_under_way_when_the_clock_steps_back_is_measured_afresh(
    rule: str, step_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A 6 s ride against the rule; the clock steps back 1.5 s into it. The engine used to skip the
    track until its times passed the last one read before the step (5 s or 60 s: the rest of the
    ride), so the violation was missed, and after -60 s it kept the vehicle long after its track ended.
    Now the 4.5 s after the step are a fresh measurement."""
    engine = engine_for(rule)
    with caplog.at_level(logging.WARNING, logger="violations.rules.engine"):
        events = run_stepped(engine, [RIDES[rule](6.0)], lambda t: step_s if t >= 1.5 else 0.0, 9.0)
    assert [e.rule for e in events] == [rule]
    (ev,) = events
    assert 1.5 + step_s < ev.ts <= 6.0 + step_s  # established after the step, on the new clock
    measured = ev.details["against_for_s" if rule == "wrong_way" else "in_lane_for_s"]
    assert measured <= ev.ts - (1.5 + step_s) + 0.05  # nothing from before the step counted
    assert engine.vehicle_count == 0
    assert [r.levelname for r in caplog.records] == ["WARNING"]  # one line names the step
    assert "time went back 4.900 s" in caplog.text or "time went back 59.900 s" in caplog.text


@pytest.mark.parametrize("step_s", [-5.0, -60.0, 60.0])
@pytest.mark.parametrize("rule", ["wrong_way", "wrong_lane", "illegal_stop"])
def test_a_vehicle_reported_before_the_step_is_not_reported_again(rule: str, step_s: float) -> None:
    """Reported 2-3 s into its ride, the vehicle goes on for seconds after the step. A restart forgets
    what the rules measured, so without remembering who was reported it would be fined a second time
    (wrong way, wrong lane: 2 events; the parked car too after a step forward). A step forward looks
    like a gap in the frames to the engine: its caller restarts it (the edge pipeline does)."""
    engine = engine_for(rule)
    step_at = 5.0 if rule == "illegal_stop" else 4.0
    ride_s = 10.0 if rule == "illegal_stop" else 7.0
    events = run_stepped(
        engine,
        [RIDES[rule](ride_s)],
        lambda t: step_s if t >= step_at else 0.0,
        ride_s + 3.0,
        on_step=RuleEngine.restart if step_s > 0 else None,
    )
    assert [e.rule for e in events] == [rule]
    assert events[0].ts < step_at  # the one before the step
    assert engine.vehicle_count == 0


def test_a_red_light_event_held_at_the_step_is_decided_once_on_what_was_seen_before() -> None:
    """A red-light event waits a moment for the light reader (SignalLineRule.release) when the clock
    steps back: it is decided on the readings from before the step, once, and the vehicle, past the
    line after the step, is not taken for a new crossing."""
    through = Drive(1, [(0.0, 320.0, 420.0), (4.5, 320.0, 150.0)], "car", size=(80.0, 60.0))
    engine = RuleEngine(make_scene())
    red = phases((-100.0, "red"))
    events = run_stepped(engine, [through], lambda t: -5.0 if t >= 3.5 else 0.0, 8.0, signals=red)
    assert [e.rule for e in events] == ["red_light"]
    assert events[0].ts == pytest.approx(3.0)
    assert engine.held == 0


def test_a_frame_dated_back_a_moment_is_not_a_clock_step(caplog: pytest.LogCaptureFixture) -> None:
    """A file's container times may wobble: a frame 0.25 s early (under TIME_BACK_S) is skipped, not a
    restart; the ride is one measurement, reported as without the wobble."""
    plain = run_stepped(engine_for("wrong_way"), [RIDES["wrong_way"](6.0)], lambda t: 0.0, 9.0)
    with caplog.at_level(logging.WARNING, logger="violations.rules.engine"):
        wobbly = run_stepped(
            engine_for("wrong_way"),
            [RIDES["wrong_way"](6.0)],
            lambda t: -0.25 if abs(t - 1.0) < 1e-9 else 0.0,
            9.0,
        )
    assert caplog.records == []
    assert [(e.rule, e.ts, e.details["against_for_s"]) for e in wobbly] == [
        (e.rule, e.ts, e.details["against_for_s"]) for e in plain
    ]
