"""`violations.signal` and `violations.signal_feed`: lamp classification, phase smoothing, controller
feeds, and the reader on real frames of four cameras (read from ../shared/data at test time)."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from violations.signal import (
    COLOURS,
    Colour,
    LampClassifier,
    LightReader,
    LightReaderConfig,
    PhaseTracker,
    SignalReader,
    hue_lut,
)
from violations.signal_feed import (
    FeedReading,
    FileFeedConfig,
    FileSignalFeed,
    HttpFeedConfig,
    HttpSignalFeed,
    MqttFeedConfig,
    MqttSignalFeed,
    SignalError,
    SignalSource,
    open_feed,
    parse_state,
)
from violations.types import SignalReading

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"

# --------------------------------------------------------------------------------------------------
# Configuration


def test_config_from_yaml_like_dict() -> None:
    cfg = LightReaderConfig.model_validate(
        {
            "roi": [612, 145, 640, 228],
            "lamps": {"red": [626, 182], "green": [622, 215]},
            "red_hues": [[170, 8]],
            "min_value": 80,
        }
    )
    assert cfg.roi == (612, 145, 640, 228)
    assert cfg.lamps is not None and cfg.lamps.items() == [("red", (626, 182)), ("green", (622, 215))]
    assert cfg.red_hues == ((170, 8),)
    with pytest.raises(ValidationError):
        cfg.min_value = 3  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"roi": [10, 0, 5, 20]}, "x2 > x1"),
        ({"roi": [0, 20, 10, 20]}, "y2 > y1"),
        ({"lamps": {}}, "at least one lamp"),
        ({"lamps": {"red": [1, 10]}}, "lamps.red disc"),  # radius 3 sticks out of x >= 0
        ({"lamps": {"green": [10, 18]}}, "lamps.green disc"),  # y + 3 >= y2
        ({"red_hues": [[0, 180]]}, "less than or equal to 179"),
        ({"min_value": 0}, "greater than or equal to 1"),
        ({"min_lamp_fraction": 0}, "greater than 0"),
        ({"amber_max_s": -1}, "greater than or equal to 0"),
        ({"hold": 0.5}, "Extra inputs are not permitted"),
        ({"lamps": {"blue": [10, 10]}}, "Extra inputs are not permitted"),
    ],
)
def test_config_rejects(changes: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"roi": [0, 0, 20, 20]}
    with pytest.raises(ValidationError, match=message):
        LightReaderConfig.model_validate(base | changes)


@pytest.mark.parametrize(
    ("ranges", "inside", "outside"),
    [
        (((0, 10), (160, 179)), [0, 5, 10, 160, 179], [11, 100, 159, 180, 255]),
        (((170, 8),), [170, 179, 0, 8], [9, 169, 100]),  # wraps through 0
        (((40, 100),), [40, 93, 100], [39, 101]),
        ((), [], [0, 50, 179]),
    ],
)
def test_hue_lut(ranges: tuple[tuple[int, int], ...], inside: list[int], outside: list[int]) -> None:
    lut = hue_lut(ranges)
    assert lut.shape == (256,)
    assert lut[inside].all()
    assert not lut[outside].any()


# --------------------------------------------------------------------------------------------------
# Per-frame classification on small hand-made HSV arrays (OpenCV units: H 0..179, S and V 0..255)

DARK = (110, 150, 45)  # the dark bluish housing of the Giang Vo head


def hsv_roi(h: int = 20, w: int = 12, fill: tuple[int, int, int] = DARK) -> np.ndarray:
    a = np.empty((h, w, 3), np.uint8)
    a[:] = fill
    return a


def blob(a: np.ndarray, cx: int, cy: int, r: int, hsv: tuple[int, int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
    a[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = hsv
    return a


ROI_CFG = LightReaderConfig(roi=(100, 50, 112, 70))
LAMP_CFG = LightReaderConfig(
    roi=(100, 50, 112, 70), lamps={"red": (106, 55), "green": (106, 65)}, lamp_radius=2
)


@pytest.mark.parametrize(
    ("cfg", "blobs", "colour", "ambiguous"),
    [
        (ROI_CFG, [], None, False),
        (ROI_CFG, [(6, 5, 2, (170, 230, 140))], "red", False),
        (ROI_CFG, [(6, 5, 2, (3, 230, 140))], "red", False),  # red wraps through 0
        (ROI_CFG, [(6, 15, 2, (93, 255, 106))], "green", False),  # cyan-green LED
        (ROI_CFG, [(6, 5, 2, (25, 200, 200))], "amber", False),
        (ROI_CFG, [(6, 5, 2, (170, 230, 60))], None, False),  # too dark: an unlit lamp
        (ROI_CFG, [(6, 5, 2, (170, 40, 200))], None, False),  # too grey: glare, not a lamp
        (ROI_CFG, [(6, 5, 2, (25, 140, 255))], None, False),  # clipped core only: hue not trusted
        (ROI_CFG, [(6, 5, 2, (170, 230, 140)), (6, 15, 2, (93, 255, 140))], None, True),
        # Lamp mode: the colour comes from the position.
        (LAMP_CFG, [(6, 5, 2, (170, 230, 140))], "red", False),
        (LAMP_CFG, [(6, 15, 2, (93, 255, 140))], "green", False),
        # A clipped yellow core at the red lamp, in its red fringe (a bare core: test_signal_occlusion.py).
        (LAMP_CFG, [(6, 5, 3, (175, 200, 150)), (6, 5, 2, (25, 140, 255))], "red", False),
        (LAMP_CFG, [(6, 15, 2, (170, 230, 140))], None, False),  # red light at the green lamp: not green
        (LAMP_CFG, [(2, 10, 1, (170, 230, 140))], None, False),  # red between the lamps: ignored
        (LAMP_CFG, [(6, 5, 2, (170, 230, 140)), (6, 15, 2, (93, 255, 140))], None, True),
    ],
)
def test_classify_hsv(
    cfg: LightReaderConfig,
    blobs: list[tuple[int, int, int, tuple[int, int, int]]],
    colour: Colour | None,
    ambiguous: bool,
) -> None:
    a = hsv_roi()
    for cx, cy, r, hsv in blobs:
        blob(a, cx, cy, r, hsv)
    obs = LampClassifier(cfg).classify_hsv(a)
    assert (obs.colour, obs.ambiguous) == (colour, ambiguous)
    assert len(obs.scores) == 3 and all(0.0 <= s <= 1.0 for s in obs.scores)


def test_classify_orange_as_red_when_configured() -> None:
    # An orange lamp (hue 20) is amber by default and red when the camera's red_hues include orange.
    a = blob(hsv_roi(), 6, 5, 2, (20, 210, 236))
    assert LampClassifier(ROI_CFG).classify_hsv(a).colour == "amber"
    orange = ROI_CFG.model_copy(update={"red_hues": ((0, 35), (165, 179)), "amber_hues": ()})
    assert LampClassifier(orange).classify_hsv(a).colour == "red"


def test_classify_bgr_crops_the_roi() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    cv2.circle(frame, (106, 55), 2, (0, 0, 230), -1)  # a red lamp inside the ROI
    cv2.circle(frame, (20, 20), 8, (0, 230, 0), -1)  # a big green thing outside it
    obs = LampClassifier(ROI_CFG).classify_bgr(frame)
    assert obs.colour == "red"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((100, 200), np.uint8), "uint8 BGR frame"),
        (np.zeros((100, 200, 3), np.float32), "uint8 BGR frame"),
        (np.zeros((60, 200, 3), np.uint8), "outside the 200x60 frame"),
    ],
)
def test_classify_bgr_rejects(frame: np.ndarray, message: str) -> None:
    with pytest.raises(SignalError, match=message):
        LampClassifier(ROI_CFG).classify_bgr(frame)


def test_classify_hsv_rejects_wrong_shape() -> None:
    with pytest.raises(SignalError, match=r"\(20, 12, 3\)"):
        LampClassifier(ROI_CFG).classify_hsv(hsv_roi(10, 10))


# --------------------------------------------------------------------------------------------------
# Phase smoothing on hand-made per-frame colours

SYMBOL: dict[str, Colour | None] = {"R": "red", "A": "amber", "G": "green", ".": None, "?": None}


def sequence(segments: list[tuple[str, float]], fps: float = 10.0) -> list[tuple[str, float]]:
    """(symbol, seconds) segments → (symbol, ts) per frame at `fps` (ts = i / fps, no drift)."""
    out: list[tuple[str, float]] = []
    for symbol, seconds in segments:
        for _ in range(round(seconds * fps)):
            out.append((symbol, len(out) / fps))
    return out


def track(
    segments: list[tuple[str, float]], cfg: LightReaderConfig, fps: float = 10.0
) -> list[tuple[float, SignalReading]]:
    tracker = PhaseTracker(cfg)
    return [(ts, tracker.step(SYMBOL[s], ts, ambiguous=s == "?")) for s, ts in sequence(segments, fps)]


def at(results: list[tuple[float, SignalReading]], t: float) -> SignalReading:
    """The reading of the last frame at or before `t`."""
    return [r for ts, r in results if ts <= t + 1e-9][-1]


TRACK_CFG = LightReaderConfig(roi=(0, 0, 10, 10))  # defaults: confirm 2 frames / 0.3 s, hold 0.6 s, amber 4 s

FLICKER = [
    ("R", 0.4),
    (".", 0.4),
    ("R", 0.1),
    (".", 0.5),
    ("R", 0.2),
    (".", 0.1),
    ("R", 0.1),
    (".", 0.3),
    ("R", 1),
]


@pytest.mark.parametrize(
    ("name", "segments", "checks"),
    [
        ("steady red", [("R", 3)], [(0.0, "unknown", 0.0), (0.35, "red", 0.0), (2.9, "red", 0.0)]),
        ("PWM flicker never flips red", FLICKER, [(t / 10, "red", 0.0) for t in range(3, 30)]),
        (
            "green, seen amber, red",
            [("G", 2), ("A", 3), ("R", 3)],
            [
                (1.0, "green", 0.0),
                (2.1, "green", 0.0),
                (2.5, "amber", 2.0),
                (4.9, "amber", 2.0),
                (5.5, "red", 5.0),
            ],
        ),
        (
            "green, unlit gap, red: the gap is amber",
            [("G", 2), (".", 3), ("R", 3)],
            [
                (2.5, "green", 0.0),
                (2.7, "amber", 2.0),
                (4.9, "amber", 2.0),
                (5.2, "amber", 2.0),
                (5.5, "red", 5.0),
            ],
        ),
        (
            "green, long unlit gap: amber, then unknown",
            [("G", 2), (".", 6)],
            [(5.9, "amber", 2.0), (6.1, "unknown", 2.0), (7.9, "unknown", 2.0)],
        ),
        ("red after a long unknown gap starts fresh", [("G", 2), (".", 6), ("R", 2)], [(8.5, "red", 8.0)]),
        (
            "red occluded briefly keeps its start",
            [("R", 3), (".", 1.5), ("R", 2)],
            [(3.5, "red", 0.0), (4.0, "unknown", 3.0), (5.0, "red", 0.0)],
        ),
        ("red after a long dark gap is a new phase", [("R", 3), (".", 4), ("R", 2)], [(8.5, "red", 7.0)]),
        (
            "a short wrong colour does not flip",
            [("R", 2), ("G", 0.2), ("R", 2)],
            [(2.15, "red", 0.0), (3.0, "red", 0.0)],
        ),
        (
            "ambiguous frames are held like dark ones",
            [("R", 2), ("?", 0.4), ("R", 1)],
            [(2.3, "red", 0.0), (3.0, "red", 0.0)],
        ),
        (
            "flashing amber stays amber",
            [("A", 0.5), (".", 0.5)] * 10,
            [(t, "amber", 0.0) for t in (1.0, 4.4, 9.9)],
        ),
        (
            "seen amber continues the inferred amber",
            [("G", 2), (".", 1), ("A", 2), ("R", 1)],
            [(3.5, "amber", 2.0)],
        ),
        ("green straight to red", [("G", 2), ("R", 2)], [(2.1, "green", 0.0), (2.4, "red", 2.0)]),
        ("unlit from the start is unknown", [(".", 2)], [(1.9, "unknown", 0.0)]),
    ],
)
def test_phase_tracker(
    name: str, segments: list[tuple[str, float]], checks: list[tuple[float, str, float]]
) -> None:
    results = track(segments, TRACK_CFG)
    for t, state, since in checks:
        r = at(results, t)
        assert (r.state, r.since_ts) == pytest.approx((state, since)), f"{name}: at {t} s got {r}"


def test_pending_red_keeps_the_amber_gap_from_timing_out() -> None:
    # Gap 2.0 → 4.9 s (2.9 s) with amber_max_s 3.0: red is first seen at 4.9 and accepted at 5.2;
    # the frames at 5.0 and 5.1 (gap "length" 3.0, 3.1 s by the clock) must stay amber, not unknown.
    cfg = TRACK_CFG.model_copy(update={"amber_max_s": 3.0})
    results = track([("G", 2), (".", 2.9), ("R", 2)], cfg)
    assert [at(results, t).state for t in (4.8, 5.0, 5.1, 5.2)] == ["amber", "amber", "amber", "red"]
    assert at(results, 6.0).since_ts == pytest.approx(4.9)


def test_hold_zero_lets_flicker_through() -> None:
    # The control for the flicker case: without a hold the same frames break the red phase.
    results = track(FLICKER, TRACK_CFG.model_copy(update={"hold_s": 0.0, "resume_s": 0.0}))
    assert {r.state for ts, r in results if ts > 0.3} >= {"red", "unknown"}


@pytest.mark.parametrize(
    ("segments", "t", "confidence"),
    [
        ([("R", 3)], 2.0, 1.0),
        ([("R", 0.5), ("R", 0.1), (".", 0.1)] * 5, 3.4, 0.5 * 0.25 + 0.75 * 1.0),  # every 4th frame dark
        ([("G", 2), (".", 2)], 3.5, 0.5),  # inferred amber
        ([(".", 2)], 1.5, 0.0),  # unknown
    ],
)
def test_confidence(segments: list[tuple[str, float]], t: float, confidence: float) -> None:
    results = track(segments, TRACK_CFG, fps=20.0 if len(segments) > 5 else 10.0)
    assert at(results, t).confidence == pytest.approx(confidence, abs=0.06)


def test_time_going_back_resets(caplog: pytest.LogCaptureFixture) -> None:
    tracker = PhaseTracker(TRACK_CFG)
    for i in range(10):
        tracker.step("red", i / 10)
    assert tracker.step("red", 1.0).state == "red"
    with caplog.at_level(logging.WARNING, logger="violations.signal"):
        r = tracker.step("red", 0.5)
    assert (r.state, r.since_ts) == ("unknown", 0.5)
    assert "time went back" in caplog.text


def test_a_stream_outage_starts_the_phase_over() -> None:
    """Red until 10 s, then no frames (the camera reconnecting) until 70 s, when red shows again: a new
    red of unknown start, dated from when it is seen again, not 'red since 0 s' (which would skip the
    amber grace for a vehicle crossing at 70.1 s)."""
    tracker = PhaseTracker(TRACK_CFG)
    for i in range(101):
        tracker.step("red", i / 10)
    assert tracker.step("red", 10.05).since_ts == 0.0
    readings = [tracker.step("red", 70.0 + i / 10) for i in range(6)]
    assert readings[0].state == "unknown"
    assert readings[-1].state == "red" and readings[-1].since_ts >= 70.0


# --------------------------------------------------------------------------------------------------
# Real frames. Each case: clip, config, and what the README of ../shared/data/videos says the light
# shows. Settings here are the ones recommended for the scene files of these cameras.

GIANG_VO_LAMPS = LightReaderConfig(
    roi=(612, 145, 640, 228), lamps={"red": (626, 182), "green": (622, 215)}, lamp_radius=3
)
GIANG_VO_ROI = LightReaderConfig(roi=(612, 145, 640, 228))
# Hai Phong right head: the red lamp's centre clips to yellow-white and some frames sample it dark.
HAIPHONG = LightReaderConfig(
    roi=(978, 125, 1001, 192),
    lamps={"red": (989, 139), "amber": (989, 160), "green": (989, 180)},
    lamp_radius=4,
)
# US mast-arm heads: lamps about 4 px wide, two of them render as a white core with a thin red ring.
US_HEADS = [
    LightReaderConfig(
        roi=(x - 6, y - 6, x + 7, y + 14), lamps={"red": (x, y)}, lamp_radius=1, min_saturation=50
    )
    for x, y in ((451, 81), (486, 80), (525, 78))
]
# CityLens Nguyen Xien: this camera renders the red lamp yellow-orange to orange-red (hue ~3..28 and
# ~173; countdown ~70 → a red phase, traffic held). Red must include orange and amber be empty;
# the lamp position keeps a real amber lamp (lower in the head, cut by the frame edge) from being
# read as red once its point is added.
ORANGE_RED = {"red_hues": ((0, 35), (165, 179)), "amber_hues": ()}
NGUYEN_XIEN_LAMP = LightReaderConfig(roi=(1040, 75, 1064, 140), lamps={"red": (1057, 102)}, **ORANGE_RED)
NGUYEN_XIEN_ROI = LightReaderConfig(roi=(1040, 75, 1064, 140), **ORANGE_RED)
NGUYEN_XIEN_DEFAULT_HUES = LightReaderConfig(roi=(1040, 75, 1064, 140))


@dataclass
class ClipRun:
    ts: list[float] = field(default_factory=list)
    readings: list[SignalReading] = field(default_factory=list)
    colours: list[Colour | None] = field(default_factory=list)

    def between(self, lo: float, hi: float) -> list[SignalReading]:
        return [r for t, r in zip(self.ts, self.readings, strict=True) if lo <= t <= hi]


def run_clip(name: str, configs: list[LightReaderConfig]) -> list[ClipRun]:
    path = VIDEOS / name
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (expected ../shared/data beside the checkout)")
    readers = [LightReader(c) for c in configs]
    runs = [ClipRun() for _ in configs]
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, decoded = cap.read()
            if not ok:
                break
            frame = np.asarray(decoded, dtype=np.uint8)
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0  # container time of this frame
            for reader, run in zip(readers, runs, strict=True):
                run.readings.append(reader.update(frame, ts))
                assert reader.last_observation is not None
                run.colours.append(reader.last_observation.colour)
                run.ts.append(ts)
    finally:
        cap.release()
    assert runs[0].ts, f"no frames decoded from {path}"
    return runs


def assert_red_throughout(run: ClipRun, warmup_s: float = 0.5) -> None:
    """Unknown while the reader confirms its first colour (< warmup_s), then red, one phase from 0."""
    first = next(i for i, r in enumerate(run.readings) if r.state != "unknown")
    assert run.ts[first] < warmup_s
    after = run.readings[first:]
    assert {r.state for r in after} == {"red"}
    assert {r.since_ts for r in after} == {run.ts[0]}
    # Confident enough for the rules (scene tolerance min_signal_confidence defaults to 0.6).
    assert min(r.confidence for r in after) >= 0.7


@pytest.fixture(scope="module")
def giang_vo() -> list[ClipRun]:
    return run_clip("hanoi_giangvo_langha.mp4", [GIANG_VO_LAMPS, GIANG_VO_ROI])


@pytest.mark.parametrize("mode", [0, 1], ids=["lamps", "roi"])
def test_giang_vo_green_amber_red(giang_vo: list[ClipRun], mode: int) -> None:
    run = giang_vo[mode]
    cfg = (GIANG_VO_LAMPS, GIANG_VO_ROI)[mode]
    # README timeline, checked on the raw per-frame colours: green lit until ~1.2 s, nothing lit in
    # 1.3-4.1 s (the amber lamp renders dark on this camera), red from ~4.2 s to the end.
    assert all(c == "green" for t, c in zip(run.ts, run.colours, strict=True) if t <= 1.0)
    assert all(c is None for t, c in zip(run.ts, run.colours, strict=True) if 1.3 <= t <= 4.0)
    assert all(c == "red" for t, c in zip(run.ts, run.colours, strict=True) if t >= 4.3)

    # 0-1.0 s green (after the cold-start confirmation, which reports unknown).
    early = run.between(0.0, 1.0)
    assert {r.state for r in early} <= {"unknown", "green"}
    assert all(
        r.state == "green" for t, r in zip(run.ts, run.readings, strict=True) if cfg.confirm_s <= t <= 1.0
    )
    # The unlit gap between green and red is amber (shorter than amber_max_s), never unknown.
    assert {r.state for r in run.between(1.2 + cfg.hold_s, 4.1)} == {"amber"}
    # From 5 s on: red, every frame, one phase.
    late = run.between(5.0, 1e9)
    assert len(late) > 300 and {r.state for r in late} == {"red"}
    onset = {r.since_ts for r in late}
    assert len(onset) == 1 and abs(onset.pop() - 4.3) <= 0.5
    assert min(r.confidence for r in late) >= 0.7
    # The first seconds of red: until red is confirmed the reader keeps reporting amber, and once it
    # reports red, red_for_s counts from the first red frame (dated back, not from the confirmation),
    # so the red-light rule's grace period for vehicles already committed measures real red time.
    first_red = next(t for t, c in zip(run.ts, run.colours, strict=True) if c == "red")
    pending = [r for t, r in zip(run.ts, run.readings, strict=True) if first_red <= t and r.state != "red"]
    assert pending and {r.state for r in pending} == {"amber"}
    accepted = next((t, r) for t, r in zip(run.ts, run.readings, strict=True) if r.state == "red")
    assert accepted[1].since_ts == first_red
    assert 0.0 < accepted[0] - accepted[1].since_ts <= cfg.confirm_s + 0.2


def test_us_street_red_throughout() -> None:
    for run in run_clip("us_street.mp4", US_HEADS):
        assert_red_throughout(run)


def test_haiphong_red_despite_dark_frames() -> None:
    flicker_free = HAIPHONG.model_copy(update={"hold_s": 0.0})
    smoothed, unsmoothed = run_clip("haiphong_intersection_daytime_plates.mp4", [HAIPHONG, flicker_free])
    # The clip really has PWM-dark frames (README: "some frames sample the LEDs dark"), up to a few
    # in a row, and no frame shows another colour.
    dark = [t for t, c in zip(smoothed.ts, smoothed.colours, strict=True) if c is None]
    assert len(dark) >= 10
    assert set(smoothed.colours) == {"red", None}
    assert_red_throughout(smoothed)
    # Control: the same frames without the hold do break the red phase.
    assert "unknown" in {r.state for r in unsmoothed.readings[10:]}


def test_nguyen_xien_orange_lamp_is_red_when_configured() -> None:
    lamp, roi, default = run_clip(
        "citylens/hanoi_nguyenxien_khuatduytien.mp4",
        [NGUYEN_XIEN_LAMP, NGUYEN_XIEN_ROI, NGUYEN_XIEN_DEFAULT_HUES],
    )
    assert_red_throughout(lamp)
    assert_red_throughout(roi)
    # Why the setting exists: with the default hues this camera's red lamp reads as amber.
    assert {r.state for r in default.readings[30:]} == {"amber"}


# --------------------------------------------------------------------------------------------------
# Controller feeds


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("red", "red"),
        ("RED", "red"),
        (" Yellow ", "amber"),
        ("amber", "amber"),
        ("green", "green"),
        ("off", "unknown"),
    ],
)
def test_parse_state(word: str, state: str) -> None:
    assert parse_state(word) == state


@pytest.mark.parametrize("word", ["blue", "", None, 3, "flashing"])
def test_parse_state_rejects(word: object) -> None:
    with pytest.raises(SignalError, match="unknown signal state"):
        parse_state(word)


SCHEDULE = [
    {"ts": 100.0, "light_id": "north", "state": "green"},
    {"ts": 130.0, "light_id": "north", "state": "yellow"},
    {"ts": 133.0, "light_id": "north", "state": "red"},
    {"ts": 134.0, "light_id": "north", "state": "red"},  # a heartbeat row: same phase
    {"ts": 100.0, "light_id": "east", "state": "red"},
]


@pytest.fixture(params=["jsonl", "csv"])
def schedule_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "jsonl":
        path = tmp_path / "controller.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in SCHEDULE) + "\n\n", encoding="utf-8")
    else:
        path = tmp_path / "controller.csv"
        rows = ["ts,light_id,state,source"] + [
            f"{r['ts']},{r['light_id']},{r['state']},ctl" for r in SCHEDULE
        ]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("light", "ts", "expected"),
    [
        ("north", 99.9, None),
        ("north", 100.0, FeedReading("green", 100.0, 100.0)),
        ("north", 129.0, FeedReading("green", 100.0, 100.0)),
        ("north", 131.0, FeedReading("amber", 130.0, 130.0)),
        ("north", 140.0, FeedReading("red", 133.0, 134.0)),
        ("east", 500.0, FeedReading("red", 100.0, 100.0)),
        ("west", 120.0, None),
    ],
)
def test_file_feed(schedule_file: Path, light: str, ts: float, expected: FeedReading | None) -> None:
    feed = FileSignalFeed.from_path(schedule_file)
    assert isinstance(feed, SignalSource)
    assert feed.light_ids == ("east", "north")
    assert feed.reading(light, ts) == expected


def test_file_feed_offset_maps_controller_time_to_frame_time(schedule_file: Path) -> None:
    feed = FileSignalFeed.from_path(schedule_file, ts_offset_s=100.0)  # frame 0 is controller time 100
    assert feed.reading("north", 35.0) == FeedReading("red", 33.0, 34.0)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.txt", "", "must be .jsonl"),
        ("a.jsonl", '{"ts": 1, "light_id": "n", "state": "red"}\nnot json\n', r"a.jsonl:2: not JSON"),
        ("a.jsonl", "[1, 2]\n", "a.jsonl:1: expected a JSON object"),
        ("a.jsonl", '{"ts": 1, "state": "red"}\n', "a.jsonl:1: missing 'light_id'"),
        ("a.jsonl", '{"ts": "soon", "light_id": "n", "state": "red"}\n', "a.jsonl:1: ts must be a number"),
        ("a.jsonl", '{"ts": true, "light_id": "n", "state": "red"}\n', "a.jsonl:1: ts must be a number"),
        ("a.jsonl", '{"ts": NaN, "light_id": "n", "state": "red"}\n', "a.jsonl:1: ts must be finite"),
        (
            "a.jsonl",
            '{"ts": 1, "light_id": "n", "state": "blue"}\n',
            "a.jsonl:1: unknown signal state 'blue'",
        ),
        ("a.csv", "time,light_id,state\n1,n,red\n", "CSV header lacks ts"),
        ("a.csv", "ts,light_id,state\n1,n,red\n2,n,\n", "a.csv:3: missing 'state'"),
    ],
)
def test_file_feed_rejects(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SignalError, match=message):
        FileSignalFeed.from_path(path)


def test_file_feed_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SignalError, match="cannot read signal schedule"):
        FileSignalFeed.from_path(tmp_path / "absent.jsonl")


class Controller:
    """A real HTTP controller on 127.0.0.1 whose answer the test sets (status, body, delay)."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"{}"
        self.delay_s = 0.0
        self.requests = 0
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                controller.requests += 1
                time.sleep(controller.delay_s)
                try:
                    self.send_response(controller.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(controller.body)))
                    self.end_headers()
                    self.wfile.write(controller.body)
                except OSError:
                    pass  # the client timed out and hung up

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/signals"

    def answer(self, doc: object, status: int = 200) -> None:
        self.body, self.status = json.dumps(doc).encode(), status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller()
    try:
        yield c
    finally:
        c.close()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_http_feed_polls_and_tracks_phase_start(controller: Controller) -> None:
    clock = Clock(1000.0)
    feed = HttpSignalFeed(controller.url, timeout_s=2.0, clock=clock)
    assert isinstance(feed, SignalSource)
    assert feed.reading("north", 1000.0) is None

    controller.answer({"north": "red", "east": {"state": "green", "since_ts": 990.5}})
    assert feed.poll_once()
    assert feed.reading("north", 0.0) == FeedReading("red", 1000.0, 1000.0)
    assert feed.reading("east", 0.0) == FeedReading("green", 990.5, 1000.0)

    clock.now = 1003.0  # same state again: the phase keeps its start, the confirmation moves on
    assert feed.poll_once()
    assert feed.reading("north", 0.0) == FeedReading("red", 1000.0, 1003.0)

    clock.now = 1004.0
    controller.answer({"north": "GREEN"})
    assert feed.poll_once()
    assert feed.reading("north", 0.0) == FeedReading("green", 1004.0, 1004.0)
    assert feed.reading("east", 0.0) == FeedReading("green", 990.5, 1003.0)  # not in this answer: ages
    assert (feed.polls_ok, feed.polls_failed) == (3, 0)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"north": "red"}'),
        (200, b"not json"),
        (200, b'["red"]'),
        (200, b'{"north": "purple"}'),
        (200, b'{"north": {"state": "red", "since_ts": "noon"}}'),
    ],
)
def test_http_feed_failed_poll_keeps_old_values(
    controller: Controller, status: int, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(50.0)
    feed = HttpSignalFeed(controller.url, clock=clock)
    controller.answer({"north": "red"})
    assert feed.poll_once()
    controller.body, controller.status = body, status
    clock.now = 60.0
    with caplog.at_level(logging.WARNING, logger="violations.signal_feed"):
        assert not feed.poll_once()
        assert not feed.poll_once()
    assert feed.reading("north", 60.0) == FeedReading("red", 50.0, 50.0)
    assert feed.polls_failed == 2
    assert caplog.text.count("poll failed") == 1  # one warning per failing streak


def test_http_feed_timeout(controller: Controller) -> None:
    controller.answer({"north": "red"})
    controller.delay_s = 1.5
    feed = HttpSignalFeed(controller.url, timeout_s=0.2)
    t0 = time.monotonic()
    assert not feed.poll_once()
    assert time.monotonic() - t0 < 1.2


def test_http_feed_thread_polls_until_closed(controller: Controller) -> None:
    controller.answer({"main": "amber"})
    with HttpSignalFeed(controller.url, interval_s=0.05, timeout_s=1.0) as feed:
        deadline = time.monotonic() + 5.0
        while feed.polls_ok < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert feed.polls_ok >= 3
        reading = feed.reading("main", 0.0)
        assert reading is not None and reading.state == "amber"
    n = controller.requests
    time.sleep(0.2)
    assert controller.requests == n  # the thread stopped


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "127.0.0.1:8080/signals", "http://"])
def test_http_feed_rejects_url(url: str) -> None:
    with pytest.raises(SignalError, match="http:// or https://"):
        HttpSignalFeed(url)
    with pytest.raises(ValidationError):
        HttpFeedConfig(url=url)


