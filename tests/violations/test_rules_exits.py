"""Movements out of a stop line (``stop_lines[].exits``) on synthetic tracks: a turn its own light or a
sign permits is no red-light or stop-line violation; every other movement still is.

The stop line runs across the image at y = 300 (traffic drives up), under the main light L1. The right
lane is shared: a vehicle crossing at x = 480 either goes straight on into the straight exit (top
left), or turns right into the right exit (x >= 560), which a separate head A (only a green arrow lamp)
permits while it is lit. Vehicles move up at 60 px/s and cross the line at t = 2.0 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.violations import Drive, SignalFn, make_scene, phases, rules_of, run
from violations.rules import RuleEngine
from violations.scene import Scene
from violations.types import SignalReading, SignalState

LIGHTS: list[dict[str, Any]] = [
    {"id": "L1", "roi": [600, 10, 630, 80]},
    {"id": "A", "roi": [600, 90, 630, 120], "lamps": {"green": [615, 105]}},
]
RIGHT_EXIT = [[560, 130], [640, 130], [640, 280], [560, 280]]
STRAIGHT_EXIT = [[40, 40], [500, 40], [500, 230], [40, 230]]

# Crosses at (480, 300) at 2.0 s, 50 px past the line at 3.0 s, then right: into the right exit at
# about 3.55 s (after the red light is established at 60 px past the line, 3.2 s) and out of view.
RIGHT_TURN = [(0.0, 480.0, 420.0), (2.0, 480.0, 300.0), (3.0, 520.0, 250.0), (4.5, 635.0, 195.0)]
# The same crossing, then straight on: into the straight exit (y < 230) at about 3.4 s.
STRAIGHT = [(0.0, 480.0, 420.0), (2.0, 480.0, 300.0), (4.5, 470.0, 150.0)]
# Turning right, lost before it reaches the right exit (3.3 s, 545 px, 240: past the 60 px mark).
LOST_MID_TURN = [(0.0, 480.0, 420.0), (2.0, 480.0, 300.0), (3.0, 520.0, 250.0), (3.4, 540.0, 240.0)]
# Stops 15 px past the line for 5 s (waiting for pedestrians, or overshooting), then goes.
STOP_THEN_RIGHT = [(0.0, 480.0, 420.0), (2.25, 480.0, 285.0), (7.5, 480.0, 285.0), (8.5, 520.0, 250.0)]
STOP_THEN_RIGHT += [(9.8, 635.0, 195.0)]
STOP_THEN_STRAIGHT = [(0.0, 480.0, 420.0), (2.25, 480.0, 285.0), (7.5, 480.0, 285.0), (9.5, 475.0, 160.0)]


def exit_scene(right: dict[str, Any] | None = None, **extra: Any) -> Scene:
    """The test scene with the right exit (`right` replaces its light setting) and the straight exit;
    `extra`: further top-level keys."""
    exits = [
        {"id": "right", "polygon": RIGHT_EXIT, **(right if right is not None else {"light": "A"})},
        {"id": "straight", "polygon": STRAIGHT_EXIT},
    ]
    stop = {"id": "sl1", "points": [[40, 300], [600, 300]], "approach": "below", "light": "L1"}
    return make_scene(stop_lines=[{**stop, "exits": exits}], lights=LIGHTS, **extra)


def lights(main: SignalFn, arrow: SignalFn) -> SignalFn:
    """The readings of both heads."""

    def reading(t: float) -> Mapping[str, SignalReading]:
        return {**main(t), **arrow(t)}

    return reading


RED = phases((0.0, "red"))
ARROW_GREEN = phases((0.0, "green"), light="A")
ARROW_DARK = phases((0.0, "unknown"), light="A")


def arrow(*changes: tuple[float, SignalState]) -> SignalFn:
    return phases(*changes, light="A")


CASES = [
    # (id, waypoints, arrow readings, the right exit's setting, expected rules, details.movement: the
    # exit entered, None when not seen yet as the event was made: only events that waited for the
    # movement, because one was permitted, are made after it)
    ("right_turn_under_green_arrow", RIGHT_TURN, ARROW_GREEN, None, [], None),
    ("right_turn_arrow_dark", RIGHT_TURN, ARROW_DARK, None, ["red_light"], None),
    ("right_turn_arrow_never_read", RIGHT_TURN, phases(light="A"), None, ["red_light"], None),
    ("straight_under_green_arrow", STRAIGHT, ARROW_GREEN, None, ["red_light"], "straight"),
    ("straight_arrow_dark", STRAIGHT, ARROW_DARK, None, ["red_light"], None),
    ("right_turn_free_exit", RIGHT_TURN, ARROW_DARK, {"free": True}, [], None),
    ("straight_free_right_exit", STRAIGHT, ARROW_DARK, {"free": True}, ["red_light"], "straight"),
    ("right_turn_no_light_no_sign", RIGHT_TURN, ARROW_GREEN, {}, ["red_light"], None),
    ("lost_mid_turn_under_green_arrow", LOST_MID_TURN, ARROW_GREEN, None, [], None),
    ("lost_mid_turn_arrow_dark", LOST_MID_TURN, ARROW_DARK, None, ["red_light"], None),
    # The arrow went dark 0.2 s before the crossing: within the amber grace, as for the main light.
    ("arrow_ended_within_grace", RIGHT_TURN, arrow((0.0, "green"), (1.8, "amber")), None, [], None),
    (
        "arrow_ended_before_crossing",
        RIGHT_TURN,
        arrow((0.0, "green"), (1.0, "amber")),
        None,
        ["red_light"],
        None,
    ),
    (
        "arrow_lit_after_crossing",
        RIGHT_TURN,
        arrow((0.0, "unknown"), (2.5, "green")),
        None,
        ["red_light"],
        None,
    ),
    ("waits_past_line_then_turns_right", STOP_THEN_RIGHT, ARROW_GREEN, None, [], None),
    (
        "waits_past_line_then_straight",
        STOP_THEN_STRAIGHT,
        ARROW_GREEN,
        None,
        ["red_light", "stop_line"],
        "straight",
    ),
    ("waits_past_line_arrow_dark", STOP_THEN_RIGHT, ARROW_DARK, None, ["red_light", "stop_line"], None),
]


@pytest.mark.parametrize(
    ("waypoints", "arrow_fn", "right", "expected", "movement"),
    [pytest.param(w, a, r, e, m, id=name) for name, w, a, r, e, m in CASES],
)
def test_movements_out_of_a_shared_lane(
    waypoints: list[tuple[float, float, float]],
    arrow_fn: SignalFn,
    right: dict[str, Any] | None,
    expected: list[str],
    movement: str | None,
) -> None:
    engine = RuleEngine(exit_scene(right))
    events = run(engine, [Drive(7, waypoints)], lights(RED, arrow_fn))
    events += engine.finish(12.0)
    assert rules_of(events) == expected
    for ev in events:
        assert ev.details["movement"] == movement
        assert ev.track_id == 7 and ev.details["line_id"] == "sl1" and ev.details["light_id"] == "L1"


def test_the_red_light_event_waits_for_the_movement_and_shows_it() -> None:
    """Straight under the green arrow: established 60 px past the line at 3.0 s, the event is made
    where the vehicle enters the straight exit (the evidence then shows the movement)."""
    (ev,) = run(RuleEngine(exit_scene()), [Drive(7, STRAIGHT)], lights(RED, ARROW_GREEN))
    d = ev.details
    assert (d["movement"], d["permitted_movements"]) == ("straight", ["right"])
    assert d["crossed_at_ts"] == pytest.approx(2.0, abs=0.01)
    assert ev.box_xyxy[3] < 230  # in the straight exit
    assert d["past_line_px"] > 70


def test_a_vehicle_in_no_exit_within_the_window_is_not_fined() -> None:
    """It crosses on red under the green arrow and stands in the middle of the junction, in no exit,
    for longer than movement_window_s (it may yet turn right): not fined."""
    waypoints = [(0.0, 480.0, 420.0), (2.0, 480.0, 300.0), (3.2, 490.0, 235.0), (12.0, 490.0, 235.0)]
    engine = RuleEngine(exit_scene(tolerances={"movement_window_s": 3.0}))
    assert run(engine, [Drive(7, waypoints)], lights(RED, ARROW_GREEN)) == []
    assert engine.held == 0


def test_no_exits_behaviour_unchanged() -> None:
    """The same right turn on a line without exits is a red-light run, as before (no movement)."""
    (ev,) = run(RuleEngine(make_scene(lights=LIGHTS)), [Drive(7, RIGHT_TURN)], lights(RED, ARROW_GREEN))
    assert ev.rule == "red_light" and "movement" not in ev.details and "permitted_movements" not in ev.details


def test_held_events_waiting_for_a_movement_are_decided_when_the_video_ends() -> None:
    """The video ends while the vehicle is between the line and any exit: it may have turned: none."""
    engine = RuleEngine(exit_scene())
    assert run(engine, [Drive(7, RIGHT_TURN)], lights(RED, ARROW_GREEN), until=3.3) == []
    assert engine.held == 1
    assert engine.finish(3.3) == [] and engine.held == 0
