"""The engine's `rigid` check (`Batch.rigid`) on a camera that looks along the road.

Near such a camera a vehicle's box does not move as a whole: its bottom and width follow the near end
of the vehicle, its top the far edge of the roof, which perspective scales less (a truck's box top
hardly moves while its bottom crosses the image). The box changes by a translation plus a scale, the
height up to 40 % more than the width (in logarithms). An occluder the detector misses, covering or
uncovering the bottom edge, changes the height and not the width, and with a speed calibration the
bottom's distance then changes more (or less) than the width says.

Vehicles here are boxes of 3D blocks (length x width x height) projected through pinhole cameras, or
flat upright rectangles (`test_rules_speed_perspective.upright_box`) whose lower part an occluder hides,
each edge jittered by 1 px unless said otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from tests.violations import Drive, make_scene, moving, rules_of, run
from tests.violations.test_rules_speed import engine as top_down_engine
from tests.violations.test_rules_speed import px_per_s
from tests.violations.test_rules_speed_perspective import engine as oblique_engine
from tests.violations.test_rules_speed_perspective import upright_box
from violations.rules import RuleEngine
from violations.scene import Scene

F_PX, CX, CY, WIDTH, HEIGHT = 1000.0, 640.0, 360.0, 1280, 720
Project = Callable[[np.ndarray], np.ndarray]

#: length, width, height in metres, and detector class.
VEHICLES = {"car": ((4.5, 1.8, 1.5), "car"), "truck": ((8.0, 2.5, 3.2), "truck")}


def camera(height_m: float, pitch_deg: float, yaw_deg: float) -> Project:
    """Pinhole camera `height_m` above the road, pitched down, turned `yaw_deg` from the road's
    direction: (N, 3) road points (across, ahead, up; metres) → (N, 2) pixels."""
    p, y = math.radians(pitch_deg), math.radians(yaw_deg)

    def project(points: np.ndarray) -> np.ndarray:
        across, ahead, up = points[:, 0], points[:, 1], points[:, 2]
        x_r = across * math.cos(y) - ahead * math.sin(y)
        z_r = across * math.sin(y) + ahead * math.cos(y)
        down = (height_m - up) * math.cos(p) - z_r * math.sin(p)
        depth = (height_m - up) * math.sin(p) + z_r * math.cos(p)
        return np.stack([CX + F_PX * x_r / depth, CY + F_PX * down / depth], axis=1)

    return project


def block_box(project: Project, ahead_m: float, size_m: tuple[float, float, float], away: bool) -> np.ndarray:
    """Box of a block in the lane's middle (1.75 m across) whose nearer end is `ahead_m` ahead."""
    length, width, height = size_m
    ends = (ahead_m, ahead_m + length) if away else (ahead_m - length, ahead_m)
    corners = np.array(
        [[x, a, z] for x in (1.75 - width / 2, 1.75 + width / 2) for a in ends for z in (0, height)]
    )
    q = project(corners)
    return np.array([q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()])


def speed_scene(project: Project) -> Scene:
    """Calibrated exactly on a 5.5 m x 38 m rectangle 12-50 m ahead; limit 50 for cars and trucks."""
    ground = [[-1.0, 12.0], [4.5, 12.0], [4.5, 50.0], [-1.0, 50.0]]
    image = project(np.array([[x, a, 0.0] for x, a in ground]))
    return make_scene(
        resolution=[WIDTH, HEIGHT],
        stop_lines=None,
        lights=None,
        speed={
            "image_points": image.tolist(),
            "ground_points_m": ground,
            "limits_kmh": {"car": 50, "truck": 50},
            "zone": [[0, 0], [WIDTH, 0], [WIDTH, HEIGHT], [0, HEIGHT]],
        },
    )


