"""Speeding on a camera that looks along the road (the usual enforcement view), not from above.

A pinhole camera 6 m above the road, pitched 12° down, f = 1000 px, 1280x720, calibrated exactly on
a 3.5 m x 30 m rectangle 10-40 m ahead. Vehicles are flat upright boxes (width x height) standing on
the road, projected through the same camera, with box jitter; a metre along the road is 3-30 pixels
here, a metre across it 25-100.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tests.violations import Drive, make_scene, rules_of, run
from violations import geometry
from violations.rules import RuleEngine
from violations.rules.speed import MAX_STEP_Z, estimate_speed, upright_size_m
from violations.scene import Scene, SpeedCalibration

F_PX, CX, CY, CAMERA_M, PITCH = 1000.0, 640.0, 360.0, 6.0, math.radians(12.0)


def project(x_m: float, y_m: float, z_m: float = 0.0) -> tuple[float, float]:
    """Pixel of a road point `x_m` across, `y_m` ahead of the camera's foot, `z_m` above the road."""
    yc = (CAMERA_M - z_m) * math.cos(PITCH) - y_m * math.sin(PITCH)
    depth = (CAMERA_M - z_m) * math.sin(PITCH) + y_m * math.cos(PITCH)
    return CX + F_PX * x_m / depth, CY + F_PX * yc / depth


GROUND = [[0.0, 10.0], [3.5, 10.0], [3.5, 40.0], [0.0, 40.0]]


def oblique_scene(**speed: Any) -> Scene:
    return make_scene(
        resolution=[1280, 720],
        stop_lines=None,
        lights=None,
        speed={
            "image_points": [list(project(x, y)) for x, y in GROUND],
            "ground_points_m": GROUND,
            "limits_kmh": {"car": 50, "motorcycle": 50},
            **speed,
        },
    )


def engine() -> RuleEngine:
    return RuleEngine(oblique_scene(), rules=["speeding"])


def upright_box(x_m: float, y_m: float, width_m: float, height_m: float) -> tuple[float, float, float, float]:
    """Box of an upright `width_m` x `height_m` rectangle standing across the road at (x_m, y_m)."""
    left, bottom = project(x_m - width_m / 2, y_m)
    right, _ = project(x_m + width_m / 2, y_m)
    _, top = project(x_m, y_m, height_m)
    return left, top, right, bottom


