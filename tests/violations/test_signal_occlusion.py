"""`violations.signal` when something that is not a lit lamp sits on a lamp: a vehicle in front of the
signal head, a glare spot, an over-exposed camera. None of them may read as red (a wrongly signed
red-light fine) or as green during red, and a red misread for a moment must not date the real red
that follows.

Real frames of the Giang Vo camera (green until 1.2 s, the amber lamp renders dark until 4.1 s, red
from 4.17 s) with real vehicle pixels pasted over its signal head: the white van of the same clip and a
red car of the CityLens Khuat Duy Tien clip. Settings come from the example scene files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import SHARED_DATA, need
from tests.violations.test_signal import DARK, LAMP_CFG, ROI_CFG, TRACK_CFG, at, blob, hsv_roi, track
from violations.scene import load_scene
from violations.signal import LampClassifier, LightReader, LightReaderConfig
from violations.types import SignalReading

REPO = Path(__file__).resolve().parents[2]
VIDEOS = SHARED_DATA / "videos"
GIANG_VO = "hanoi_giangvo_langha.mp4"
KHUAT_DUY_TIEN = "citylens/hanoi_khuatduytien_nguyenxien_1.mp4"
HAIPHONG = "haiphong_intersection_daytime_plates.mp4"

HEAD = (612, 145, 640, 228)  # the whole Giang Vo head (its roi)
RED_LAMP_HALF = (612, 150, 640, 200)  # its upper part: the red lamp and the housing around it
AMBER_UNTIL_S = 4.1  # the last frame before red is at 4.0 s; red is first lit at 4.167 s

Frames = list[tuple[float, np.ndarray]]
Perturb = Callable[[float, np.ndarray], np.ndarray]


def decode(name: str, count: int) -> Frames:
    """The first `count` frames of a clip with their container times, (H, W, 3) uint8 BGR."""
    cap = cv2.VideoCapture(str(need(VIDEOS / name)))
    out: Frames = []
    try:
        while len(out) < count:
            ok, image = cap.read()
            if not ok:
                break
            out.append((cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, np.asarray(image, dtype=np.uint8)))
    finally:
        cap.release()
    assert len(out) == count, f"{name}: {len(out)} frames decoded, {count} wanted"
    return out


def light(scene: str, light_id: str) -> LightReaderConfig:
    cfg = next(lt for lt in load_scene(REPO / "examples" / "scenes" / scene).lights if lt.id == light_id)
    reader_config: LightReaderConfig = cfg.reader_config()
    return reader_config


@pytest.fixture(scope="module")
def giang_vo() -> Frames:
    return decode(GIANG_VO, 201)  # 0..33 s: the cycle's start, and the van (frame 200)


@pytest.fixture(scope="module")
def patches(giang_vo: Frames) -> dict[str, np.ndarray]:
    """Vehicle pixels: the white van roof of the Giang Vo clip, a red car of the Khuat Duy Tien clip."""
    red_car = decode(KHUAT_DUY_TIEN, 41)[40][1][458:492, 700:820]
    return {"white van": giang_vo[200][1][270:300, 60:180].copy(), "red car": red_car.copy()}


def occlude(t0: float, t1: float, rect: tuple[int, int, int, int], patch: np.ndarray) -> Perturb:
    """Paste `patch`, resized to `rect` (x1, y1, x2, y2), over frames with t0 <= ts <= t1."""
    x1, y1, x2, y2 = rect
    pasted = cv2.resize(patch, (x2 - x1, y2 - y1))

    def apply(ts: float, image: np.ndarray) -> np.ndarray:
        if t0 <= ts <= t1:
            image = image.copy()
            image[y1:y2, x1:x2] = pasted
        return image

    return apply


def read(cfg: LightReaderConfig, frames: Frames, perturb: Perturb | None = None) -> list[SignalReading]:
    reader = LightReader(cfg)
    return [reader.update(perturb(ts, im) if perturb else im, ts) for ts, im in frames]


def red_before(frames: Frames, readings: list[SignalReading], t: float) -> list[float]:
    return [round(ts, 2) for (ts, _), r in zip(frames, readings, strict=True) if ts < t and r.state == "red"]


@pytest.mark.parametrize("patch", ["white van", "red car"])
@pytest.mark.parametrize(
    ("rect", "t0", "t1"),
    [(HEAD, 1.5, 2.6), (HEAD, 2.0, 3.0), (RED_LAMP_HALF, 1.5, 2.6), (RED_LAMP_HALF, 2.0, 3.0)],
    ids=["head-1.5-2.6s", "head-2-3s", "red-lamp-1.5-2.6s", "red-lamp-2-3s"],
)
def test_a_vehicle_in_front_of_the_head_during_amber_is_not_red(
    giang_vo: Frames,
    patches: dict[str, np.ndarray],
    patch: str,
    rect: tuple[int, int, int, int],
    t0: float,
    t1: float,
) -> None:
    """The reviewer's repro: the van over the head for 1.1 s of the amber gap read as red, confidence
    1.0, and the real red that followed inherited its start (red_for_s 2.7 s too large)."""
    cfg = light("hanoi_giangvo_langha.yaml", "near")
    frames = giang_vo[:72]  # the first 12 s
    clean = read(cfg, frames)
    occluded = read(cfg, frames, occlude(t0, t1, rect, patches[patch]))

    assert red_before(frames, clean, AMBER_UNTIL_S) == []
    assert red_before(frames, occluded, AMBER_UNTIL_S) == []
    # The red phase is the clean run's: same start, so every red_for_s is the same.
    late = [(ts, a, b) for (ts, _), a, b in zip(frames, clean, occluded, strict=True) if ts >= 5.0]
    assert {b.state for _, _, b in late} == {"red"}
    assert [b.since_ts for _, _, b in late] == [a.since_ts for _, a, _ in late]
    assert late[0][1].since_ts == pytest.approx(4.167, abs=0.01)


def green_loop(giang_vo: Frames, seconds: float = 12.0, fps: float = 6.0) -> Frames:
    """A long green from real pixels: the clip's green frames 0..6 played forward and back at 6 fps."""
    order = [*range(7), *range(5, 0, -1)]
    return [(k / fps, giang_vo[order[k % len(order)]][1]) for k in range(int(seconds * fps))]


