"""Speeding: road-plane speed from a calibrated homography, reported only beyond reasonable doubt.

Each observed bottom-centre inside the measurement zone is mapped to road-plane metres. Over the last
``window_s`` the speed is the slope of a least-squares line through x(t) and y(t). Its uncertainty
combines

- the fit's own standard error (residual scatter: box jumps, curved paths),
- the assumed position noise of ``position_noise_px`` pixels, turned into metres with the local scale
  of the homography and counted as if consecutive frames closer than `DECORRELATION_S` were one
  sample (box jitter is not independent from frame to frame), and
- the calibration's relative scale error.

A window is not measured when it holds something other than one vehicle driving steadily: a row
without a rigid, unoccluded box (the engine's checks) clears it; a box height in metres
(`upright_size_m`, the same wherever an upright vehicle stands) that changes by more than
`MAX_SIZE_CHANGE` within it, or a sudden step of road position (`step_z`, the tracker moving the id
to another vehicle a few metres away, which on a camera looking along the road is too few pixels for
the engine's jump check), skips it.

Only positions inside the calibration points' convex hull (`SpeedCalibration.calibrated_area`) are
measured, whatever the zone drawn: there the homography interpolates between points whose click
errors `scale_error` is meant to cover; beyond them it extrapolates, and the error of a distance grows
with how far from them it is (a 6 m patch clicked with 2 px errors read 30-45 m away gave lower bounds
up to 14 km/h above a car's true speed). The hull has no tolerance: a margin in pixels would be a few
centimetres of road near the camera and metres far from it.

A violation needs the lower bound, ``(v - z·se)·(1 - scale_error)``, to exceed the class's limit by
``min_excess_kmh`` (the decree starts at 5 km/h over); the fine band follows from that lower bound.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from violations import geometry
from violations.legal import speeding_reference
from violations.rules.base import Batch, SignalBook, make_event, r2
from violations.scene import SPEED_EVAL_EVERY_S, Scene, SpeedCalibration
from violations.types import RuleId, ViolationEvent

F64 = npt.NDArray[np.float64]

#: Observations closer in time than this are counted as one independent sample of position noise.
DECORRELATION_S = 0.2
#: Seconds between two evaluations of one vehicle's speed (`scene check` counts on it too).
EVAL_EVERY_S = SPEED_EVAL_EVERY_S
#: A window with a position step larger than this many standard errors (`step_z`) is not measured.
MAX_STEP_Z = 4.0
#: Observations on each side of a step that `step_z` looks for.
STEP_MIN_SIDE = 2


@dataclass(frozen=True, slots=True)
class SpeedEstimate:
    """A speed measurement with its uncertainty (km/h)."""

    speed_kmh: float
    se_kmh: float
    lower_kmh: float
    upper_kmh: float
    window_s: float
    n_points: int
    step_z: float  # the largest position step inside the window, in standard errors (see `step_z`)


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
    step = step_z(tc, resid, math.sqrt(float(np.mean(sigma_m**2))))
    return SpeedEstimate(v, se_kmh, lower, upper, span, n, step)


def step_z(tc: np.ndarray, resid: np.ndarray, sigma: float) -> float:
    """The largest sudden shift of position inside a window, in standard errors of the shift.

    For every split that leaves `STEP_MIN_SIDE` observations on each side, the least-squares size of a
    step between them added to the straight-line fit; its standard error follows from the position
    noise. Box jitter at the assumed noise gives 1-3 (above 4 in about 1 % of windows, which are then
    skipped; the next one is measured). The tracker moving the id to another vehicle a few metres away
    gives a step far above that, even when it is too few pixels for the engine's jump check (on a
    camera looking along the road, where a metre along it is a few pixels).

    Args:
        tc: (N,) centred timestamps.
        resid: (N, 2) residuals of the straight-line fit, metres.
        sigma: position noise of one observation, metres (1 sigma).
    """
    n = len(tc)
    splits = np.arange(STEP_MIN_SIDE, n - STEP_MIN_SIDE + 1)
    if len(splits) == 0 or sigma <= 0:
        return 0.0
    # Step indicators (K, N), made orthogonal to the line's regressors (1, t).
    step = (np.arange(n)[None, :] >= splits[:, None]).astype(np.float64)
    step -= step.mean(axis=1, keepdims=True)
    step -= np.outer(step @ tc / float(tc @ tc), tc)
    norm2 = np.maximum((step * step).sum(axis=1), 1e-12)  # (K,)
    shift = (step @ resid) / norm2[:, None]  # (K, 2) metres
    z = np.hypot(shift[:, 0], shift[:, 1]) * np.sqrt(norm2) / sigma
    return float(z.max())


@dataclass(slots=True)
class _Track:
    ts: deque[float] = field(default_factory=deque)
    gx: deque[float] = field(default_factory=deque)
    gy: deque[float] = field(default_factory=deque)
    sigma: deque[float] = field(default_factory=deque)
    size: deque[float] = field(default_factory=deque)  # box height in metres (see `upright_size_m`)
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


#: Largest ratio of a vehicle's box height in metres (`upright_size_m`) between the start and the end of
#: one speed window. A rigid vehicle's changes by a few per cent; a car's box near a high camera also
#: spans its roof, which perspective shrinks faster (up to ~1.23 between the window's thirds, 10 m
#: camera, 12 m ahead, 100 km/h). A box whose bottom edge slides, or that moved to a vehicle of another
#: size, changes by more.
MAX_SIZE_CHANGE = 1.25


def upright_size_m(h: F64, xyxy: F64) -> F64:
    """(N,) box heights of (N, 4) `xyxy` boxes in metres, by the homography `h` image → road.

    Pixels times the smallest local scale of `h` at the box's bottom-centre: the scale that is not
    foreshortened, which shrinks an upright object's pixel height by as much as it grows with the
    distance from the camera, so a rigid vehicle keeps about the same size as it drives towards the
    camera or away. (The largest scale, along the road on a camera looking along it, grows with the
    square of the distance: a box height in those metres grows in proportion to the distance.)
    """
    bottom = np.stack([(xyxy[:, 0] + xyxy[:, 2]) * 0.5, xyxy[:, 3]], axis=1)
    out: F64 = (xyxy[:, 3] - xyxy[:, 1]) * geometry.homography_min_scale(h, bottom)
    return out


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
        # Where the calibration holds, when the zone may reach further (the default zone is this hull).
        self._calibrated = None if scene.speed.zone is None else scene.speed.calibrated_area()
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
        rows = batch.inside["speed:zone"].nonzero()[0]
        if self._calibrated is not None and len(rows):
            # Beyond the calibration points a position is extrapolated: no evidence of speed.
            rows = rows[geometry.points_in_polygon(batch.points[rows], self._calibrated)]
        size = np.zeros(len(batch))
        if len(rows):
            size[rows] = upright_size_m(cal.homography, batch.xyxy[rows])
        for i in map(int, rows):
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
            st.size.append(float(size[i]))
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
            if est is None or est.step_z > MAX_STEP_Z:
                continue  # too short, or two vehicles' positions (an id swap) in one window
            if est.lower_kmh - limit < cal.min_excess_kmh:
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
