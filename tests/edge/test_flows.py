"""Flow statistics: lane by majority of the path, direction from displacement, intervals closed once.

Hand-made tracks on a two-lane scene (tables), then the real detector and tracker on 15 s of the
Giang Vo clip, whose near approach drives up the image into the junction.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from detector.tracking import TrackHistory
from phatnguoi.flows import (
    ALL_LANES,
    FlowConfig,
    FlowCounter,
    classify_track,
    image_direction,
    iso_second,
    key_name,
    lane_direction,
    majority_lane,
)
from tests.conftest import REPO_ROOT
from violations.rules.signal_rules import CrossingRecord
from violations.scene import Scene, load_scene

COCO = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "truck": 7}
T0 = 1_699_999_800.0  # 2023-11-14T22:10:00Z, on a 5-minute boundary

#: Two lanes side by side: "north" (x 0..200, traffic drives up) and "south" (x 200..400, down).
SCENE = Scene.model_validate(
    {
        "camera_id": "cam-a1",
        "resolution": [640, 480],
        "lanes": [
            {"id": "north", "polygon": [[0, 0], [200, 0], [200, 480], [0, 480]], "direction": "up"},
            {"id": "south", "polygon": [[200, 0], [400, 0], [400, 480], [200, 480]], "direction": "down"},
        ],
    }
)


def track(
    points: list[tuple[float, float]],
    cls: str = "motorcycle",
    *,
    tid: int = 1,
    t0: float = 0.0,
    dt: float = 0.5,
    detected: list[bool] | None = None,
) -> TrackHistory:
    """A track whose box bottom-centre follows `points`, one row every `dt` seconds."""
    h = TrackHistory(tid)
    for k, (x, y) in enumerate(points):
        seen = True if detected is None else detected[k]
        h.frame_index.append(k)
        h.ts.append(t0 + k * dt)
        h.xyxy.append((x - 10.0, y - 30.0, x + 10.0, y))
        h.confidence.append(0.8)
        h.detected.append(seen)
        if seen:
            h.class_votes[COCO[cls]] += 1
    return h


def straight(x0: float, y0: float, x1: float, y1: float, n: int = 6) -> list[tuple[float, float]]:
    return [(x0 + (x1 - x0) * k / (n - 1), y0 + (y1 - y0) * k / (n - 1)) for k in range(n)]


@pytest.mark.parametrize(
    ("displacement", "direction", "max_angle", "expected"),
    [
        ((0, -10), (0, -1), 60, "forward"),
        ((0, 10), (0, -1), 60, "reverse"),
        ((10, 0), (0, -1), 60, "cross"),
        ((5, -10), (0, -1), 30, "forward"),  # 26.6 degrees off
        ((10, -10), (0, -1), 45, "forward"),  # exactly on the limit
        ((10, -9), (0, -1), 45, "cross"),  # just past it
        ((-10, 9), (0, -1), 45, "cross"),
        ((-1, 10), (0, -1), 45, "reverse"),
        ((0, 0), (0, -1), 60, ValueError),
    ],
)
def test_lane_direction(
    displacement: tuple[float, float], direction: tuple[float, float], max_angle: float, expected: object
) -> None:
    if expected is ValueError:
        with pytest.raises(ValueError, match="non-zero"):
            lane_direction(displacement, direction, max_angle)
    else:
        assert lane_direction(displacement, direction, max_angle) == expected


@pytest.mark.parametrize(
    ("displacement", "expected"),
    [
        ((0, -5), "up"),
        ((0, 5), "down"),
        ((-5, 1), "left"),
        ((5, -1), "right"),
        ((3, -3), "up"),  # a tie goes to the vertical axis
        ((0, 0), ValueError),
        ((math.nan, 1), ValueError),
    ],
)
def test_image_direction(displacement: tuple[float, float], expected: object) -> None:
    if expected is ValueError:
        with pytest.raises(ValueError):
            image_direction(displacement)
    else:
        assert image_direction(displacement) == expected


def test_majority_lane_counts_points_and_breaks_ties_by_order() -> None:
    lanes = [(la.id, np.asarray(la.polygon)) for la in SCENE.lanes]
    # Two points in north, three in south: south.
    assert majority_lane([(50, 100), (150, 120), (250, 140), (260, 160), (270, 180)], lanes) == "south"
    assert majority_lane([(50, 100), (250, 100)], lanes) == "north"  # tie: the first lane
    assert majority_lane([(500, 100), (600, 120)], lanes) is None


@pytest.mark.parametrize(
    ("name", "history", "expected"),
    [
        (
            "up the north lane",
            track(straight(100, 400, 100, 100)),
            ("north", "forward", "motorcycle", 2.5, None),
        ),
        (
            "down the north lane",
            track(straight(100, 100, 100, 400), "car"),
            ("north", "reverse", "car", 2.5, None),
        ),
        (
            "down the south lane",
            track(straight(300, 50, 300, 450), "bus"),
            ("south", "forward", "bus", 2.5, None),
        ),
        # Starts in north, spends most of its path in south, moving across: a lane change counts
        # where the vehicle mostly was.
        (
            "across into south",
            track([(150, 300), (210, 300), (260, 300), (320, 300), (380, 300)], "truck"),
            ("south", "cross", "truck", 2.0, None),
        ),
        ("too few observations", track(straight(100, 400, 100, 300, n=2)), (None, None, None, None, "short")),
        ("a pedestrian", track(straight(100, 400, 100, 100), "person"), (None, None, None, None, "class")),
        ("parked", track(straight(100, 300, 104, 290)), (None, None, None, None, "stationary")),
        (
            "outside every lane",
            track(straight(500, 400, 500, 100)),
            (None, None, None, None, "outside_lanes"),
        ),
        # The last two rows are tracker predictions: they neither move the vehicle nor date it.
        (
            "predictions ignored",
            track(straight(100, 400, 100, 100), detected=[True, True, True, True, False, False]),
            ("north", "forward", "motorcycle", 1.5, None),
        ),
    ],
)
def test_classify_track(name: str, history: TrackHistory, expected: tuple[object, ...]) -> None:
    obs = classify_track(history, SCENE.lanes)
    assert (obs.lane, obs.direction, obs.vehicle_class, obs.ts, obs.skipped) == expected, name


def test_without_lanes_every_track_counts_in_all_with_image_directions() -> None:
    obs = classify_track(track(straight(500, 400, 500, 100)), ())
    assert (obs.lane, obs.direction) == (ALL_LANES, "up")
    counter = FlowCounter("cam-a1", None, ts_origin=T0)
    counter.add_tracks([track(straight(10, 10, 300, 20)), track(straight(300, 20, 10, 10), tid=2)])
    assert [(c.lane, c.direction) for c in counter.flush()] == [("all", "left"), ("all", "right")]


def test_intervals_close_after_grace_once_and_late_tracks_are_dropped() -> None:
    counter = FlowCounter("cam-a1", SCENE, config=FlowConfig(interval_s=300, grace_s=10), ts_origin=T0)
    # Three motorbikes and a car in the first interval, one motorbike in the second.
    counter.add_tracks(
        [
            track(straight(100, 400, 100, 100), t0=10, tid=1),
            track(straight(100, 400, 100, 100), t0=100, tid=2),
            track(straight(110, 400, 100, 100), t0=290, tid=3),  # last seen at 292.5: first interval
            track(straight(300, 50, 300, 450), "car", t0=50, tid=4),
            track(straight(100, 400, 100, 100), t0=305, tid=5),
        ]
    )
    assert counter.close_intervals(305.0) == []  # the first interval ended at 300: grace until 310
    closed = counter.close_intervals(310.0)
    assert [(c.lane, c.direction, c.vehicle_class, c.count) for c in closed] == [
        ("north", "forward", "motorcycle", 3),
        ("south", "forward", "car", 1),
    ]
    assert {(c.interval_start, c.interval_end) for c in closed} == {(T0, T0 + 300)}
    assert closed[0].to_json()["interval_start"] == "2023-11-14T22:10:00Z"
    assert closed[0].to_json()["interval_end"] == "2023-11-14T22:15:00Z"
    assert counter.close_intervals(400.0) == []  # emitted once
    # A motorbike of the closed interval reported late: not counted (the interval is final).
    assert counter.add_tracks([track(straight(100, 400, 100, 100), t0=280, tid=6)]) == 0
    assert counter.skipped["late"] == 1
    rest = counter.flush()
    assert [(c.interval_start, c.count) for c in rest] == [(T0 + 300, 1)]


def test_resume_after_drops_intervals_already_emitted_before_a_restart() -> None:
    counter = FlowCounter("cam-a1", SCENE, ts_origin=T0, resume_after=T0 + 300)
    assert counter.add_tracks([track(straight(100, 400, 100, 100), t0=100)]) == 0
    assert counter.add_tracks([track(straight(100, 400, 100, 100), t0=400, tid=2)]) == 1
    assert [c.interval_start for c in counter.flush()] == [T0 + 300]


def test_crossings_count_in_their_own_lane_when_asked() -> None:
    def crossing(ts: float, cls: str) -> CrossingRecord:
        return CrossingRecord(1, 1, "sl1", ts, 6, 100.0, cls, "red", True)

    recs = [crossing(10, "motorcycle"), crossing(20, "motorcycle"), crossing(30, "person")]
    tracks_only = FlowCounter("cam-a1", SCENE, ts_origin=T0)
    assert tracks_only.add_crossings(recs) == 0
    both = FlowCounter("cam-a1", SCENE, config=FlowConfig(source="both"), ts_origin=T0)
    assert both.add_crossings(recs) == 2
    both.add_tracks([track(straight(100, 400, 100, 100))])
    assert [(c.lane, c.direction, c.count) for c in both.flush()] == [
        ("line:sl1", "in", 2),
        ("north", "forward", 1),
    ]


@pytest.mark.parametrize(
    ("interval", "ok"), [(300, True), (60, True), (3600, True), (420, False), (30, False)]
)
def test_interval_must_divide_an_hour(interval: int, ok: bool) -> None:
    if ok:
        assert FlowConfig(interval_s=interval).interval_s == interval
    else:
        with pytest.raises(ValueError, match="interval_s"):
            FlowConfig(interval_s=interval)


def test_key_names_fit_the_server_and_stay_distinct() -> None:
    assert key_name("approach") == "approach"
    a, b = key_name("line:" + "x" * 40), key_name("line:" + "x" * 39 + "y")
    assert len(a) == len(b) == 32 and a != b and a == key_name("line:" + "x" * 40)
    assert iso_second(T0 + 0.4) == "2023-11-14T22:10:00Z"


def test_flows_from_the_real_detector_on_giang_vo(hanoi_clip: Path) -> None:
    """15 s of the clip through the real detector and tracker: the near approach (lane "approach",
    direction up) carries the flow, overwhelmingly motorbikes moving forward; and nobody is counted
    twice in one interval (counts add up to the tracks counted)."""
    import cv2

    from phatnguoi.config import load_camera
    from phatnguoi.detect import DetectJob

    scene = load_scene(REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml")
    camera = load_camera(REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml")
    job = DetectJob(camera, frame_rate=6.0)
    cap = cv2.VideoCapture(str(hanoi_clip))
    from streams.frame import Frame

    try:
        for index in range(90):
            ok, image = cap.read()
            assert ok
            job.step(Frame(image, index, index / 6.0, scene.camera_id))
    finally:
        cap.release()
    counter = FlowCounter(scene.camera_id, scene, class_names=job.detector.class_names, ts_origin=T0)
    counted = counter.add_tracks(job.all_tracks())
    counts = counter.flush()
    assert sum(c.count for c in counts) == counted
    per = Counter({(c.lane, c.direction, c.vehicle_class): c.count for c in counts})
    forward_bikes = per[("approach", "forward", "motorcycle")]
    assert forward_bikes >= 5, per
    against = sum(n for (lane, d, _), n in per.items() if lane == "approach" and d == "reverse")
    assert against <= forward_bikes // 5, per
    assert counter.skipped["outside_lanes"] > 0  # cross traffic is seen but is not this lane's flow


def bike(ended_at: float, tid: int = 1) -> TrackHistory:
    """A motorbike up the north lane whose last observed frame is at `ended_at` (stream clock)."""
    return track(straight(100, 400, 100, 100), t0=ended_at - 2.5, tid=tid)


def test_after_the_clock_was_set_back_counting_goes_on_under_the_new_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A box whose clock ran 7 h ahead until NTP set it back, 60 s intervals (live: stream times are
    the wall clock). The counter used to keep its 'closed until' mark 7 h ahead, so every vehicle
    after the step was dropped as late (at debug level) until the clock caught up: no flow counts for
    7 h. Now the counts dated ahead of the corrected clock are dropped with one warning, what was
    closed before the step stays emitted, and the vehicles after it are counted."""
    ahead = T0 + 7 * 3600  # the clock before the step
    counter = FlowCounter("cam-a1", SCENE, config=FlowConfig(interval_s=60, grace_s=10))
    counter.add_tracks([bike(ahead + 5), bike(ahead + 20, tid=2)])
    closed = counter.close_intervals(ahead + 70)
    assert [(c.interval_start, c.count) for c in closed] == [(ahead, 2)]  # emitted before the step
    counter.add_tracks([bike(ahead + 75, tid=3)])  # [ahead + 60, ahead + 120) is open at the step
    caplog.set_level(logging.WARNING, logger="phatnguoi.flows")

    assert counter.clock_stepped(T0 + 80) == 1
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "clock was set back" in warning and "1 vehicle(s)" in warning, warning
    assert counter.skipped["clock_step"] == 1 and counter.open_intervals == 0

    # After the step: two bikes in [T0 + 60, T0 + 120), one in the next minute.
    assert counter.add_tracks([bike(T0 + 85, tid=1), bike(T0 + 100, tid=2), bike(T0 + 130, tid=3)]) == 3
    assert counter.skipped["late"] == 0
    closed = counter.close_intervals(T0 + 130)
    assert [(c.interval_start, c.interval_end, c.count) for c in closed] == [(T0 + 60, T0 + 120, 2)]
    assert [(c.interval_start, c.count) for c in counter.flush()] == [(T0 + 120, 1)]


