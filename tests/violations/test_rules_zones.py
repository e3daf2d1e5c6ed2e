"""Wrong-way, wrong-lane, illegal-stop and sidewalk rules on synthetic tracks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.violations import Drive, SignalFn, make_scene, moving, phases, rules_of, run
from violations.rules import RuleEngine

# --- wrong way ------------------------------------------------------------------------------------

ONE_WAY = [{"id": "ow1", "polygon": [[100, 150], [540, 150], [540, 470], [100, 470]], "direction": "up"}]


def wrong_way_engine(**zone: Any) -> RuleEngine:
    return RuleEngine(make_scene(wrong_way_zones=[{**ONE_WAY[0], **zone}]), rules=["wrong_way"])


WRONG_WAY_CASES = [
    ("down_sustained", [moving(1, (300, 160), (0, 50), 0.0, 5.0)], ["wrong_way"]),
    ("up_with_traffic", [moving(1, (300, 460), (0, -50), 0.0, 5.0)], []),
    ("down_too_briefly", [moving(1, (300, 160), (0, 50), 0.0, 1.0)], []),
    ("sideways_crossing", [moving(1, (110, 300), (80, 0), 0.0, 5.0)], []),
    ("stationary_jitter", [Drive(1, [(0.0, 300, 300), (10.0, 300, 300)], jitter=4.0, seed=1)], []),
    (
        # Drives up through the zone, leaves it at the top and makes its U-turn outside (y < 150),
        # then turns away to the right above the zone.
        "u_turn_outside_zone",
        [
            Drive(
                1, [(0, 300, 460), (6, 300, 130), (7, 300, 100), (8, 340, 100), (9, 360, 125), (12, 600, 125)]
            )
        ],
        [],
    ),
    (
        # Same U-turn, but it comes back down through the zone: that is driving the wrong way.
        "u_turn_then_back_through_zone",
        [
            Drive(
                1, [(0, 300, 460), (6, 300, 130), (7, 300, 100), (8, 340, 100), (9, 360, 130), (14, 360, 440)]
            )
        ],
        ["wrong_way"],
    ),
    (
        # Brief reversal while parking (1 s back, then forward): under the sustained-motion threshold.
        "short_reverse",
        [Drive(1, [(0, 300, 460), (2, 300, 360), (3, 300, 400), (6, 300, 250)])],
        [],
    ),
]


@pytest.mark.parametrize(
    ("drives", "expected"), [pytest.param(d, e, id=name) for name, d, e in WRONG_WAY_CASES]
)
def test_wrong_way(drives: list[Drive], expected: list[str]) -> None:
    events = run(wrong_way_engine(), drives)
    assert rules_of(events) == expected


def test_wrong_way_event_contents() -> None:
    (ev,) = run(wrong_way_engine(), [moving(4, (300, 160), (0, 50), 0.0, 5.0, cls="car")])
    assert ev.legal_reference == "Điểm d khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"
    assert ev.details["zone_id"] == "ow1"
    assert ev.details["motion_angle_deg"] == pytest.approx(180.0)
    assert ev.details["against_for_s"] >= 1.5 and ev.details["travel_px"] >= 25
    # Established once the motion was sustained 1.5 s (the window dates it back by up to 1 s).
    assert 1.4 <= ev.ts <= 2.6


def test_wrong_way_reported_once_despite_an_occlusion() -> None:
    """Driving the wrong way, hidden behind a bus for 1.5 s, then still driving the wrong way."""
    drive = moving(1, (300, 160), (0, 30), 0.0, 10.0)
    hidden = Drive(1, [w for w in drive.waypoints])
    at = hidden.at

    def occluded(t: float) -> tuple[float, float] | None:
        return None if 4.0 < t < 5.5 else at(t)

    hidden.at = occluded  # type: ignore[method-assign]
    assert rules_of(run(wrong_way_engine(), [hidden])) == ["wrong_way"]


# --- wrong lane -----------------------------------------------------------------------------------

LANES = [
    {"id": "cars", "polygon": [[100, 100], [300, 100], [300, 470], [100, 470]], "direction": "up",
     "classes": ["car", "bus", "truck"]},
    {"id": "mixed", "polygon": [[300, 100], [540, 100], [540, 470], [300, 470]], "direction": "up"},
]  # fmt: skip

WRONG_LANE_CASES = [
    ("motorbike_in_car_lane", [moving(1, (200, 460), (0, -60), 0.0, 5.0, cls="motorcycle")], ["wrong_lane"]),
    ("car_in_car_lane", [moving(1, (200, 460), (0, -60), 0.0, 5.0, cls="car")], []),
    ("motorbike_in_mixed_lane", [moving(1, (420, 460), (0, -60), 0.0, 5.0, cls="motorcycle")], []),
    ("motorbike_crosses_car_lane", [moving(1, (90, 300), (100, 0), 0.0, 4.0, cls="motorcycle")], []),
    ("motorbike_in_car_lane_briefly", [moving(1, (200, 460), (0, -60), 0.0, 1.5, cls="motorcycle")], []),
    ("person_in_car_lane", [moving(1, (200, 460), (0, -60), 0.0, 5.0, cls="person")], []),
]


@pytest.mark.parametrize(
    ("drives", "expected"), [pytest.param(d, e, id=name) for name, d, e in WRONG_LANE_CASES]
)
def test_wrong_lane(drives: list[Drive], expected: list[str]) -> None:
    engine = RuleEngine(make_scene(lanes=LANES), rules=["wrong_lane"])
    assert rules_of(run(engine, drives)) == expected


def test_wrong_lane_uses_majority_class_and_cites_it() -> None:
    engine = RuleEngine(make_scene(lanes=LANES), rules=["wrong_lane"])
    (ev,) = run(engine, [moving(1, (200, 460), (0, -60), 0.0, 5.0, cls="motorcycle")])
    assert ev.legal_reference == "Điểm d khoản 3 Điều 7 Nghị định 168/2024/NĐ-CP"
    assert ev.details["lane_id"] == "cars" and ev.details["allowed_classes"] == ["car", "bus", "truck"]
    assert ev.details["in_lane_for_s"] >= 2.0


# --- illegal stop ---------------------------------------------------------------------------------

NO_PARKING = {"id": "np1", "kind": "no_parking", "polygon": [[100, 100], [540, 100], [540, 280], [100, 280]],
              "max_dwell_s": 10}  # fmt: skip


def parked(tid: int, t0: float, t1: float, cls: str = "car", **kw: Any) -> Drive:
    """Drives in from below the zone, stands at (320, 200) from t0 to t1, drives off to the right."""
    return Drive(tid, [(t0 - 2.0, 320, 300), (t0, 320, 200), (t1, 320, 200), (t1 + 2.0, 600, 200)], cls, **kw)


STOP_CASES: list[tuple[str, dict[str, Any], list[Drive], SignalFn | None, list[str]]] = [
    ("parked_15s_no_light", {}, [parked(1, 2.0, 17.0)], None, ["illegal_stop"]),
    ("parked_8s_no_light", {}, [parked(1, 2.0, 10.0)], None, []),
    ("driving_through", {}, [moving(1, (320, 300), (0, -40), 0.0, 6.0)], None, []),
    ("parked_15s_jittery_box", {}, [parked(1, 2.0, 17.0, jitter=2.5, seed=5)], None, ["illegal_stop"]),
    ("queue_at_red", {"light": "L1"}, [parked(1, 2.0, 30.0)], phases((0.0, "red")), []),
    (
        "queue_leaves_soon_after_green",
        {"light": "L1"},
        [parked(1, 2.0, 25.0)],
        phases((0.0, "red"), (20.0, "green")),
        [],
    ),
    (
        "stays_long_after_green",
        {"light": "L1"},
        [parked(1, 2.0, 45.0)],
        phases((0.0, "red"), (20.0, "green")),
        ["illegal_stop"],
    ),
    ("signal_unknown_is_benefit_of_doubt", {"light": "L1"}, [parked(1, 2.0, 30.0)], None, []),
    ("motorbike_not_in_classes", {"classes": ["car"]}, [parked(1, 2.0, 17.0, cls="motorcycle")], None, []),
]


@pytest.mark.parametrize(
    ("zone", "drives", "signals", "expected"),
    [pytest.param(z, d, s, e, id=name) for name, z, d, s, e in STOP_CASES],
)
def test_illegal_stop(
    zone: dict[str, Any], drives: list[Drive], signals: SignalFn | None, expected: list[str]
) -> None:
    engine = RuleEngine(make_scene(stop_zones=[{**NO_PARKING, **zone}]), rules=["illegal_stop"])
    assert rules_of(run(engine, drives, signals)) == expected


def test_illegal_stop_event_contents() -> None:
    engine = RuleEngine(make_scene(stop_zones=[{**NO_PARKING, "light": "L1"}]), rules=["illegal_stop"])
    (ev,) = run(engine, [parked(1, 2.0, 45.0)], phases((0.0, "red"), (20.0, "green")))
    assert ev.legal_reference == "Điểm e khoản 3 Điều 6 Nghị định 168/2024/NĐ-CP"
    d = ev.details
    assert d["zone_id"] == "np1" and d["kind"] == "no_parking" and d["dwell_s"] >= 10
    # Red until 20 s, then 8 s of queue release: dwell counts from 28 s.
    assert d["queue_excused_s"] >= 20
    assert 37.5 <= ev.ts <= 39.5


def test_parked_car_with_flickering_id_is_reported_once() -> None:
    drives = [
        Drive(1, [(0.0, 320, 300), (2.0, 320, 200), (14.0, 320, 200)], "car"),
        Drive(2, [(14.5, 320, 200), (30.0, 320, 200)], "car"),
        # Re-found after a long occlusion (a bus stood in front for 4 s): no stitching, same spot.
        Drive(3, [(34.0, 320, 200), (50.0, 320, 200)], "car"),
    ]
    engine = RuleEngine(make_scene(stop_zones=[NO_PARKING]), rules=["illegal_stop"])
    assert rules_of(run(engine, drives)) == ["illegal_stop"]


@pytest.mark.parametrize("gap_s", [2.0, 5.0, 12.0])
def test_a_car_parking_where_a_reported_one_stood_is_reported_too(gap_s: float) -> None:
    """Car 1 is reported and drives off; car 2 drives onto the same spot `gap_s` later and stays."""
    first = Drive(1, [(0.0, 320, 300), (2.0, 320, 200), (17.0, 320, 200), (19.0, 600, 200)], "car")
    t0 = 19.0 + gap_s
    second = Drive(2, [(t0 - 2.0, 320, 300), (t0, 322, 205), (t0 + 40.0, 322, 205)], "car")
    engine = RuleEngine(make_scene(stop_zones=[NO_PARKING]), rules=["illegal_stop"])
    assert sorted(e.track_id for e in run(engine, [first, second])) == [1, 2]


def test_a_second_stop_after_driving_off_is_a_new_episode() -> None:
    drive = Drive(
        1, [(0.0, 200, 300), (2.0, 200, 200), (15.0, 200, 200), (17.0, 450, 200), (32.0, 450, 200)], "car"
    )
    engine = RuleEngine(make_scene(stop_zones=[NO_PARKING]), rules=["illegal_stop"])
    assert rules_of(run(engine, [drive])) == ["illegal_stop", "illegal_stop"]


# --- sidewalk -------------------------------------------------------------------------------------

SIDEWALK = [{"id": "sw1", "polygon": [[0, 400], [640, 400], [640, 470], [0, 470]]}]

SIDEWALK_CASES = [
    ("riding_along", [moving(1, (50, 440), (60, 0), 0.0, 6.0)], ["sidewalk"]),
    ("crossing_briefly", [moving(1, (300, 480), (0, -80), 0.0, 2.0)], []),
    ("bicycle_riding_along", [moving(1, (50, 440), (60, 0), 0.0, 6.0, cls="bicycle")], ["sidewalk"]),
    ("car_not_checked_by_default", [moving(1, (50, 440), (60, 0), 0.0, 6.0, cls="car")], []),
    ("parked_on_sidewalk", [Drive(1, [(0.0, 300, 440), (20.0, 300, 440)], jitter=2.0)], []),
    ("slow_short_ride", [moving(1, (50, 440), (8, 0), 0.0, 3.0)], []),
]


@pytest.mark.parametrize(
    ("drives", "expected"), [pytest.param(d, e, id=name) for name, d, e in SIDEWALK_CASES]
)
def test_sidewalk(drives: list[Drive], expected: list[str]) -> None:
    engine = RuleEngine(make_scene(sidewalks=SIDEWALK), rules=["sidewalk"])
    assert rules_of(run(engine, drives)) == expected


def test_sidewalk_event_contents() -> None:
    engine = RuleEngine(make_scene(sidewalks=SIDEWALK), rules=["sidewalk"])
    (ev,) = run(engine, [moving(1, (50, 440), (60, 0), 0.0, 6.0)])
    assert ev.legal_reference == "Điểm a khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"
    assert ev.details["moving_for_s"] >= 2.0 and ev.details["travel_px"] >= 30


@pytest.mark.parametrize("seed", range(20))
def test_riding_along_the_curb_is_not_riding_the_sidewalk(seed: int) -> None:
    """A motorbike on the road 3 px off the sidewalk's edge, its box bottom wobbling ±3 px: half the
    seeds used to be fined, each time the bottom touched the sidewalk (the episode never restarted
    on the road). Riding 15 px inside with the same wobble still is a violation."""
    engine = RuleEngine(make_scene(sidewalks=SIDEWALK), rules=["sidewalk"])
    assert run(engine, [moving(1, (40.0, 397.0), (60.0, 0.0), 0.0, 9.0, jitter=2.5, seed=seed)]) == []
    engine = RuleEngine(make_scene(sidewalks=SIDEWALK), rules=["sidewalk"])
    inside = run(engine, [moving(1, (40.0, 415.0), (60.0, 0.0), 0.0, 9.0, jitter=2.5, seed=seed)])
    assert rules_of(inside) == ["sidewalk"]


def test_id_hopping_down_a_queue_is_not_driving_the_wrong_way() -> None:
    """In a packed queue the tracker hands one id from bike to bike, one bike nearer the camera each
    second: the 'track' moves down the image in 40 px hops, but nothing drives."""
    hops = [(float(k), 300.0, 200.0 + 40.0 * k) for k in range(7)]
    waypoints = [w for k, w in enumerate(hops) for w in (w, (w[0] + 0.9, w[1], w[2]))]
    drive = Drive(1, sorted(waypoints))
    assert run(wrong_way_engine(), [drive]) == []


def test_a_box_growing_as_an_occluder_leaves_is_not_motion() -> None:
    """A waiting bike's box: top fixed, bottom edge sliding 100 px down as the bike in front pulls
    away and uncovers it."""

    def growing(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        return (x - 15.0, 200.0, x + 15.0, y)

    drive = Drive(
        1,
        [(0.0, 300.0, 240.0), (1.0, 300.0, 240.0), (3.0, 300.0, 340.0), (6.0, 300.0, 340.0)],
        box_fn=growing,
    )
    assert run(wrong_way_engine(), [drive]) == []
