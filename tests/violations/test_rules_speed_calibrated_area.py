"""Speed is measured only where the calibration holds: inside the outline of its image points.

The camera of `test_rules_speed_perspective` (6 m up, pitched 12° down, looking along the road). An
installer calibrates with the four corners of a patch of one 3.5 m lane, starting 12 m ahead, each
corner clicked with a Gaussian error of 2 px, and draws the speed zone over the whole approach. Beyond
the patch the homography extrapolates: the click errors tilt the fitted road plane, and the error of a
distance grows with how far from the points it is measured, far beyond the 3 % `scale_error`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.violations import Drive, make_scene, rules_of, run
from tests.violations.test_rules_speed_perspective import along_road, project, upright_box
from violations.rules import RuleEngine
from violations.scene import Scene, check_scene

#: A speed zone over the whole road below the horizon, as drawn over the approach.
APPROACH = [[0.0, 200.0], [1280.0, 200.0], [1280.0, 720.0], [0.0, 720.0]]


def install(far_m: float, seed: int, click_px: float = 2.0, **speed: Any) -> Scene:
    """A scene calibrated on the corners of a 3.5 m lane from 12 m to `far_m` ahead, each corner
    clicked `click_px` off (1 sigma, seeded), limit 50 km/h for cars."""
    ground = [[0.0, 12.0], [3.5, 12.0], [3.5, far_m], [0.0, far_m]]
    clicks = np.random.default_rng(seed).normal(0.0, click_px, (4, 2))
    image = [
        [px + dx, py + dy]
        for (px, py), (dx, dy) in zip((project(x, y) for x, y in ground), clicks, strict=True)
    ]
    return make_scene(
        resolution=[1280, 720],
        stop_lines=None,
        lights=None,
        speed={"image_points": image, "ground_points_m": ground, "limits_kmh": {"car": 50}, **speed},
    )


def engine(scene: Scene) -> RuleEngine:
    return RuleEngine(scene, rules=["speeding"])


INSTALLS = 150


@pytest.mark.parametrize(
    ("kmh", "from_m", "to_m"),
    [
        pytest.param(53.0, 18.0, 30.0, id="53kmh_18-30m"),
        pytest.param(53.0, 22.0, 37.0, id="53kmh_22-37m"),
        pytest.param(68.0, 22.0, 37.0, id="68kmh_22-37m"),
    ],
)
def test_no_fine_rests_on_an_extrapolated_calibration(kmh: float, from_m: float, to_m: float) -> None:
    """The reviewer's far field: calibrated on a 6 m patch 12-18 m ahead, measured beyond it. A car at
    53 km/h (limit 50, under the 5 km/h margin) was fined in 3 and 15 of these 150 installs, and a car
    at 68 km/h got a lower bound above its true speed in 24 (up to 78.7 km/h, in the fine band above
    its own for some). Nothing is measured beyond the patch now."""
    fineable = kmh >= 55.0
    wrong = []
    for seed in range(INSTALLS):
        scene = install(18.0, seed, zone=APPROACH)
        for ev in run(engine(scene), [along_road(1, kmh, seed=seed, from_m=from_m, to_m=to_m)], fps=25.0):
            if not fineable or ev.details["lower_bound_kmh"] > kmh:
                wrong.append((seed, ev.details["speed_kmh"], ev.details["lower_bound_kmh"]))
    assert wrong == []


@pytest.mark.parametrize("towards", [False, True], ids=["away", "towards"])
def test_speeding_inside_a_well_spread_calibration_is_fined(towards: bool) -> None:
    """Points spread over the measured stretch (12-45 m), clicked 2 px off, zone drawn a little larger:
    a car at 80 km/h (30 over) is fined in every install, its lower bound under its speed."""
    for seed in range(20):
        events = run(
            engine(install(45.0, seed, zone=APPROACH)),
            [along_road(1, 80.0, towards, seed, 13.0, 44.0)],
            fps=25.0,
        )
        assert rules_of(events) == ["speeding"], seed
        assert events[0].details["speed_kmh"] == pytest.approx(80.0, rel=0.1)
        assert 55.0 < events[0].details["lower_bound_kmh"] < 80.0


def test_a_vehicle_is_measured_while_it_is_among_the_points() -> None:
    """Calibrated 12-30 m ahead, zone over the approach: a car at 80 km/h driving away from 12 m to 45 m
    is fined from its positions among the points (by the time it is 30 m ahead)."""
    v = 80.0 / 3.6
    for seed in range(10):
        events = run(
            engine(install(30.0, seed, zone=APPROACH)),
            [along_road(1, 80.0, False, seed, 12.0, 45.0)],
            fps=25.0,
        )
        assert rules_of(events) == ["speeding"], seed
        assert 12.0 + v * events[0].ts <= 30.0 + v * 0.05  # one frame of slack
        assert events[0].details["lower_bound_kmh"] < 80.0


def in_lane(across_m: float, kmh: float, seed: int, from_m: float, to_m: float) -> Drive:
    """A car driving away from the camera `across_m` from the calibrated lane's left edge, its box edges
    jittered by 1 px (as `along_road`, which keeps to the calibrated lane's middle)."""
    v = kmh / 3.6
    rng = np.random.default_rng(seed)

    def box(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        noise = rng.normal(0.0, 1.0, 4)
        x1, y1, x2, y2 = upright_box(across_m, from_m + v * t, 1.8, 1.5)
        return x1 + noise[0], y1 + noise[1], x2 + noise[2], y2 + noise[3]

    return Drive(1, [(0.0, 0.0, 0.0), ((to_m - from_m) / v, 0.0, 0.0)], "car", box_fn=box)


def test_a_lane_beside_the_calibrated_one_is_not_measured() -> None:
    """Calibrated on one lane (0-3.5 m across, 12-40 m ahead), zone over the whole road: a car in the
    next lane is beyond the points too. Sideways, one lane out, 2 px clicks raised the p95 speed error
    from 4.6 % to 6-7 % and gave lower bounds above the true speed; it is not measured there."""
    for seed in range(5):
        scene = install(40.0, seed, zone=APPROACH)
        assert run(engine(scene), [in_lane(-1.75, 80.0, seed, 13.0, 39.0)], fps=25.0) == [], seed
        assert rules_of(run(engine(scene), [in_lane(1.75, 80.0, seed, 13.0, 39.0)], fps=25.0)) == ["speeding"]


# --- scene check ----------------------------------------------------------------------------------


def speed_warnings(scene: Scene) -> list[str]:
    """The warnings about where the calibration holds."""
    return [w for w in check_scene(scene) if w.startswith(("speed zone", "speed calibration"))]


def test_scene_check_warns_about_a_zone_beyond_the_calibration_points() -> None:
    warnings = speed_warnings(install(18.0, 0, zone=APPROACH))
    beyond = [w for w in warnings if w.startswith("speed zone reaches")]
    assert len(beyond) == 1
    assert (
        "beyond the calibration points" in beyond[0]
        and "place ground points over the whole stretch" in beyond[0]
    )


def test_scene_check_is_quiet_about_a_zone_among_the_points() -> None:
    scene = install(45.0, 0, click_px=0.0)
    assert speed_warnings(scene) == []  # the default zone: the points' outline
    assert scene.speed is not None
    corners = [list(p) for p in scene.speed.image_points]
    # The same corners clicked again a pixel or so off (the zone drawn on the same marks), and a
    # smaller zone.
    again = [[round(x) + 0.8, round(y) + 0.8] for x, y in corners]
    centre = np.mean(corners, axis=0)
    smaller = [list(centre + 0.8 * (np.asarray(p) - centre)) for p in corners]
    for zone in (again, smaller):
        assert speed_warnings(install(45.0, 0, click_px=0.0, zone=zone)) == []


@pytest.mark.parametrize(("far_m", "warned"), [(18.0, True), (24.0, True), (30.0, False), (45.0, False)])
def test_scene_check_warns_about_points_too_close_together(far_m: float, warned: bool) -> None:
    """A vehicle at 90 km/h (limit 50 + 40) must stay among the points for the 0.7 s a measurement
    needs: 17.5 m. A 6 m patch (7 m corner to corner) lets no vehicle faster than 36 km/h be measured."""
    warnings = [w for w in speed_warnings(install(far_m, 0, click_px=0.0)) if "span at most" in w]
    assert bool(warnings) is warned
    if far_m == 18.0:
        assert warnings[0].startswith(
            "speed calibration points span at most 6.9 m: a vehicle faster than 36 km/h"
        )