def test_open_feed(schedule_file: Path, controller: Controller) -> None:
    file_feed = open_feed(FileFeedConfig(path=schedule_file))
    assert file_feed.reading("east", 200.0) == FeedReading("red", 100.0, 100.0)
    controller.answer({"main": "red"})
    http_feed = open_feed(
        HttpFeedConfig.model_validate({"type": "http", "url": controller.url, "interval_s": 0.05})
    )
    try:
        deadline = time.monotonic() + 5.0
        while http_feed.reading("main", 0.0) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert http_feed.reading("main", 0.0) is not None
    finally:
        assert isinstance(http_feed, HttpSignalFeed)
        http_feed.close()


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip("the mosquitto broker is not installed (Debian package 'mosquitto')")
    return found


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A real mosquitto broker on 127.0.0.1 (a free port), stopped after the test."""
    pytest.importorskip("paho.mqtt.client", reason="the optional paho-mqtt package is not installed")
    binary = mosquitto_binary()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"mosquitto did not start: {err}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def publish(port: int, topic: str, payload: str) -> None:
    import paho.mqtt.publish as mqtt_publish

    mqtt_publish.single(topic, payload, qos=1, retain=True, hostname="127.0.0.1", port=port)


def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


def test_mqtt_feed(broker: int, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(500.0)
    publish(broker, "city/signals/north", "red")  # retained: a late subscriber gets it at once
    with MqttSignalFeed("127.0.0.1", broker, topic_prefix="city/signals/", clock=clock) as feed:
        wait_for(lambda: feed.reading("north", 0.0) is not None)
        assert feed.reading("north", 0.0) == FeedReading("red", 500.0, 500.0)

        clock.now = 503.0
        publish(broker, "city/signals/north", '{"state": "green", "since_ts": 502.5}')
        wait_for(lambda: feed.messages_ok >= 2)
        assert feed.reading("north", 0.0) == FeedReading("green", 502.5, 503.0)

        clock.now = 504.0
        publish(broker, "city/signals/north", "GREEN")  # heartbeat: same phase, fresh confirmation
        wait_for(lambda: feed.messages_ok >= 3)
        assert feed.reading("north", 0.0) == FeedReading("green", 502.5, 504.0)

        with caplog.at_level(logging.WARNING, logger="violations.signal_feed"):
            publish(broker, "city/signals/north", "purple")
            wait_for(lambda: feed.messages_bad >= 1)
        assert "bad message on city/signals/north" in caplog.text
        assert feed.reading("north", 0.0) == FeedReading("green", 502.5, 504.0)
        assert feed.reading("east", 0.0) is None


def test_open_feed_mqtt(broker: int) -> None:
    publish(broker, "phatnguoi/signals/main", "amber")
    feed = open_feed(MqttFeedConfig(host="127.0.0.1", port=broker))
    try:
        wait_for(lambda: feed.reading("main", 0.0) is not None)
        reading = feed.reading("main", 0.0)
        assert reading is not None and reading.state == "amber"
    finally:
        assert isinstance(feed, MqttSignalFeed)
        feed.close()


@pytest.mark.parametrize("prefix", ["a/+/b", "#", ""])
def test_mqtt_prefix_rejected(prefix: str) -> None:
    pytest.importorskip("paho.mqtt.client", reason="the optional paho-mqtt package is not installed")
    with pytest.raises(SignalError, match="topic_prefix"):
        MqttSignalFeed("127.0.0.1", topic_prefix=prefix)


# --------------------------------------------------------------------------------------------------
# Feed precedence and fallback

CAM_CFG = LightReaderConfig(roi=(0, 0, 40, 40), lamps={"red": (20, 10), "green": (20, 30)})


def lamp_frame(colour: Colour | None) -> np.ndarray:
    """A 40x40 BGR frame of a dark head with the red (top) or green (bottom) lamp lit."""
    frame = np.full((40, 40, 3), 30, np.uint8)
    if colour == "red":
        cv2.circle(frame, (20, 10), 5, (20, 20, 220), -1)
    elif colour == "green":
        cv2.circle(frame, (20, 30), 5, (160, 220, 20), -1)
    return frame


def test_lamp_frame_is_read_by_the_camera() -> None:
    reader = LightReader(CAM_CFG)
    for colour in COLOURS[::2]:
        obs = reader.classifier.classify_bgr(lamp_frame(colour))
        assert obs.colour == colour


def test_feed_takes_precedence_then_camera_when_stale(
    controller: Controller, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(100.0)
    feed = HttpSignalFeed(controller.url, clock=clock)
    reader = SignalReader(LightReader(CAM_CFG), feed, light_id="north", stale_s=3.0, camera_id="cam7")
    controller.answer({"north": "red"})
    assert feed.poll_once()

    caplog.set_level(logging.INFO, logger="violations.signal")
    # The camera sees green (say the camera watches another head), the fresh feed says red: feed wins.
    for i in range(10):
        r = reader.update(lamp_frame("green"), 100.0 + i / 10)
    assert (r.state, r.since_ts, r.confidence, reader.source) == ("red", 100.0, 1.0, "feed")
    # No poll succeeds for more than stale_s: the camera reading (green, kept warm) takes over.
    controller.answer({}, status=503)
    assert not feed.poll_once()
    for i in range(40):
        r = reader.update(lamp_frame("green"), 101.0 + i / 10)
    assert (r.state, reader.source) == ("green", "camera")
    assert r.since_ts == pytest.approx(100.0)  # the camera's own phase, tracked while the feed ruled
    assert caplog.text.count("is stale") == 1 and "cam7" in caplog.text
    # The controller answers again: back to the feed, logged once.
    clock.now = 105.5
    controller.answer({"north": "red"})
    assert feed.poll_once()
    r = reader.update(lamp_frame("green"), 105.5)
    assert (r.state, r.since_ts, reader.source) == ("red", 100.0, "feed")
    assert "fresh again" in caplog.text


def test_schedule_feed_with_gap_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    rows = [{"ts": float(t), "light_id": "main", "state": "red"} for t in range(0, 6)]  # heartbeats to 5 s
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    reader = SignalReader(LightReader(CAM_CFG), FileSignalFeed.from_path(path), stale_s=2.0)
    states = []
    for i in range(100):  # 0..9.9 s; the camera shows green all along
        states.append((reader.update(lamp_frame("green"), i / 10).state, reader.source))
    assert set(states[:70]) == {("red", "feed")}  # last heartbeat at 5 s, fresh until 7 s
    assert set(states[71:]) == {("green", "camera")}


def test_feed_only_reader_is_unknown_when_stale() -> None:
    feed = FileSignalFeed([(0.0, "main", "green")])
    reader = SignalReader(feed=feed, stale_s=1.0)
    assert reader.update(None, 0.5) == SignalReading("green", 0.0, 1.0)
    assert reader.update(None, 2.0) == SignalReading("unknown", 2.0, 0.0)
    assert reader.source == "none"


def test_signal_reader_needs_a_source() -> None:
    with pytest.raises(ValueError, match="needs a camera reader, a feed, or both"):
        SignalReader()