@pytest.mark.parametrize("patch", ["white van", "red car"])
@pytest.mark.parametrize("seconds", [1.0, 3.0])
def test_a_vehicle_in_front_of_the_head_during_green_is_not_red(
    giang_vo: Frames, patches: dict[str, np.ndarray], patch: str, seconds: float
) -> None:
    """Was red for 7 frames (1 s) / 19 frames (3 s), confidence up to 0.71."""
    cfg = light("hanoi_giangvo_langha.yaml", "near")
    frames = green_loop(giang_vo)
    readings = read(cfg, frames, occlude(5.0, 5.0 + seconds, HEAD, patches[patch]))
    assert {r.state for r in readings} <= {"unknown", "green", "amber"}
    assert {r.state for ts, r in zip([f[0] for f in frames], readings, strict=True) if ts > 9.0} == {"green"}


def test_a_glare_spot_on_the_red_lamp_is_not_red(giang_vo: Frames) -> None:
    """A static glare spot saturating the red lamp (and its surroundings) read the whole amber gap as red."""
    h, w = giang_vo[0][1].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    spot = 255.0 * np.exp(-((xx - 626) ** 2 + (yy - 182) ** 2) / (2 * 15.0**2))[..., None]

    def glare(ts: float, image: np.ndarray) -> np.ndarray:
        return np.asarray(np.clip(image + spot, 0, 255), dtype=np.uint8)

    frames = giang_vo[:60]
    readings = read(light("hanoi_giangvo_langha.yaml", "near"), frames, glare)
    assert red_before(frames, readings, AMBER_UNTIL_S) == []


@pytest.mark.parametrize("gain", [2.0, 2.5])
def test_an_over_exposed_head_is_never_green_during_red(gain: float) -> None:
    """Hai Phong main head (red throughout): ×2.5 brightness clipped the unlit green lamp past
    core_value and 17 frames read green, a red-light runner let off."""
    frames = decode(HAIPHONG, 142)
    cfg = light("haiphong_intersection.yaml", "main")

    def brighter(ts: float, image: np.ndarray) -> np.ndarray:
        return np.asarray(np.clip(image.astype(np.float32) * gain, 0, 255), dtype=np.uint8)

    reader = LightReader(cfg)
    states, colours = [], []
    for ts, image in frames:
        states.append(reader.update(brighter(ts, image), ts).state)
        assert reader.last_observation is not None
        colours.append(reader.last_observation.colour)
    assert "green" not in states and "green" not in colours


# --------------------------------------------------------------------------------------------------
# The same on hand-made HSV arrays (OpenCV units); LAMP_CFG: 12x20 roi, red lamp (6, 5), green (6, 15),
# lamp_radius 2.

WHITE = (110, 20, 245)  # a white vehicle: bright, clipped, no colour
RED_PAINT = (175, 150, 150)


@pytest.mark.parametrize(
    ("blobs", "colour", "obscured", "ambiguous"),
    [
        ([(6, 5, 2, (170, 230, 140))], "red", False, False),  # a red lamp in its dark housing
        ([(6, 5, 3, (175, 200, 150)), (6, 5, 2, (25, 140, 255))], "red", False, False),  # core in red fringe
        ([(6, 5, 2, (25, 140, 255))], None, True, False),  # a clipped core and no colour around it
        ([(6, 5, 4, WHITE)], None, True, False),  # a white vehicle over the red lamp
        ([(6, 6, 9, RED_PAINT)], None, True, False),  # a red vehicle over the red lamp and its housing
        ([(6, 10, 30, WHITE)], None, False, True),  # over the whole head: both lamps "lit" alike
    ],
)
def test_only_a_lamp_is_lit(
    blobs: list[tuple[int, int, int, tuple[int, int, int]]],
    colour: str | None,
    obscured: bool,
    ambiguous: bool,
) -> None:
    a = hsv_roi()
    for cx, cy, r, hsv in blobs:
        blob(a, cx, cy, r, hsv)
    obs = LampClassifier(LAMP_CFG).classify_hsv(a)
    assert (obs.colour, obs.obscured, obs.ambiguous) == (colour, obscured, ambiguous)


