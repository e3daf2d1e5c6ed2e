"""The rule engine as the edge worker drives it: real TrackStore input, incremental rows, forgetting."""

from __future__ import annotations

import numpy as np
import pytest

from detector import Detections
from detector.tracking import TrackHistory, TrackStore
from tests.violations import COCO, Drive, make_scene, moving, phases, rules_of, run
from violations.rules import RuleEngine
from violations.types import SignalReading

RED = phases((0.0, "red"))


def add_row(h: TrackHistory, k: int, t: float, y: float, cls: str, detected: bool = True) -> None:
    """Append one frame to a history: a 30x50 box whose bottom-centre is (320, y)."""
    h.frame_index.append(k)
    h.ts.append(t)
    h.xyxy.append((305.0, y - 50, 335.0, y))
    h.confidence.append(0.9)
    h.detected.append(detected)
    if detected:
        h.class_votes[COCO[cls]] += 1


def test_track_store_input_gives_a_red_light_event() -> None:
    """Boxes go through the real TrackStore (with its pruning), as in the edge worker."""
    store = TrackStore(history_s=1.5, lost_s=1.0)  # short history: rows are trimmed as it drives
    engine = RuleEngine(make_scene())
    events = []
    fps = 10
    for k in range(70):
        t = k / fps
        y = 450.0 - 60.0 * t
        boxes = np.array([[305.0, y - 50, 335.0, y], [100.0, 460.0, 130.0, 470.0]], np.float32)
        dets = Detections(boxes, np.full(2, 0.9, np.float32), np.full(2, COCO["motorcycle"], np.int32))
        store.update(k, t, dets.with_tracker_id(np.array([11, 12], np.int64)))
        events += engine.update(store, {"L1": SignalReading("red", 0.0, 0.9)}, t)
    assert [(e.rule, e.track_id) for e in events] == [("red_light", 11)]
    # Crossed y=300 at 2.5 s.
    assert events[0].details["crossed_at_ts"] == pytest.approx(2.5, abs=0.01)


def test_history_seen_all_at_once_is_processed() -> None:
    """An engine started late reads a track's whole history on its first update."""
    h = TrackHistory(5)
    for k in range(45):
        t = k / 10
        add_row(h, k, t, 420.0 - 60.0 * t, "car")
    engine = RuleEngine(make_scene())
    engine.signals.observe({"L1": SignalReading("red", 0.0, 0.9)}, 0.0)
    events = engine.update([h], {"L1": SignalReading("red", 0.0, 0.9)}, 4.4)
    assert rules_of(events) == ["red_light"]
    # Nothing new: nothing is re-read.
    assert engine.update([h], {"L1": SignalReading("red", 0.0, 0.9)}, 4.5) == []


def test_predicted_rows_never_establish_a_violation() -> None:
    """The tracker only predicted the crossing (no detection past the line): no event."""
    h = TrackHistory(5)
    engine = RuleEngine(make_scene())
    events = []
    for k in range(50):
        t = k / 10
        y = 420.0 - 60.0 * t
        add_row(h, k, t, y, "motorcycle", detected=y > 305.0)
        events += engine.update([h], {"L1": SignalReading("red", 0.0, 0.9)}, t)
    assert events == []


def test_state_is_forgotten_when_tracks_end() -> None:
    engine = RuleEngine(
        make_scene(sidewalks=[{"id": "s", "polygon": [[0, 400], [640, 400], [640, 470], [0, 470]]}])
    )
    drives = [moving(k, (50.0 + 40 * k, 440.0), (10.0, -30.0), 0.0, 3.0) for k in range(1, 6)]
    run(engine, drives, RED, until=3.0)
    assert engine.vehicle_count == 5
    engine.update([], {}, 3.5)  # the tracks ended; their vehicles wait for a possible successor...
    assert engine.vehicle_count == 5
    engine.update([], {}, 10.0)  # ...and are gone after the stitch gap
    assert engine.vehicle_count == 0
    for rule in engine.rules:
        assert not rule._state  # type: ignore[attr-defined]


def test_custom_class_names() -> None:
    engine = RuleEngine(make_scene(), class_names=("xe_may", "motorcycle", "car"))
    h = Drive(3, [(0.0, 320.0, 420.0), (4.5, 320.0, 150.0)], "person")  # COCO id 0 → "xe_may" here
    assert run(engine, [h], RED) == []


def test_scene_without_light_runs_the_other_rules(caplog: pytest.LogCaptureFixture) -> None:
    scene = make_scene(
        lights=None,
        stop_lines=[{"id": "sl1", "points": [[40, 300], [600, 300]], "approach": "below"}],
        wrong_way_zones=[
            {"id": "w", "polygon": [[100, 150], [540, 150], [540, 470], [100, 470]], "direction": "up"}
        ],
    )
    engine = RuleEngine(scene)
    assert engine.enabled == ("wrong_way",)
    events = run(engine, [moving(1, (300, 160), (0, 50), 0.0, 5.0)], RED)
    assert rules_of(events) == ["wrong_way"]
