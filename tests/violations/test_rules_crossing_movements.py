"""The crossing log on stop lines with exits: every vehicle that drove over the line is logged once, with
the movement it made (the exit it entered; None when it is not seen within ``movement_window_s`` of
going on past the line, before its track ends or before the video ends), and still counts in its flow
interval.

Synthetic tracks through the real `RuleEngine` (and the real `FlowCounter`), on the scene of
`test_rules_exits`: the line at y = 300 (traffic drives up), a right exit (x >= 560) under a green
arrow head and a straight exit (y < 230). Vehicles cross at t = 2.0 s and are 60 px past the line
(where the log has always written them, and where a line with exits starts waiting for the movement)
at 3.2-3.4 s.
"""

from __future__ import annotations

import math

import pytest

from detector.tracking import TrackHistory
from phatnguoi.flows import FlowConfig, FlowCounter
from tests.violations import COCO, Drive, SignalFn, make_scene
from tests.violations.test_rules_exits import (
    ARROW_DARK,
    ARROW_GREEN,
    LIGHTS,
    LOST_MID_TURN,
    RED,
    RIGHT_TURN,
    STOP_THEN_RIGHT,
    STRAIGHT,
    exit_scene,
    lights,
)
from violations.rules import RuleEngine
from violations.rules.signal_rules import CrossingRecord

FPS = 10.0
# Crosses at 2.0 s and stands 65 px past the line, in no exit, until it is lost at 12 s.
STANDS_IN_JUNCTION = [(0.0, 480.0, 420.0), (2.0, 480.0, 300.0), (3.2, 490.0, 235.0), (12.0, 490.0, 235.0)]


def feed(
    engine: RuleEngine,
    drives: list[Drive],
    signals: SignalFn,
    until: float,
    *,
    lost_s: float = 2.0,
    t_offset: float = 0.0,
    finish: bool = True,
) -> list[tuple[float, CrossingRecord]]:
    """Feed `drives` frame by frame (frame times shifted by `t_offset`) and drain the crossing log
    after every update, as the edge pipeline does; then, when `finish`, end the video. Returns (time
    drained, record) for every record."""
    histories: dict[int, TrackHistory] = {}
    out: list[tuple[float, CrossingRecord]] = []
    t = 0.0
    for k in range(math.floor(until * FPS) + 1):
        t = k / FPS
        for d in drives:
            p = d.at(t)
            if p is None:
                continue
            h = histories.setdefault(d.tid, TrackHistory(d.tid))
            h.frame_index.append(k)
            h.ts.append(t + t_offset)
            h.xyxy.append(d.box(*p))
            h.confidence.append(0.9)
            h.detected.append(True)
            h.class_votes[COCO[d.cls]] += 1
        live = [h for h in histories.values() if t + t_offset - h.last_ts <= lost_s]
        engine.update(live, signals(t), t + t_offset)
        out += [(t, rec) for rec in engine.pop_crossings()]
    if finish:
        engine.finish(t + t_offset)
        out += [(t, rec) for rec in engine.pop_crossings()]
    return out


CASES = [
    # (id, waypoints, the arrow, seconds fed, movement logged, when (frame time, s))
    # 60 px past the line at 3.3 s, logged when it enters the right exit (3.6 s).
    ("right_turn", RIGHT_TURN, ARROW_GREEN, 8.0, "right", 3.6),
    ("right_turn_arrow_dark", RIGHT_TURN, ARROW_DARK, 8.0, "right", 3.6),  # fined; logged alike
    # 60 px past the line at 3.0 s, into the straight exit at 3.2 s.
    ("straight", STRAIGHT, ARROW_GREEN, 8.0, "straight", 3.2),
    # Lost at 3.4 s between the line and the right exit: logged when its track is let go (the track
    # store's 2 s, the engine's stitch gap), before the movement window ends.
    ("lost_mid_turn", LOST_MID_TURN, ARROW_GREEN, 9.0, None, 5.4),
    # 60 px past the line at 3.2 s, then in no exit for 5 s (movement_window_s): logged then; standing
    # still does not restart the log's wait (flow intervals close `grace_s` after their end).
    ("stands_in_junction", STANDS_IN_JUNCTION, ARROW_GREEN, 14.0, None, 8.3),
    # Waits 15 px past the line until 7.5 s: the wait for its movement starts when it goes on (60 px
    # past at 8.8 s); into the right exit at 9.0 s.
    ("waits_past_line_then_turns_right", STOP_THEN_RIGHT, ARROW_GREEN, 14.0, "right", 9.0),
    # The video ends at 3.4 s, the vehicle 65 px past the line and in no exit yet: logged by `finish`.
    ("video_ends_mid_turn", RIGHT_TURN, ARROW_GREEN, 3.4, None, 3.4),
]