def test_two_lamps_lit_alike_are_ambiguous_and_a_clearly_brighter_one_wins() -> None:
    a = blob(blob(hsv_roi(), 6, 5, 2, (170, 230, 200)), 6, 15, 2, (85, 230, 190))
    obs = LampClassifier(LAMP_CFG).classify_hsv(a)
    assert (obs.colour, obs.ambiguous) == (None, True)
    a = blob(blob(hsv_roi(), 6, 5, 2, (170, 230, 250)), 6, 15, 2, (85, 230, 120))
    assert LampClassifier(LAMP_CFG).classify_hsv(a).colour == "red"


def test_roi_mode_a_colour_over_much_of_the_head_is_no_lamp() -> None:
    lamp = blob(hsv_roi(), 6, 5, 2, (170, 230, 140))
    assert LampClassifier(ROI_CFG).classify_hsv(lamp).colour == "red"
    car = hsv_roi()
    car[:12] = RED_PAINT  # 60 % of the roi
    obs = LampClassifier(ROI_CFG).classify_hsv(car)
    assert (obs.colour, obs.obscured) == (None, True)
    assert obs.scores[0] == 0.0
    dark = LampClassifier(ROI_CFG).classify_hsv(hsv_roi(fill=DARK))
    assert (dark.colour, dark.obscured) == (None, False)


def test_an_obscured_frame_is_held_like_a_dark_one() -> None:
    """During red, a vehicle passing in front for less than hold_s does not break the phase."""
    cfg = LightReaderConfig(roi=(0, 0, 40, 40), lamps={"red": (20, 10), "green": (20, 30)})
    lit = np.full((40, 40, 3), 30, np.uint8)
    cv2.circle(lit, (20, 10), 5, (20, 20, 220), -1)
    van = lit.copy()
    van[:22] = 240  # a white roof over the red lamp and its housing
    reader = LightReader(cfg)
    readings = [reader.update(lit, i / 10) for i in range(30)]
    readings += [reader.update(van, 3.0 + i / 10) for i in range(5)]
    assert reader.last_observation is not None and reader.last_observation.obscured
    readings += [reader.update(lit, 3.5 + i / 10) for i in range(10)]
    assert {r.state for r in readings[5:]} == {"red"}
    assert {r.since_ts for r in readings[5:]} == {0.0}


# --------------------------------------------------------------------------------------------------
# A red's start time is not carried across another colour, nor from a red seen only briefly.


@pytest.mark.parametrize(
    ("name", "segments", "t", "since"),
    [
        # The repro's sequence: green, 0.3 s gap, a vehicle read as red for 1 s, gap, the real red.
        (
            "a short red does not date the next",
            [("G", 2), (".", 0.3), ("R", 1), (".", 1.5), ("R", 2)],
            5.5,
            4.8,
        ),
        ("nor across green", [("R", 3), (".", 0.8), ("G", 0.5), ("R", 2)], 5.0, 4.3),
        ("nor across amber", [("R", 3), (".", 0.8), ("A", 0.5), ("R", 2)], 5.0, 4.3),
        ("a long red occluded keeps its start", [("R", 3), (".", 1.5), ("R", 2)], 5.5, 0.0),
        ("a red seen for resume_min_s keeps it", [("R", 1.6), (".", 1.0), ("R", 2)], 3.6, 0.0),
    ],
)
def test_resume_only_straight_across_a_gap_after_a_real_red(
    name: str, segments: list[tuple[str, float]], t: float, since: float
) -> None:
    r = at(track(segments, TRACK_CFG), t)
    assert (r.state, r.since_ts) == pytest.approx(("red", since)), f"{name}: {r}"


def test_resume_min_s_zero_keeps_any_red() -> None:
    cfg = TRACK_CFG.model_copy(update={"resume_min_s": 0.0})
    r = at(track([("G", 2), (".", 0.3), ("R", 1), (".", 1.5), ("R", 2)], cfg), 5.5)
    assert (r.state, r.since_ts) == pytest.approx(("red", 2.3))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lamp_contrast": 0.9}, "greater than or equal to 1"),
        ({"lamps": {"red": [10, 10]}, "lamp_radius": 3, "housing_radius": 4}, "at least lamp_radius \\+ 2"),
        ({"max_roi_fraction": 0.01}, "above min_roi_fraction"),
        ({"resume_min_s": -1}, "greater than or equal to 0"),
    ],
)
def test_config_rejects(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LightReaderConfig.model_validate({"roi": [0, 0, 20, 20], **changes})