def along_road(project: Project, vehicle: str, kmh: float, away: bool, seed: int) -> Drive:
    """A vehicle driving through 12-48 m ahead of the camera (away, or towards it), while its whole
    box is in the frame."""
    size, cls = VEHICLES[vehicle]
    v = kmh / 3.6
    duration = 36.0 / v

    def ahead(t: float) -> float:
        return 12.0 + v * t if away else 48.0 - v * t

    def inside(t: float) -> bool:
        x1, y1, x2, y2 = block_box(project, ahead(t), size, away)
        return bool(x1 >= 0 and y1 >= 0 and x2 <= WIDTH and y2 <= HEIGHT)

    frames = [k / 25.0 for k in range(int(duration * 25.0) + 1)]
    seen = [t for t in frames if inside(t)]
    rng = np.random.default_rng(seed)

    def box(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = block_box(project, ahead(t), size, away) + rng.normal(0.0, 1.0, 4)
        return float(x1), float(y1), float(x2), float(y2)

    return Drive(1, [(seen[0], 0.0, 0.0), (seen[-1], 0.0, 0.0)], cls, box_fn=box)


@pytest.mark.parametrize("yaw_deg", [0.0, 25.0], ids=["along", "25deg"])
@pytest.mark.parametrize("vehicle", ["car", "truck"])
@pytest.mark.parametrize("away", [True, False], ids=["away", "towards"])
@pytest.mark.parametrize("kmh", [60.0, 80.0])
def test_a_speeder_near_a_camera_looking_along_the_road_is_fined(
    kmh: float, away: bool, vehicle: str, yaw_deg: float
) -> None:
    """Camera 6 m up, pitched 12° down. The box's top lagged its bottom, so the engine took the box
    for one changing shape: a car driving away at 60 km/h was fined in 9 of 10 seeded runs (5 of 10
    with the camera turned 25°), a truck at 60 or 80 km/h in 0 of 10, either way."""
    project = camera(6.0, 12.0, yaw_deg)
    scene = speed_scene(project)
    for seed in range(4):
        drive = along_road(project, vehicle, kmh, away, seed)
        events = run(RuleEngine(scene, rules=["speeding"]), [drive], fps=25.0)
        assert rules_of(events) == ["speeding"], seed
        assert kmh - 8.0 < events[0].details["speed_kmh"] < kmh + 3.0


@pytest.mark.parametrize("vehicle", ["car", "truck"])
@pytest.mark.parametrize("away", [True, False], ids=["away", "towards"])
def test_a_vehicle_at_the_limit_along_the_road_is_not_fined(vehicle: str, away: bool) -> None:
    """Measured now where it was not before (trucks), and still never fined at the limit."""
    project = camera(6.0, 12.0, 0.0)
    scene = speed_scene(project)
    for seed in range(10):
        drive = along_road(project, vehicle, 50.0, away, seed)
        assert run(RuleEngine(scene, rules=["speeding"]), [drive], fps=25.0) == [], seed


def covered(
    kmh: float,
    away: bool,
    ahead_m: float,
    size_m: tuple[float, float],
    hidden: float,
    over_s: float,
    seed: int,
) -> Drive:
    """A car-class flat box (`size_m` wide x high) driving away from `ahead_m` (or towards the camera
    from 40 m), whose lower part an occluder the detector misses covers from 0.6 s on: `hidden` of its
    height after `over_s` seconds, and from then on."""
    v = kmh / 3.6
    rng = np.random.default_rng(seed)
    start_s = 0.6
    duration = 2.5 if away else 30.0 / v

    def box(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = upright_box(1.75, ahead_m + v * t if away else 40.0 - v * t, *size_m)
        part = 0.0 if t < start_s else hidden * min(1.0, (t - start_s) / over_s)
        noise = rng.normal(0.0, 1.0, 4)
        return x1 + noise[0], y1 + noise[1], x2 + noise[2], y2 - part * (y2 - y1) + noise[3]

    return Drive(1, [(0.0, 0.0, 0.0), (duration, 0.0, 0.0)], "car", box_fn=box)


@pytest.mark.parametrize("kmh", [45.0, 50.0])
@pytest.mark.parametrize("away", [True, False], ids=["away", "towards"])
def test_a_bottom_edge_covered_by_an_unseen_occluder_is_not_speed(kmh: float, away: bool) -> None:
    """Limit 50: none of these is fineable. The covered bottom slides up the image faster (driving
    away) or slower, even backwards (towards), than the vehicle drives; in a window that holds it, the
    speed fit reads up to 35 % more. Were fined: away at 50 km/h in 3 of the 360 runs (at 45 in none,
    but only because trucks were never measured near this camera), towards at 45 km/h in 10 of 120,
    at 50 in 17 of 120."""
    fined = []
    starts = (14.0, 20.0, 28.0) if away else (0.0,)
    for ahead_m in starts:
        for size_m in ((1.8, 1.5), (2.5, 3.2)):
            for hidden in (0.1, 0.2, 0.3, 0.5):
                for over_s in (0.3, 0.6, 1.0):
                    for seed in range(5):
                        drive = covered(kmh, away, ahead_m, size_m, hidden, over_s, seed)
                        if run(oblique_engine(), [drive], fps=25.0):
                            fined.append((ahead_m, size_m, hidden, over_s, seed))
    assert fined == []


def test_a_car_whose_bottom_third_is_covered_at_the_limit_is_not_fined() -> None:
    """The gap the old check left: a car at 50 km/h, 14 m ahead driving away, its bottom 30 % covered
    over 0.6 s. Its top edge still moved with the bottom, within half the motion: fined in 3 of 5
    seeded runs."""
    for seed in range(5):
        assert run(oblique_engine(), [covered(50.0, True, 14.0, (1.8, 1.5), 0.3, 0.6, seed)], fps=25.0) == []


@pytest.mark.parametrize(("fps", "along"), [(30.0, False), (10.0, False), (30.0, True)])
@pytest.mark.parametrize(("cls", "kmh", "size"), [("car", 70.0, (60, 40)), ("motorcycle", 60.0, (30, 50))])
def test_box_jitter_costs_no_speeder_on_a_top_down_calibration(
    cls: str, kmh: float, size: tuple[int, int], fps: float, along: bool
) -> None:
    """3 px of box jitter (1 sigma, each edge), driving across the image or along it (down). The road
    plane's depth does not change across a top-down view: only the box's own shape is checked, as
    before. (Not along it at 10 fps: the 360 px of calibrated area leave too few observations for a
    lower bound over the fine threshold now and then, whatever the check.)"""
    v = px_per_s(kmh)
    for seed in range(10):
        if along:
            drive = moving(
                1, (320.0, 60.0), (0.0, v), 0.0, 440.0 / v, cls=cls, size=size, jitter=3.0, seed=seed
            )
        else:
            drive = moving(
                1, (60.0, 300.0), (v, 0.0), 0.0, 560.0 / v, cls=cls, size=size, jitter=3.0, seed=seed
            )
        assert rules_of(run(top_down_engine(), [drive], fps=fps)) == ["speeding"], seed


@pytest.mark.parametrize("kmh", [20.0, 40.0])
def test_a_truck_driving_the_wrong_way_towards_the_camera_is_reported(kmh: float) -> None:
    """Wrong way holds while the box is not rigid: a truck coming up a one-way road towards a camera
    6 m up looking along it was never reported (0 of 5 seeded runs), a car always."""
    project = camera(6.0, 12.0, 0.0)
    ground = np.array([[-1.0, 14.0, 0.0], [4.5, 14.0, 0.0], [4.5, 40.0, 0.0], [-1.0, 40.0, 0.0]])
    zone = {"id": "ow", "polygon": project(ground).tolist(), "direction": "up"}
    scene = make_scene(resolution=[WIDTH, HEIGHT], stop_lines=None, lights=None, wrong_way_zones=[zone])
    for vehicle in ("car", "truck"):
        for seed in range(5):
            drive = along_road(project, vehicle, kmh, False, seed)
            events = run(RuleEngine(scene, rules=["wrong_way"]), [drive], fps=10.0)
            assert rules_of(events) == ["wrong_way"], (vehicle, seed)
