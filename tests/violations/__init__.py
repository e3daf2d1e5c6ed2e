"""Tests of the violations package, and the synthetic-track helpers the rule tests share.

A `Drive` is one vehicle: waypoints of its bottom-centre over time, linearly interpolated, turned
into real `TrackHistory` rows frame by frame (optionally with box jitter) and fed to a real
`RuleEngine` exactly as the edge worker does. `phases` builds the signal readings of a light from a
list of state changes.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.tracking import TrackHistory
from streams.frame import Frame
from violations.rules import RuleEngine
from violations.scene import Scene
from violations.types import SignalReading, SignalState, ViolationEvent

#: COCO class ids of the default detector.
COCO = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "truck": 7}

#: A 640x480 scene with one stop line across the image at y = 300 (traffic drives up) and its light.
BASE_SCENE: dict[str, Any] = {
    "camera_id": "test-cam",
    "resolution": [640, 480],
    "stop_lines": [{"id": "sl1", "points": [[40, 300], [600, 300]], "approach": "below", "light": "L1"}],
    "lights": [{"id": "L1", "roi": [600, 10, 630, 80]}],
}


def make_scene(**extra: Any) -> Scene:
    """`BASE_SCENE` with top-level keys replaced or added (None removes a key)."""
    data = copy.deepcopy(BASE_SCENE)
    for key, value in extra.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return Scene.model_validate(data)


@dataclass
class Drive:
    """One vehicle's bottom-centre path: waypoints (t, x, y), linear in between, absent outside.

    Attributes:
        tid: tracker id.
        waypoints: (t, x, y) in increasing t.
        cls: detector class name (see `COCO`).
        size: box width, height in pixels.
        jitter: standard deviation of Gaussian noise added to each box edge (pixels).
        seed: noise seed.
        box_fn: optional (t, x, y) → box, replacing the default box (to model occlusion, flicker).
    """

    tid: int
    waypoints: list[tuple[float, float, float]]
    cls: str = "motorcycle"
    size: tuple[float, float] = (30.0, 50.0)
    jitter: float = 0.0
    seed: int = 0
    box_fn: Callable[[float, float, float], tuple[float, float, float, float]] | None = None
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def at(self, t: float) -> tuple[float, float] | None:
        """Bottom-centre at `t`, None when the vehicle is not tracked then."""
        w = self.waypoints
        if t < w[0][0] - 1e-9 or t > w[-1][0] + 1e-9:
            return None
        for (t0, x0, y0), (t1, x1, y1) in itertools.pairwise(w):
            if t0 - 1e-9 <= t <= t1 + 1e-9:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
        return w[-1][1], w[-1][2]

    def box(self, x: float, y: float) -> tuple[float, float, float, float]:
        """A box whose bottom-centre is (x, y), with jitter."""
        bw, bh = self.size
        noise = self._rng.normal(0.0, self.jitter, 4) if self.jitter > 0 else np.zeros(4)
        return (
            x - bw / 2 + float(noise[0]),
            y - bh + float(noise[1]),
            x + bw / 2 + float(noise[2]),
            y + float(noise[3]),
        )


def moving(
    tid: int,
    start: tuple[float, float],
    velocity: tuple[float, float],
    t0: float,
    t1: float,
    cls: str = "motorcycle",
    **kw: Any,
) -> Drive:
    """A vehicle moving at a constant pixel velocity from `start` between t0 and t1."""
    x, y = start
    vx, vy = velocity
    end = (x + vx * (t1 - t0), y + vy * (t1 - t0))
    return Drive(tid, [(t0, x, y), (t1, end[0], end[1])], cls, **kw)


def phases(*changes: tuple[float, SignalState], light: str = "L1", confidence: float = 0.95) -> SignalFn:
    """Signal readings of `light` for a schedule of (start_ts, state) changes (sorted by time)."""

    def reading(t: float) -> dict[str, SignalReading]:
        current = [(ts, s) for ts, s in changes if ts <= t]
        if not current:
            return {}
        since, state = current[-1]
        return {light: SignalReading(state, since, confidence)}

    return reading


SignalFn = Callable[[float], Mapping[str, SignalReading]]


def run(
    engine: RuleEngine,
    drives: Iterable[Drive],
    signals: SignalFn | None = None,
    fps: float = 10.0,
    until: float | None = None,
    lost_s: float = 2.0,
) -> list[ViolationEvent]:
    """Feed `drives` to `engine` frame by frame, like the edge worker; returns every event."""
    drives = list(drives)
    end = until if until is not None else max(d.waypoints[-1][0] for d in drives) + lost_s + 0.5
    histories: dict[int, TrackHistory] = {}
    events: list[ViolationEvent] = []
    for k in range(math.floor(end * fps) + 1):
        t = k / fps
        for d in drives:
            p = d.at(t)
            if p is None:
                continue
            h = histories.setdefault(d.tid, TrackHistory(d.tid))
            h.frame_index.append(k)
            h.ts.append(t)
            h.xyxy.append(d.box_fn(t, *p) if d.box_fn is not None else d.box(*p))
            h.confidence.append(0.9)
            h.detected.append(True)
            h.class_votes[COCO[d.cls]] += 1
        live = [h for h in histories.values() if t - h.last_ts <= lost_s]
        events.extend(engine.update(live, signals(t) if signals else {}, t))
    return events


def rules_of(events: Iterable[ViolationEvent]) -> list[str]:
    """The rule ids of `events`, sorted."""
    return sorted(e.rule for e in events)


def clip_frames(clip: Path, n: int, camera: str) -> list[Frame]:
    """The first `n` frames of a real clip, with their times from the container."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    out = []
    try:
        for i in range(n):
            ok, img = cap.read()
            assert ok, f"could not read frame {i} of {clip}"
            out.append(Frame(img, i, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, camera))
    finally:
        cap.release()
    return out
