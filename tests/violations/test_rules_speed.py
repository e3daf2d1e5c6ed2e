"""Speeding: homography, the speed fit and its uncertainty, and tickets only beyond doubt."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.violations import Drive, make_scene, moving, rules_of, run
from violations.rules import RuleEngine, estimate_speed
from violations.scene import SpeedCalibration

# A road seen straight from above: 0.05 m per pixel in both directions.
SPEED: dict[str, Any] = {
    "image_points": [[100, 100], [540, 100], [540, 460], [100, 460]],
    "ground_points_m": [[0, 0], [22, 0], [22, 18], [0, 18]],
    "limits_kmh": {"car": 50, "motorcycle": 40},
}
M_PER_PX = 0.05


def px_per_s(kmh: float) -> float:
    return kmh / 3.6 / M_PER_PX


def engine(**speed: Any) -> RuleEngine:
    return RuleEngine(make_scene(speed={**SPEED, **speed}), rules=["speeding"])


def crossing(kmh: float, cls: str = "car", jitter: float = 0.0, seed: int = 0) -> Drive:
    """Drives left to right across the calibrated area at `kmh`."""
    v = px_per_s(kmh)
    return moving(
        1, (60.0, 300.0), (v, 0.0), 0.0, 560.0 / v, cls=cls, size=(60, 40), jitter=jitter, seed=seed
    )


CASES = [
    # (id, km/h, class, box jitter px, expected rules)
    ("car_80_in_50", 80.0, "car", 1.0, ["speeding"]),
    ("car_45_in_50", 45.0, "car", 1.0, []),
    ("car_53_in_50_under_the_5kmh_margin", 53.0, "car", 0.0, []),
    ("car_70_in_50_noisy", 70.0, "car", 3.0, ["speeding"]),
    ("motorbike_60_in_40", 60.0, "motorcycle", 1.0, ["speeding"]),
    ("bicycle_not_limited", 60.0, "bicycle", 1.0, []),
]


@pytest.mark.parametrize(
    ("kmh", "cls", "jitter", "expected"), [pytest.param(k, c, j, e, id=n) for n, k, c, j, e in CASES]
)
def test_speeding(kmh: float, cls: str, jitter: float, expected: list[str]) -> None:
    events = run(engine(), [crossing(kmh, cls, jitter)], fps=30.0)
    assert rules_of(events) == expected


def test_no_ticket_when_the_lower_bound_is_under_the_limit() -> None:
    """57 km/h measured through heavy box noise: the estimate is over 55, its lower bound is not."""
    drive = crossing(57.0, jitter=6.0, seed=11)
    assert run(engine(), [drive], fps=30.0) == []
    # The same speed with a clean track and no calibration doubt is a ticket.
    assert rules_of(run(engine(scale_error=0.0), [crossing(62.0, seed=11)], fps=30.0)) == ["speeding"]


def test_speeding_event_contents() -> None:
    (ev,) = run(engine(), [crossing(80.0, jitter=1.0)], fps=30.0)
    d = ev.details
    assert d["speed_kmh"] == pytest.approx(80.0, abs=1.5)
    assert d["lower_bound_kmh"] < d["speed_kmh"] < d["upper_bound_kmh"]
    assert d["limit_kmh"] == 50
    assert d["excess_kmh"] == pytest.approx(d["lower_bound_kmh"] - 50, abs=0.01)
    # Lower bound ≈ 80 · 0.97 = 77.6 → more than 20 over 50: the 20–35 km/h band of Điều 6.
    assert ev.legal_reference == "Điểm a khoản 6 Điều 6 Nghị định 168/2024/NĐ-CP"
    assert d["legal"]["licence_points"] == 4


def test_motorbike_band() -> None:
    (ev,) = run(engine(), [crossing(60.0, "motorcycle", 1.0)], fps=30.0)
    # Lower bound ≈ 58 → 18 over 40: the 10–20 km/h band of Điều 7.
    assert ev.legal_reference == "Điểm a khoản 4 Điều 7 Nghị định 168/2024/NĐ-CP"


def test_speed_outside_the_calibrated_area_is_not_measured() -> None:
    fast_elsewhere = moving(1, (0.0, 40.0), (px_per_s(90.0), 0.0), 0.0, 1.5, cls="car", size=(60, 30))
    assert run(engine(), [fast_elsewhere], fps=30.0) == []


CAL = SpeedCalibration.model_validate(SPEED)


@pytest.mark.parametrize("kmh", [20.0, 50.0, 90.0])
def test_estimate_speed_exact_motion(kmh: float) -> None:
    t = np.arange(0, 1.0, 1 / 30)
    v = kmh / 3.6
    ground = np.stack([3.0 + v * t, np.full_like(t, 7.0)], axis=1)
    est = estimate_speed(t, ground, np.full(len(t), 0.1), CAL)
    assert est is not None
    assert est.speed_kmh == pytest.approx(kmh, rel=1e-9)
    assert est.lower_kmh < kmh < est.upper_kmh
    assert est.n_points == 30


def test_estimate_speed_uncertainty_grows_with_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(0, 1.0, 1 / 30)
    clean = np.stack([15.0 * t, np.zeros_like(t)], axis=1)
    noisy = clean + rng.normal(0, 0.3, clean.shape)
    a = estimate_speed(t, clean, np.full(len(t), 0.05), CAL)
    b = estimate_speed(t, noisy, np.full(len(t), 0.05), CAL)
    assert a is not None and b is not None
    assert b.se_kmh > 2 * a.se_kmh


@pytest.mark.parametrize(
    ("n", "span"),
    [(3, 1.0), (30, 0.3)],
)
def test_estimate_speed_needs_enough_points_and_time(n: int, span: float) -> None:
    t = np.linspace(0, span, n)
    ground = np.stack([10.0 * t, np.zeros_like(t)], axis=1)
    assert estimate_speed(t, ground, np.full(n, 0.1), CAL) is None


@pytest.mark.parametrize("hidden_px", [60.0, 90.0])
def test_a_bottom_edge_uncovered_by_a_leaving_occluder_is_not_speed(hidden_px: float) -> None:
    """A car at 45 km/h (limit 50) whose box bottom slides down over 0.5 s as the vehicle in front of
    it pulls away, a few pixels a frame (never a jump): the box grew, the car did not speed up."""
    v = px_per_s(45.0)
    t_a, t_b = 0.3, 0.8

    def box(t: float, x: float, y: float) -> tuple[float, float, float, float]:
        hidden = hidden_px if t < t_a else max(0.0, hidden_px * (1 - (t - t_a) / (t_b - t_a)))
        return (x - 30.0, y - 90.0, x + 30.0, y - hidden)

    y0 = 100.0 + hidden_px + 2.0
    duration = (450.0 - y0) / v
    clean = Drive(1, [(0.0, 320.0, y0), (duration, 320.0, y0 + duration * v)], "car", size=(60, 90))
    uncovered = Drive(1, clean.waypoints, "car", size=(60, 90), box_fn=box)
    assert run(engine(), [clean], fps=30.0) == []
    assert run(engine(), [uncovered], fps=30.0) == []