@pytest.mark.parametrize(
    ("waypoints", "arrow_fn", "until", "movement", "logged_at"),
    [pytest.param(w, a, u, m, b, id=name) for name, w, a, u, m, b in CASES],
)
def test_the_crossing_log_gives_the_movement_once(
    waypoints: list[tuple[float, float, float]],
    arrow_fn: SignalFn,
    until: float,
    movement: str | None,
    logged_at: float,
) -> None:
    engine = RuleEngine(exit_scene())
    ((t, rec),) = feed(engine, [Drive(7, waypoints)], lights(RED, arrow_fn), until)
    assert (rec.line_id, rec.tracker_id, rec.movement) == ("sl1", 7, movement)
    assert rec.ts == pytest.approx(2.0, abs=0.01) and rec.on_red
    assert t == pytest.approx(logged_at)


def test_a_line_without_exits_logs_at_once_without_a_movement() -> None:
    """As before the exits: written when the vehicle is 60 px past the line (3.3 s)."""
    engine = RuleEngine(make_scene(lights=LIGHTS))
    ((t, rec),) = feed(engine, [Drive(7, RIGHT_TURN)], lights(RED, ARROW_GREEN), 8.0)
    assert rec.movement is None and t == pytest.approx(3.3, abs=0.05)


def test_a_vehicle_queued_on_the_line_is_not_logged_at_the_end() -> None:
    """A rider whose wheel is on the line when the video ends did not drive over it: nothing to log."""
    engine = RuleEngine(exit_scene())
    queued = [(0.0, 480.0, 420.0), (2.0, 480.0, 303.0), (3.0, 480.0, 295.0)]
    assert feed(engine, [Drive(7, queued)], lights(RED, ARROW_GREEN), 3.0) == []


def test_several_vehicles_each_once_in_time_order_of_decision() -> None:
    """Three vehicles on the line with exits and the video ending: each logged once, the one standing
    in the junction by `finish`."""
    drives = [
        Drive(1, STRAIGHT),
        Drive(2, [(t + 1.0, x + 40, y) for t, x, y in RIGHT_TURN]),  # crosses at 3.0 s, in the exit at 4
        Drive(3, [(t + 3.0, x - 200, y) for t, x, y in STANDS_IN_JUNCTION]),  # crosses at 5.0 s
    ]
    engine = RuleEngine(exit_scene())
    logged = feed(engine, drives, lights(RED, ARROW_GREEN), 7.0)
    assert sorted((rec.tracker_id, rec.movement) for _, rec in logged) == [
        (1, "straight"),
        (2, "right"),
        (3, None),
    ]


def test_a_clock_step_back_logs_the_waiting_crossing_once() -> None:
    """The clock is set back while a crossing waits for its movement: the engine restarts, and the
    crossing is logged then (without a movement), once; nothing is logged twice after the step."""
    engine = RuleEngine(exit_scene())
    before = feed(engine, [Drive(7, RIGHT_TURN)], lights(RED, ARROW_GREEN), 3.4, t_offset=100.0, finish=False)
    assert before == []
    after = feed(engine, [Drive(8, RIGHT_TURN)], lights(RED, ARROW_GREEN), 8.0)
    assert [(rec.tracker_id, rec.movement) for _, rec in after] == [(7, None), (8, "right")]


def test_a_crossing_waiting_for_its_movement_counts_in_its_own_interval() -> None:
    """Flow counts by crossing: a crossing 0.5 s before an interval ends, logged when its movement is
    seen 1.5 s later (or with none at the end of its 5 s window), counts in that interval, once."""
    counter = FlowCounter("test-cam", config=FlowConfig(interval_s=60, source="crossings"))
    engine = RuleEngine(exit_scene())
    offset = 57.5  # crossings at 57.5 + 2.0 s: 0.5 s before the interval [0, 60) ends
    drives = [Drive(1, RIGHT_TURN), Drive(2, [(t, x - 200, y) for t, x, y in STANDS_IN_JUNCTION])]
    histories: dict[int, TrackHistory] = {}
    emitted = []
    for k in range(int(20 * FPS) + 1):
        t = k / FPS
        for d in drives:
            p = d.at(t)
            if p is None:
                continue
            h = histories.setdefault(d.tid, TrackHistory(d.tid))
            h.frame_index.append(k)
            h.ts.append(t + offset)
            h.xyxy.append(d.box(*p))
            h.confidence.append(0.9)
            h.detected.append(True)
            h.class_votes[COCO[d.cls]] += 1
        engine.update(list(histories.values()), lights(RED, ARROW_GREEN)(t), t + offset)
        counter.add_crossings(engine.pop_crossings())
        emitted += counter.close_intervals(t + offset)
    emitted += counter.flush()
    assert [(c.interval_start, c.lane, c.count) for c in emitted] == [(0.0, "line:sl1", 2)]
    assert counter.skipped["late"] == 0
