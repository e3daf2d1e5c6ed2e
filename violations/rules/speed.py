"""Speeding: road-plane speed from a calibrated homography, reported only beyond reasonable doubt.

Each observed bottom-centre inside the measurement zone is mapped to road-plane metres. Over the last
``window_s`` the speed is the slope of a least-squares line through x(t) and y(t). Its uncertainty
combines

- the fit's own standard error (residual scatter: box jumps, curved paths),
- the assumed position noise of ``position_noise_px`` pixels, turned into metres with the local scale
  of the homography and counted as if consecutive frames closer than `DECORRELATION_S` were one
  sample (box jitter is not independent from frame to frame), and
- the calibration's relative scale error.

A violation needs the lower bound, ``(v - z·se)·(1 - scale_error)``, to exceed the class's limit by
``min_excess_kmh`` (the decree starts at 5 km/h over); the fine band follows from that lower bound.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from violations.legal import speeding_reference
from violations.rules.base import Batch, SignalBook, make_event, r2
from violations.scene import Scene, SpeedCalibration
from violations.types import RuleId, ViolationEvent

#: Observations closer in time than this are counted as one independent sample of position noise.
DECORRELATION_S = 0.2
#: Seconds between two evaluations of one vehicle's speed.
EVAL_EVERY_S = 0.2


@dataclass(frozen=True, slots=True)
class SpeedEstimate:
    """A speed measurement with its uncertainty (km/h)."""

    speed_kmh: float
    se_kmh: float
    lower_kmh: float
    upper_kmh: float
    window_s: float
    n_points: int


def estimate_speed(
    ts: np.ndarray,
    ground: np.ndarray,
    sigma_m: np.ndarray,
    calibration: SpeedCalibration,
) -> SpeedEstimate | None:
    """Speed over the given observations; None when there are too few or they span too little time.

    Args:
        ts: (N,) seconds.
        ground: (N, 2) road-plane positions, metres.
        sigma_m: (N,) position noise of each observation, metres (1 sigma).
        calibration: confidence level, scale error, minimum points.
    """
    n = len(ts)
    if n < max(calibration.min_points, 3):
        return None
    span = float(ts[-1] - ts[0])
    if span < 0.5 * calibration.window_s or span <= 0:
        return None
    tc = ts - ts.mean()
    stt = float(tc @ tc)
    xc = ground - ground.mean(axis=0)
    slope = (tc @ xc) / stt  # (2,) m/s
    resid = xc - np.outer(tc, slope)
    s2 = float((resid * resid).sum()) / (2 * (n - 2))  # pooled residual variance per axis
    se_fit = math.sqrt(s2 / stt)
    # Noise: as if only one sample per DECORRELATION_S were independent.
    n_eff = min(n, span / DECORRELATION_S + 1.0)
    stt_eff = stt * n_eff / n
    se_noise = math.sqrt(float(np.mean(sigma_m**2)) / stt_eff)
    se = math.hypot(se_fit, se_noise)
    v = 3.6 * float(np.hypot(slope[0], slope[1]))
    se_kmh = 3.6 * se
    z = calibration.confidence_z
    lower = max(0.0, (v - z * se_kmh) * (1.0 - calibration.scale_error))
    upper = (v + z * se_kmh) * (1.0 + calibration.scale_error)
    return SpeedEstimate(v, se_kmh, lower, upper, span, n)


@dataclass(slots=True)
class _Track:
    ts: deque[float] = field(default_factory=deque)
    gx: deque[float] = field(default_factory=deque)
    gy: deque[float] = field(default_factory=deque)
    sigma: deque[float] = field(default_factory=deque)
    size: deque[float] = field(default_factory=deque)  # box height in metres at its bottom's scale
    last_eval: float = -math.inf
    emitted: bool = False

    @property
    def window(self) -> tuple[deque[float], ...]:
        """The per-observation queues of the window, oldest first in each."""
        return (self.ts, self.gx, self.gy, self.sigma, self.size)

    def clear(self) -> None:
        """Forget the window (its positions are no evidence)."""
        for q in self.window:
            q.clear()


#: Largest ratio of a vehicle's box height (in metres, at its bottom's scale) between the start and the
#: end of one speed window; a rigid vehicle's changes only with perspective, a few per cent.
MAX_SIZE_CHANGE = 1.25


def _size_changed(size: deque[float]) -> bool:
    """The median box height of the window's last third differs from its first third's by more than
    `MAX_SIZE_CHANGE` (medians, so that box jitter does not count)."""
    n = len(size) // 3
    if n < 2:
        return False
    values = list(size)
    first, last = float(np.median(values[:n])), float(np.median(values[-n:]))
    lo, hi = sorted((first, last))
    return hi > MAX_SIZE_CHANGE * max(lo, 1e-6)


class SpeedingRule:
    """Speed above the class's limit, by the lower bound of the measurement."""

    rule_ids: tuple[RuleId, ...] = ("speeding",)

    def __init__(self, scene: Scene) -> None:
        if scene.speed is None:
            raise ValueError("the speeding rule needs a speed calibration in the scene")
        self.scene = scene
        self.cal: SpeedCalibration = scene.speed
        self._state: dict[int, _Track] = {}

    def forget(self, keys: set[int]) -> None:
        """Drop the state of vehicles that left."""
        for k in keys:
            self._state.pop(k, None)

    def process(self, batch: Batch, signals: SignalBook, now_ts: float) -> list[ViolationEvent]:
        """Events established by the rows of `batch`."""
        if batch.ground is None or batch.ground_scale is None:
            return []
        out: list[ViolationEvent] = []
        cal = self.cal
        inside = batch.inside["speed:zone"]
        for i in map(int, inside.nonzero()[0]):
            cls = batch.classes[i]
            limit = cal.limits_kmh.get(cls)  # type: ignore[call-overload]
            if limit is None:
                continue
            key = batch.keys[i]
            st = self._state.get(key)
            if st is None:
                st = self._state[key] = _Track()
            if st.emitted or batch.jump[i]:
                continue  # a box jump is not a position of this vehicle
            t = float(batch.ts[i])
            if not batch.rigid[i] or batch.occluded(i):
                # The bottom edge is hidden, or it slides as an occluder leaves (the box grows instead
                # of moving): not where the wheels are, and the positions before it were not either.
                st.clear()
                continue
            if st.ts and t - st.ts[-1] > self.scene.tolerances.max_gap_s:
                st.clear()
            st.ts.append(t)
            st.gx.append(float(batch.ground[i, 0]))
            st.gy.append(float(batch.ground[i, 1]))
            st.sigma.append(cal.position_noise_px * float(batch.ground_scale[i]))
            y1, y2 = batch.xyxy[i, 1], batch.xyxy[i, 3]
            st.size.append(float(y2 - y1) * float(batch.ground_scale[i]))
            while t - st.ts[0] > cal.window_s:
                for q in st.window:
                    q.popleft()
            if t - st.last_eval < EVAL_EVERY_S:
                continue
            st.last_eval = t
            if _size_changed(st.size):
                # The box changed shape within the window (an occluder uncovering its bottom edge a few
                # pixels a frame, too slowly to be a jump): its bottom did not move with the vehicle.
                continue
            est = estimate_speed(
                np.fromiter(st.ts, np.float64, len(st.ts)),
                np.stack([np.fromiter(st.gx, np.float64), np.fromiter(st.gy, np.float64)], axis=1),
                np.fromiter(st.sigma, np.float64, len(st.sigma)),
                cal,
            )
            if est is None or est.lower_kmh - limit < cal.min_excess_kmh:
                continue
            ref = speeding_reference(cls, est.lower_kmh - limit)
            if ref is None:
                continue
            st.emitted = True
            details = {
                "speed_kmh": r2(est.speed_kmh),
                "lower_bound_kmh": r2(est.lower_kmh),
                "upper_bound_kmh": r2(est.upper_kmh),
                "se_kmh": r2(est.se_kmh),
                "limit_kmh": limit,
                "excess_kmh": r2(est.lower_kmh - limit),
                "window_s": r2(est.window_s),
                "n_points": est.n_points,
            }
            out.append(make_event(self.scene, "speeding", ref, batch, i, st.ts[0], details))
        return out