def along_road(
    tid: int,
    kmh: float,
    towards: bool = False,
    seed: int = 0,
    from_m: float = 10.0,
    to_m: float = 40.0,
    cls: str = "car",
    size_m: tuple[float, float] = (1.8, 1.5),
    jitter: float = 1.0,
) -> Drive:
    """A vehicle in the middle of the calibrated lane driving from `from_m` to `to_m` ahead of the
    camera (or back, `towards`), at `kmh`, its box edges jittered by `jitter` pixels (1 sigma)."""
    v = kmh / 3.6
    duration = (to_m - from_m) / v
    rng = np.random.default_rng(seed)

    def box(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        ahead = to_m - v * t if towards else from_m + v * t
        noise = rng.normal(0.0, jitter, 4)
        x1, y1, x2, y2 = upright_box(1.75, ahead, *size_m)
        return x1 + noise[0], y1 + noise[1], x2 + noise[2], y2 + noise[3]

    # The waypoints only say when the vehicle is in view; `box` places it.
    return Drive(tid, [(0.0, 0.0, 0.0), (duration, 0.0, 0.0)], cls, box_fn=box)


def test_min_scale_is_the_unforeshortened_scale() -> None:
    """Top-down, both local scales are the same; looking along the road, the smallest is the scale
    across it (metres per pixel of a lateral step) and the largest the one along it."""
    top_down = geometry.fit_homography(
        [[0, 0], [100, 0], [100, 100], [0, 100]], [[0, 0], [5, 0], [5, 5], [0, 5]]
    )
    probe = np.array([[30.0, 70.0]])
    assert geometry.homography_min_scale(top_down, probe)[0] == pytest.approx(0.05)
    assert geometry.homography_scale(top_down, probe)[0] == pytest.approx(0.05)

    h = oblique_scene().speed.homography  # type: ignore[union-attr]
    for ahead in (12.0, 25.0, 38.0):
        foot = np.array([project(1.75, ahead)])
        across = 1.0 / (project(2.75, ahead)[0] - foot[0, 0])
        along = 1.0 / (foot[0, 1] - project(1.75, ahead + 1.0)[1])
        assert geometry.homography_min_scale(h, foot)[0] == pytest.approx(across, rel=0.02)
        assert geometry.homography_scale(h, foot)[0] == pytest.approx(along, rel=0.1)


def test_a_vehicle_keeps_its_size_in_metres_along_the_road() -> None:
    """The defect: box height times the LARGEST local scale grew in proportion to the distance (1.5 to
    2.8 times within a 1 s window here), so the 25 % size-change check rejected every window of a
    vehicle driving towards or away from the camera. By the unforeshortened scale it keeps its size."""
    h = oblique_scene().speed.homography  # type: ignore[union-attr]
    boxes = np.array([upright_box(1.75, ahead, 1.8, 1.5) for ahead in (12.0, 20.0, 30.0, 40.0)])
    size = upright_size_m(h, boxes)
    assert size.max() / size.min() < 1.1  # from 12 to 40 m; the check allows 25 % within 1 s
    assert size == pytest.approx(np.full(4, 1.5), rel=0.1)
    bottoms = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
    old = (boxes[:, 3] - boxes[:, 1]) * geometry.homography_scale(h, bottoms)
    assert old[-1] / old[0] > 2.5


@pytest.mark.parametrize("towards", [False, True], ids=["away", "towards"])
@pytest.mark.parametrize("kmh", [60.0, 80.0, 100.0])
def test_speeding_along_the_road_is_fined(kmh: float, towards: bool) -> None:
    """Used to be fined in 0 of 20 seeded runs at every speed, both ways."""
    for seed in range(5):
        events = run(engine(), [along_road(1, kmh, towards, seed)], fps=25.0)
        assert rules_of(events) == ["speeding"], seed
        assert events[0].details["speed_kmh"] == pytest.approx(kmh, rel=0.03)
        assert events[0].details["lower_bound_kmh"] < kmh


@pytest.mark.parametrize("towards", [False, True], ids=["away", "towards"])
def test_a_car_at_the_limit_is_never_fined(towards: bool) -> None:
    fined = sum(bool(run(engine(), [along_road(1, 50.0, towards, seed)], fps=25.0)) for seed in range(20))
    assert fined == 0


def swapped(
    near_from_m: float, gap_m: float, swap_s: float, kmh: float, seed: int, cls: str = "motorcycle"
) -> list[Drive]:
    """Two vehicles `gap_m` apart in one lane drive away from the camera at `kmh`. Track 1 follows the
    nearer one until `swap_s`, then the tracker puts id 1 on the one ahead, and the nearer one is not
    detected again (its box merged with the other's in the detector's NMS)."""
    size = (0.8, 1.5) if cls == "motorcycle" else (1.8, 1.5)
    near = along_road(1, kmh, seed=seed, from_m=near_from_m, cls=cls, size_m=size)
    ahead = along_road(2, kmh, seed=seed + 1000, from_m=near_from_m + gap_m, cls=cls, size_m=size)
    assert near.box_fn is not None and ahead.box_fn is not None
    near_box, ahead_box = near.box_fn, ahead.box_fn

    def track_1(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        return near_box(t, x, y) if t < swap_s else ahead_box(t, x, y)

    end = min(near.waypoints[-1][0], ahead.waypoints[-1][0])
    return [
        Drive(1, [(0.0, 0.0, 0.0), (end, 0.0, 0.0)], cls, box_fn=track_1),
        Drive(2, [(0.0, 0.0, 0.0), (swap_s - 1e-3, 0.0, 0.0)], cls, box_fn=ahead_box),
    ]


@pytest.mark.parametrize(
    ("near_from_m", "gap_m", "swap_s", "kmh"),
    [
        # Too few pixels apart for the engine's jump check: a metre along the road is 4-10 px there.
        pytest.param(16.0, 3.0, 0.8, 50.0, id="3m_apart_at_26m"),
        pytest.param(20.0, 3.0, 0.5, 45.0, id="3m_apart_at_26m_slower"),
        pytest.param(12.0, 2.0, 0.5, 50.0, id="2m_apart_at_18m"),
        # Far apart: a jump in pixels too.
        pytest.param(12.0, 12.0, 0.8, 45.0, id="12m_apart"),
    ],
)
def test_an_id_swap_to_the_vehicle_ahead_is_not_speed(
    near_from_m: float, gap_m: float, swap_s: float, kmh: float
) -> None:
    """The window that holds the swap holds a step of `gap_m` in road position: over 1 s that reads
    as 9-20 km/h more than the vehicles drive. Such a window is not measured."""
    for seed in range(4):
        assert run(engine(), swapped(near_from_m, gap_m, swap_s, kmh, seed), fps=25.0) == [], seed


def test_a_bottom_edge_uncovered_along_the_road_is_not_speed() -> None:
    """A car at 45 km/h coming towards the camera, its lower part hidden by the vehicle in front,
    which pulls away over 0.6 s: the box's bottom slides down the image faster than the car (the
    box grows), which reads as faster driving towards the camera."""
    v = 45.0 / 3.6
    rng = np.random.default_rng(3)
    t_a, t_b = 0.4, 1.0

    def box(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = upright_box(1.75, 38.0 - v * t, 1.8, 1.5)
        hidden = 0.6 if t < t_a else max(0.0, 0.6 * (1 - (t - t_a) / (t_b - t_a)))
        noise = rng.normal(0.0, 1.0, 4)
        return x1 + noise[0], y1 + noise[1], x2 + noise[2], y2 - hidden * (y2 - y1) + noise[3]

    drive = Drive(1, [(0.0, 0.0, 0.0), (2.0, 0.0, 0.0)], "car", box_fn=box)
    assert run(engine(), [drive], fps=25.0) == []


@pytest.mark.parametrize(
    ("step_m", "at_s", "over"),
    [(0.0, 0.5, False), (1.0, 0.5, True), (1.0, 0.15, True), (1.0, 0.85, True), (0.15, 0.5, False)],
)
def test_step_z_finds_a_sudden_shift_of_position(step_m: float, at_s: float, over: bool) -> None:
    """15 m/s along y with 0.1 m of noise (and 0.1 m assumed), plus a shift of `step_m` at `at_s`."""
    cal = SpeedCalibration.model_validate(
        {"image_points": GROUND, "ground_points_m": GROUND, "limits_kmh": {"car": 50}}
    )
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 1.0, 1 / 25)
    y = 15.0 * t + step_m * (t >= at_s) + rng.normal(0.0, 0.1, len(t))
    ground = np.stack([np.full_like(t, 1.75) + rng.normal(0.0, 0.1, len(t)), y], axis=1)
    est = estimate_speed(t, ground, np.full(len(t), 0.1), cal)
    assert est is not None
    assert (est.step_z > MAX_STEP_Z) is over