def test_a_small_step_back_keeps_the_interval_of_the_step() -> None:
    """Set back 30 s within one 5-minute interval: its counts from before the step stay (they are 30 s
    off at most) and counting goes on in it; nothing lies ahead of the corrected clock."""
    counter = FlowCounter("cam-a1", SCENE, config=FlowConfig(interval_s=300, grace_s=10), ts_origin=T0)
    counter.add_tracks([bike(100)])
    assert counter.clock_stepped(90) == 0
    counter.add_tracks([bike(95, tid=2)])
    assert [(c.interval_start, c.count) for c in counter.close_intervals(310)] == [(T0, 2)]


def test_after_the_clock_was_set_forward_nothing_is_lost() -> None:
    """A clock 2 h behind, set forward: the intervals from before the step lie in the past of the new
    clock and are emitted (dated by the old clock); the vehicles after the step are counted."""
    behind = T0 - 2 * 3600
    counter = FlowCounter("cam-a1", SCENE, config=FlowConfig(interval_s=60, grace_s=10))
    counter.add_tracks([bike(behind + 5), bike(behind + 50, tid=2)])
    assert counter.clock_stepped(T0 + 3) == 0
    assert counter.add_tracks([bike(T0 + 10, tid=1), bike(T0 + 30, tid=2)]) == 2
    closed = counter.close_intervals(T0 + 30)
    assert [(c.interval_start, c.count) for c in closed] == [(behind, 2)]
    assert [(c.interval_start, c.count) for c in counter.close_intervals(T0 + 70)] == [(T0, 2)]


def test_late_tracks_are_warned_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    counter = FlowCounter("cam-a1", SCENE, config=FlowConfig(interval_s=60, grace_s=10), ts_origin=T0)
    counter.add_tracks([bike(5)])
    counter.close_intervals(130)  # [T0, T0 + 60) and [T0 + 60, T0 + 120) are closed
    caplog.set_level(logging.WARNING, logger="phatnguoi.flows")
    late = [bike(20, tid=1), bike(30, tid=2), bike(40, tid=3), bike(70, tid=4), bike(80, tid=5)]
    assert counter.add_tracks(late) == 0
    assert counter.skipped["late"] == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one per closed interval
    assert iso_second(T0) in warnings[0] and iso_second(T0 + 60) in warnings[1]
