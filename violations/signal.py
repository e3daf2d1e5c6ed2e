"""Traffic-light state for the rules: red / amber / green / unknown at every frame, and since when.

Three layers, each usable alone:

- `LampClassifier`: one frame → which lamp is lit. HSV of a small region of interest (the signal
  head); either the share of lit pixels per colour in the whole ROI, or — more robust, when the
  scene gives lamp positions — the share of lit pixels in a small disc around each lamp. Hue ranges
  are configurable per camera because cameras disagree about colour (some render red as orange),
  and an over-exposed lamp core (clipped to white/yellow) counts as lit at its lamp position
  whatever its hue. Something bright at a lamp is not enough: in lamp mode the lamp must stand out
  from the housing around it and from the other lamps, and show its colour, which must end around
  it (`lamp_contrast`); in ROI mode a colour may not cover much of the head (`max_roi_fraction`).
  A vehicle in front of the head, glare or over-exposure makes the frame `obscured` instead of lit.
- `PhaseTracker`: per-frame colours → a debounced phase with `since_ts`. A new colour must be seen
  for `confirm_frames` frames spanning `confirm_s` before it is accepted (and is then dated back to
  its first frame); a lit lamp survives unlit frames for `hold_s` (LED PWM flicker makes cameras
  sample lamps dark); an unlit gap after green shorter than `amber_max_s` is amber (many cameras
  render the amber lamp poorly); a state seen again after a short unlit gap (an occlusion) keeps its
  start time, if nothing else was seen in between and it had lasted `resume_min_s`.
- `LightReader` (classifier + tracker for one camera) and `SignalReader`, which prefers an external
  controller feed (`violations.signal_feed`) and falls back to the camera when the feed goes stale.

`SignalReading.since_ts` is in frame time (`Frame.ts`); for red, ``red_for_s = ts - since_ts``.
OpenCV is imported when a classifier is built, not at import time, so `LightReaderConfig` (part of
scene files) can be validated where OpenCV is not installed.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from violations.signal_feed import SignalError, SignalSource
from violations.types import SignalReading

logger = logging.getLogger(__name__)

Colour = Literal["red", "amber", "green"]
#: Order of colours in `LampObservation.scores`.
COLOURS: tuple[Colour, ...] = ("red", "amber", "green")

Hue = Annotated[int, Field(ge=0, le=179)]
#: Inclusive OpenCV hue range (0..179, i.e. degrees / 2); lo > hi wraps through 0, e.g. (170, 8).
HueRange = tuple[Hue, Hue]
Coord = Annotated[int, Field(ge=0, le=16384)]
Point = tuple[Coord, Coord]

# Codes of the per-frame outcome in the tracker's window (indices 0..2 are COLOURS).
_UNLIT = 3
_AMBIGUOUS = 4
# Frame times are floats from containers (1/6 s steps): compare durations with a little slack.
_EPS = 1e-6


class LampPoints(BaseModel):
    """Frame-pixel centres of the lamps of one signal head; give the lamps you can see."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red: Point | None = Field(None, description="Centre of the red lamp, x, y in frame pixels.")
    amber: Point | None = Field(None, description="Centre of the amber lamp, x, y in frame pixels.")
    green: Point | None = Field(None, description="Centre of the green lamp, x, y in frame pixels.")

    @model_validator(mode="after")
    def _at_least_one(self) -> LampPoints:
        if self.red is None and self.amber is None and self.green is None:
            raise ValueError("give at least one lamp point (red, amber or green)")
        return self

    def items(self) -> list[tuple[Colour, Point]]:
        """(colour, point) of the lamps given, in `COLOURS` order."""
        pts = (self.red, self.amber, self.green)
        return [(c, p) for c, p in zip(COLOURS, pts, strict=True) if p is not None]


class LightReaderConfig(BaseModel):
    """How one camera's view of one signal head is read. Pixel values are in the frame's resolution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roi: tuple[Coord, Coord, Coord, Coord] = Field(
        description="Signal head region x1, y1, x2, y2 in frame pixels (x2, y2 exclusive)."
    )
    lamps: LampPoints | None = Field(
        None,
        description="Lamp centres. When given, only discs around them are sampled and a lamp's colour "
        "comes from its position: more robust than hue alone (red cars, countdown digits, glare).",
    )
    lamp_radius: int = Field(3, ge=1, le=20, description="Radius in pixels of the disc sampled per lamp.")
    red_hues: tuple[HueRange, ...] = Field(
        ((0, 10), (160, 179)),
        description="OpenCV hue ranges (0..179) counted as red; red wraps around 0. Cameras that render "
        "red as orange need about (0, 35) here and no overlapping amber range.",
    )
    amber_hues: tuple[HueRange, ...] = Field(
        ((15, 35),), description="Hue ranges counted as amber; empty when the camera cannot tell it from red."
    )
    green_hues: tuple[HueRange, ...] = Field(
        ((40, 100),), description="Hue ranges counted as green (LED green is often cyan-green, ~90)."
    )
    min_value: int = Field(90, ge=1, le=255, description="Minimum HSV value (brightness) of a lit pixel.")
    min_saturation: int = Field(90, ge=0, le=255, description="Minimum HSV saturation of a lit pixel.")
    core_value: int | None = Field(
        230,
        ge=1,
        le=255,
        description="Lamp mode: a pixel at least this bright inside a lamp disc is lit whatever its hue and "
        "saturation (over-exposed LED cores clip to white or yellow). None disables.",
    )
    clip_value: int | None = Field(
        250,
        ge=1,
        le=255,
        description="ROI mode: pixels at least this bright are left out of the hue vote (a clipped "
        "core's hue is the sensor's, not the lamp's). None keeps them.",
    )
    lamp_contrast: float = Field(
        1.3,
        ge=1,
        le=10,
        description="Lamp mode: a lamp is lit only when its lit pixels are at least this many times as "
        "bright (HSV value) as the housing around it (a quarter of some ring around the disc) and as any "
        "other lamp that looks lit. A vehicle in front of the head, glare or over-exposure brightens lamp "
        "and housing together: such a frame reads as unknown.",
    )
    housing_radius: int | None = Field(
        None,
        ge=3,
        le=60,
        description="Lamp mode: outer radius in pixels of the rings around each lamp disc where the housing "
        "(and the end of the lamp's colour) is looked for, clipped to the roi. Default 4 × lamp_radius + 2, "
        "enough to reach past a lamp about twice the disc's size. Give the roi some housing around each "
        "lamp; raise this for a lamp whose glow at night spreads further.",
    )
    min_lamp_fraction: float = Field(
        0.3, gt=0, le=1, description="Share of a lamp disc that must be lit for the lamp to count as on."
    )
    min_roi_fraction: float = Field(
        0.01, gt=0, le=1, description="ROI mode: share of ROI pixels of one colour for that colour to count."
    )
    max_roi_fraction: float = Field(
        0.3,
        gt=0,
        le=1,
        description="ROI mode: a colour covering more than this share of the ROI is a vehicle or a sign in "
        "front of the head, not a lamp (the frame reads as unknown). A lamp is a small part of its head: "
        "draw the roi around the whole head.",
    )
    ambiguity_ratio: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Two colours both above threshold with the weaker at least this share of the stronger: "
        "the frame is ambiguous (treated as unlit).",
    )
    confirm_frames: int = Field(
        2, ge=1, le=100, description="Frames a new colour must be seen before it is accepted."
    )
    confirm_s: float = Field(
        0.3, ge=0, le=5, description="Time a new colour must span before it is accepted (dated back)."
    )
    hold_s: float = Field(
        0.6,
        ge=0,
        le=10,
        description="A lit lamp survives unlit frames for this long (LED PWM flicker, brief occlusion).",
    )
    amber_max_s: float = Field(
        4.0,
        ge=0,
        le=15,
        description="An unlit gap after green (or after a seen amber) is amber for at most this long, then "
        "unknown; cameras often render the amber lamp dark.",
    )
    resume_s: float = Field(
        3.0,
        ge=0,
        le=30,
        description="A state seen again after an unlit gap no longer than this keeps its first since_ts "
        "(an occluded lamp, not a new phase), if it had lasted resume_min_s before the gap.",
    )
    resume_min_s: float = Field(
        1.5,
        ge=0,
        le=30,
        description="A state seen for less than this before an unlit gap starts afresh when seen again: a "
        "short red is more likely a misreading (a red vehicle, glare) than a phase, and must not date the "
        "red that follows.",
    )
    confidence_window_s: float = Field(
        1.0, gt=0, le=30, description="Recent time over which the reading's confidence is measured."
    )

    @model_validator(mode="after")
    def _geometry(self) -> LightReaderConfig:
        x1, y1, x2, y2 = self.roi
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"roi must be x1, y1, x2, y2 with x2 > x1 and y2 > y1, got {list(self.roi)}")
        if self.lamps is not None:
            r = self.lamp_radius
            for colour, (x, y) in self.lamps.items():
                if not (x1 <= x - r and x + r < x2 and y1 <= y - r and y + r < y2):
                    raise ValueError(
                        f"lamps.{colour} disc ({x}, {y}) radius {r} must lie inside roi {list(self.roi)}"
                    )
        if self.housing_radius is not None and self.housing_radius < self.lamp_radius + 2:
            raise ValueError(
                f"housing_radius ({self.housing_radius}) must be at least lamp_radius + 2 "
                f"({self.lamp_radius + 2}): the housing lies around the disc"
            )
        if self.max_roi_fraction <= self.min_roi_fraction:
            raise ValueError(
                f"max_roi_fraction ({self.max_roi_fraction}) must be above min_roi_fraction "
                f"({self.min_roi_fraction})"
            )
        return self


@dataclass(frozen=True, slots=True)
class LampObservation:
    """What one frame shows.

    Attributes:
        colour: the lit colour, or None when no lamp is lit or the frame is ambiguous or obscured.
        scores: lit share per colour in `COLOURS` order (of the lamp disc, or of the ROI), counting only
            lamps that stand out from the housing (0 for the others).
        ambiguous: two colours were lit about equally (lamp mode: two or more lamps looked lit and none
            was `lamp_contrast` times as bright as the others).
        obscured: lamp mode: a lamp looked lit but was no lamp (no darker housing around it, not
            brighter than the other lamps, no colour, or a colour that does not end around it); ROI
            mode: a colour covered more than `max_roi_fraction` of the ROI. A vehicle in front of the
            head, glare, over-exposure. The tracker treats it like an ambiguous frame.
    """

    colour: Colour | None
    scores: tuple[float, float, float]
    ambiguous: bool = False
    obscured: bool = False


def hue_lut(ranges: tuple[tuple[int, int], ...]) -> npt.NDArray[np.bool_]:
    """(256,) bool lookup table: True at the hues inside any of `ranges` (wrapping when lo > hi).

    Indices 180..255 (not produced by OpenCV's 8-bit HSV) stay False.
    """
    lut = np.zeros(256, dtype=bool)
    for lo, hi in ranges:
        if lo <= hi:
            lut[lo : hi + 1] = True
        else:
            lut[lo:180] = True
            lut[: hi + 1] = True
    return lut


Pixels = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]

# Lamp mode: rings around each disc, _RING_WIDTH pixels wide; a ring with fewer pixels inside the roi
# than _MIN_RING_PIXELS says too little and is left out.
_RING_WIDTH = 2
_MIN_RING_PIXELS = 8
# Housing: at least this share of some ring is darker than the lamp by lamp_contrast. A quarter, not
# half: a lamp as wide as a narrow head has housing only above and below it (sky or wall at its sides).
_HOUSING_SHARE = 0.25
# A lamp's colour: pixels of its hue at min_saturation × _HALO_SATURATION (its fringe around a clipped
# core is paler than the lamp), at least _MIN_HALO_DISCS disc areas of them in the disc and its first two
# rings; and some ring around it less than _MAX_RING_COLOUR of that colour (the lamp ends; a red vehicle
# in front of the head does not).
_HALO_SATURATION = 0.5
_HALO_RINGS = 2
_MIN_HALO_DISCS = 0.5
_MAX_RING_COLOUR = 0.5


@dataclass(frozen=True, slots=True)
class _Lamp:
    """Pixel indices of one lamp in roi coordinates, computed once."""

    colour: int  # index into COLOURS
    disc: Pixels
    ring: Pixels  # every ring's pixels, concatenated, inner ring first
    ring_id: npt.NDArray[np.intp]  # ring index of each ring pixel
    ring_size: npt.NDArray[np.float64]  # pixels per ring
    halo_end: int  # ring pixels before this index belong to the first _HALO_RINGS rings


def _offsets(r_in: int, r_out: int) -> Pixels:
    """(dy, dx) of the pixels with r_in < distance <= r_out from the origin (r_in < 0: the whole disc)."""
    dy, dx = np.mgrid[-r_out : r_out + 1, -r_out : r_out + 1]
    d2 = dx * dx + dy * dy
    inside = (d2 <= r_out * r_out) & (d2 > r_in * r_in if r_in >= 0 else True)
    return dy[inside].astype(np.intp), dx[inside].astype(np.intp)


class LampClassifier:
    """Per-frame lamp colour from the signal head's pixels (no memory between frames).

    Lamp mode: a lamp is lit when at least `min_lamp_fraction` of its disc is lit (its colour, or a
    clipped core) and it stands out as a lamp: its lit pixels are `lamp_contrast` times as bright as the
    housing (a quarter of some ring around the disc) and as every other lamp disc; its colour shows in
    or around the disc; and some ring around it is mostly not of its colour. A white vehicle or glare on
    the lamp (no colour), a red vehicle (its colour does not end, nothing darker around), over-exposure
    (everything bright) make the frame `obscured` instead. ROI mode votes on the hue of lit pixels; a
    colour covering more than `max_roi_fraction` of the ROI is obscured.

    Raises:
        ImportError: OpenCV is not installed (needed for the BGR → HSV conversion).
    """

    def __init__(self, config: LightReaderConfig) -> None:
        import cv2  # here, not at module level: the config must import without OpenCV

        self._cv2: Any = cv2
        self.config = config
        self._luts = np.stack(
            [hue_lut(config.red_hues), hue_lut(config.amber_hues), hue_lut(config.green_hues)]
        )
        x1, y1, x2, y2 = config.roi
        self._roi = (x1, y1, x2, y2)
        self._area = (x2 - x1) * (y2 - y1)
        # Pixel indices once; per frame only fancy indexing of a few hundred pixels per lamp.
        self._lamps = [
            self._lamp(COLOURS.index(colour), x - x1, y - y1)
            for colour, (x, y) in (config.lamps.items() if config.lamps is not None else [])
        ]

    def _lamp(self, colour: int, cx: int, cy: int) -> _Lamp:
        cfg = self.config
        r = cfg.lamp_radius
        outer = cfg.housing_radius if cfg.housing_radius is not None else 4 * r + 2
        h, w = cfg.roi[3] - cfg.roi[1], cfg.roi[2] - cfg.roi[0]
        dy, dx = _offsets(-1, r)
        rings: list[Pixels] = []
        halo_end = 0
        for k, inner in enumerate(range(r, outer, _RING_WIDTH)):
            ry, rx = _offsets(inner, min(inner + _RING_WIDTH, outer))
            ys, xs = ry + cy, rx + cx
            ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
            if np.count_nonzero(ok) >= _MIN_RING_PIXELS:
                rings.append((ys[ok], xs[ok]))
                if k < _HALO_RINGS:
                    halo_end += int(np.count_nonzero(ok))
        if not rings:
            logger.warning(
                "signal roi %s leaves no housing around the %s lamp: a vehicle or glare in front of it "
                "cannot be told from a lit lamp; draw the roi around the whole head",
                list(cfg.roi),
                COLOURS[colour],
            )
        sizes = [len(ys) for ys, _ in rings]
        return _Lamp(
            colour=colour,
            disc=(dy + cy, dx + cx),
            ring=(
                np.concatenate([ys for ys, _ in rings]) if rings else np.zeros(0, np.intp),
                np.concatenate([xs for _, xs in rings]) if rings else np.zeros(0, np.intp),
            ),
            ring_id=np.repeat(np.arange(len(rings), dtype=np.intp), sizes),
            ring_size=np.asarray(sizes, dtype=np.float64),
            halo_end=halo_end,
        )

    def crop(self, image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The ROI of a frame, (y2 - y1, x2 - x1, 3) uint8, a view.

        Raises:
            SignalError: not an (H, W, 3) uint8 image, or the ROI is outside it.
        """
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise SignalError(
                f"expected an (H, W, 3) uint8 BGR frame, got {image_bgr.shape} {image_bgr.dtype}"
            )
        x1, y1, x2, y2 = self._roi
        h, w = image_bgr.shape[:2]
        if x2 > w or y2 > h:
            raise SignalError(f"signal roi {list(self._roi)} lies outside the {w}x{h} frame")
        return image_bgr[y1:y2, x1:x2]

    def classify_bgr(self, image_bgr: npt.NDArray[np.uint8]) -> LampObservation:
        """Classify a whole BGR frame (H, W, 3) uint8 by its ROI.

        Raises:
            SignalError: see `crop`.
        """
        hsv = self._cv2.cvtColor(self.crop(image_bgr), self._cv2.COLOR_BGR2HSV)
        return self.classify_hsv(hsv)

    def classify_hsv(self, hsv: npt.NDArray[np.uint8]) -> LampObservation:
        """Classify the ROI given as OpenCV 8-bit HSV, (y2 - y1, x2 - x1, 3) uint8 (H in 0..179).

        Raises:
            SignalError: the array does not have the ROI's shape.
        """
        x1, y1, x2, y2 = self._roi
        if hsv.shape != (y2 - y1, x2 - x1, 3):
            raise SignalError(f"expected the ROI as ({y2 - y1}, {x2 - x1}, 3) HSV, got {hsv.shape}")
        cfg = self.config
        tied = False
        if self._lamps:
            scores, obscured, tied = self._lamp_scores(hsv)
            threshold = cfg.min_lamp_fraction
        else:
            scores, obscured = self._roi_scores(hsv)
            threshold = cfg.min_roi_fraction
        order = np.argsort(scores)[::-1]
        best, second = float(scores[order[0]]), float(scores[order[1]])
        out = (float(scores[0]), float(scores[1]), float(scores[2]))
        if best < threshold:
            return LampObservation(None, out, ambiguous=tied, obscured=obscured and not tied)
        if second >= threshold and second >= cfg.ambiguity_ratio * best:
            return LampObservation(None, out, ambiguous=True)
        return LampObservation(COLOURS[int(order[0])], out)

    def _lamp_scores(self, hsv: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float64], bool, bool]:
        """Lit share per colour of the lamps that stand out; whether a lamp looked lit but did not stand
        out; whether two or more lamps looked lit and none stood out (lit about equally)."""
        cfg = self.config
        n = len(self._lamps)
        share = np.zeros(n)
        lit_value = np.zeros(n)  # mean value of a lamp's lit pixels
        disc_value = np.zeros(n)  # mean value of its whole disc
        for i, lamp in enumerate(self._lamps):
            px = hsv[lamp.disc]
            v = px[:, 2]
            lit = (v >= cfg.min_value) & (px[:, 1] >= cfg.min_saturation) & self._luts[lamp.colour][px[:, 0]]
            if cfg.core_value is not None:
                lit |= v >= cfg.core_value
            count = np.count_nonzero(lit)
            share[i] = count / lit.size
            disc_value[i] = v.mean()
            if count:
                lit_value[i] = v[lit].mean()
        looks_lit = share >= cfg.min_lamp_fraction
        scores = np.zeros(3, dtype=np.float64)
        obscured = False
        for i in map(int, np.flatnonzero(looks_lit)):
            lamp = self._lamps[i]
            # Another lamp that looks lit too must be clearly dimmer (an over-exposed head clips the
            # unlit lamps as well).
            rivals = disc_value[looks_lit & (np.arange(n) != i)]
            if lit_value[i] >= cfg.lamp_contrast * rivals.max(initial=0.0) and self._stands_out(
                hsv, lamp, lit_value[i]
            ):
                scores[lamp.colour] = max(scores[lamp.colour], share[i])
            else:
                obscured = True
        tied = obscured and not scores.any() and np.count_nonzero(looks_lit) > 1
        return scores, obscured, bool(tied)

    def _stands_out(self, hsv: npt.NDArray[np.uint8], lamp: _Lamp, lit_value: float) -> bool:
        """Housing darker than the lamp around it, the lamp's colour at it and ending around it."""
        if not lamp.ring_size.size:
            return True  # no housing inside the roi to compare with (warned at construction)
        cfg = self.config
        k = cfg.lamp_contrast
        ring = hsv[lamp.ring]
        v = ring[:, 2].astype(np.float64)
        quarter = _HOUSING_SHARE * lamp.ring_size
        if not np.any(np.bincount(lamp.ring_id, v * k <= lit_value) >= quarter):
            return False
        colour = (
            (v >= cfg.min_value)
            & (ring[:, 1] >= cfg.min_saturation * _HALO_SATURATION)
            & self._luts[lamp.colour][ring[:, 0]]
        )
        # The colour ends around the lamp, or its glow fades (a lamp blooming at night); a vehicle of
        # the lamp's colour does neither.
        ends = np.any(np.bincount(lamp.ring_id, colour) < _MAX_RING_COLOUR * lamp.ring_size)
        if not ends and not np.any(np.bincount(lamp.ring_id, v * (k * k) <= lit_value) >= quarter):
            return False
        disc = hsv[lamp.disc]
        in_disc = (
            (disc[:, 2] >= cfg.min_value)
            & (disc[:, 1] >= cfg.min_saturation * _HALO_SATURATION)
            & self._luts[lamp.colour][disc[:, 0]]
        )
        halo = np.count_nonzero(in_disc) + np.count_nonzero(colour[: lamp.halo_end])
        return bool(halo >= _MIN_HALO_DISCS * len(disc))

    def _roi_scores(self, hsv: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float64], bool]:
        """Share of the ROI per colour; whether a colour covered too much of it to be a lamp."""
        cfg = self.config
        v = hsv[..., 2]
        vote = (v >= cfg.min_value) & (hsv[..., 1] >= cfg.min_saturation)
        if cfg.clip_value is not None:
            # A clipped core's hue is the sensor's, not the lamp's (red LEDs clip to yellow-white).
            vote &= v < cfg.clip_value
        hist = np.bincount(hsv[..., 0][vote], minlength=256)
        scores: npt.NDArray[np.float64] = (self._luts @ hist[:256]) / self._area
        # A lamp is a small part of its head; a colour over much of it is a vehicle or sign in front.
        large = scores > cfg.max_roi_fraction
        scores[large] = 0.0
        return scores, bool(large.any())


#: No frames at all for longer than this (and than `resume_s`) is an outage: the phase starts over.
_OUTAGE_S = 2.0


class PhaseTracker:
    """Debounces per-frame colours into a signal phase with its start time (pure, no pixels).

    Feed it one observation per frame in time order with `step`. See the module docstring for the
    rules; the numbers come from `LightReaderConfig` (confirm_frames, confirm_s, hold_s, amber_max_s,
    resume_s, resume_min_s, confidence_window_s).

    Confidence: for a seen state, the share of the recent window that shows it, unlit frames
    counting half; 0.5 for amber inferred from an unlit gap; 0 for unknown.
    """

    def __init__(self, config: LightReaderConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new stream, or time went backwards)."""
        self._last_ts: float | None = None
        self._lit: Colour | None = None  # accepted colour, seen within hold_s
        self._lit_since = 0.0
        self._lit_last = 0.0
        self._gap_start: float | None = None  # first frame after _lit_last not showing _lit
        self._unlit_since = 0.0  # start of the current unknown/inferred stretch
        self._amber_since: float | None = None  # start of the current amber phase (seen or inferred)
        self._prev: tuple[Colour, float, float] | None = None  # ended phase: colour, since, last seen
        self._cand: Colour | None = None
        self._cand_start = 0.0
        self._cand_last = 0.0
        self._cand_n = 0
        self._window: deque[tuple[float, int]] = deque()
        self._counts = [0, 0, 0, 0, 0]

    @property
    def lit(self) -> Colour | None:
        """The colour currently accepted as seen (None in a gap)."""
        return self._lit

    def step(self, colour: Colour | None, ts: float, *, ambiguous: bool = False) -> SignalReading:
        """Add one frame's observation and return the reading at `ts`.

        Args:
            colour: the frame's lit colour, None when unlit or ambiguous.
            ts: frame time in seconds; non-decreasing (a step back resets the tracker, with a warning).
            ambiguous: the frame was ambiguous rather than unlit (only affects confidence).
        """
        cfg = self.config
        if self._last_ts is not None and ts - self._last_ts > max(cfg.resume_s, _OUTAGE_S):
            # No frames at all for longer than an unlit gap may last and keep its phase (a camera
            # reconnecting): what the light did meanwhile is unknown, so a colour seen now is a new
            # phase, dated from now, not the one seen before the outage.
            logger.info("signal: no frames from %.3f to %.3f s; state reset", self._last_ts, ts)
            self.reset()
        if self._last_ts is None or ts < self._last_ts:
            if self._last_ts is not None:
                logger.warning("signal: time went back from %.3f to %.3f s; state reset", self._last_ts, ts)
                self.reset()
            self._unlit_since = ts
        self._last_ts = ts
        code = COLOURS.index(colour) if colour is not None else (_AMBIGUOUS if ambiguous else _UNLIT)
        self._push(ts, code)

        if colour is not None and colour == self._lit:
            self._lit_last = ts
            self._gap_start = None
            self._cand = None
        else:
            if self._lit is not None and self._gap_start is None:
                self._gap_start = ts
            if colour is not None:
                # Unlit frames longer than hold_s already dropped the candidate (below).
                if self._cand == colour:
                    self._cand_n += 1
                    self._cand_last = ts
                else:
                    self._cand, self._cand_start, self._cand_last, self._cand_n = colour, ts, ts, 1
                if self._cand_n >= cfg.confirm_frames and ts - self._cand_start >= cfg.confirm_s - _EPS:
                    self._accept(colour, self._cand_start, ts)
            elif self._cand is not None and ts - self._cand_last > cfg.hold_s + _EPS:
                self._cand = None

        if self._lit is not None and ts - self._lit_last > cfg.hold_s + _EPS:
            self._end_lit()
        return self._reading(ts)

    def _accept(self, colour: Colour, start: float, ts: float) -> None:
        since = start
        amber = self._amber_since
        if (
            colour == "amber"
            and self._lit is None
            and amber is not None
            and start - amber <= self.config.amber_max_s
        ):
            since = amber  # the inferred amber gap and the seen amber are one phase
        elif self._prev is not None and self._resumes(self._prev, colour, start):
            since = self._prev[1]
        if self._lit is not None:
            self._prev = (self._lit, self._lit_since, self._lit_last)
        self._lit, self._lit_since, self._lit_last = colour, since, ts
        self._gap_start = None
        self._cand = None
        self._amber_since = since if colour == "amber" else None

    def _resumes(self, prev: tuple[Colour, float, float], colour: Colour, start: float) -> bool:
        """Whether `colour`, seen again from `start`, continues `prev`, the phase that ended last.

        Only straight across an unlit gap (no other colour accepted since: red, then green or amber,
        then red is a new red), a gap of at most resume_s, after a phase seen for at least resume_min_s
        (a red vehicle or glare read as red for a moment must not date the red that follows).
        """
        return (
            self._lit is None
            and prev[0] == colour
            and start - prev[2] <= self.config.resume_s
            and prev[2] - prev[1] >= self.config.resume_min_s - _EPS
        )

    def _end_lit(self) -> None:
        assert self._lit is not None and self._gap_start is not None
        colour = self._lit
        self._prev = (colour, self._lit_since, self._lit_last)
        self._unlit_since = self._gap_start
        if colour == "green":
            self._amber_since = self._gap_start
        elif colour != "amber":
            self._amber_since = None
        self._lit = None

    def _reading(self, ts: float) -> SignalReading:
        if self._lit is not None:
            n = len(self._window)
            agree = self._counts[COLOURS.index(self._lit)]
            unlit = self._counts[_UNLIT] + self._counts[_AMBIGUOUS]
            return SignalReading(self._lit, self._lit_since, (agree + 0.5 * unlit) / n)
        if self._amber_since is not None:
            # The gap ends where the next lamp was first seen, so a pending confirmation does not
            # turn a normal amber into unknown.
            end = self._cand_start if self._cand is not None else ts
            if end - self._amber_since <= self.config.amber_max_s:
                return SignalReading("amber", self._amber_since, 0.5)
        return SignalReading("unknown", self._unlit_since, 0.0)

    def _push(self, ts: float, code: int) -> None:
        self._window.append((ts, code))
        self._counts[code] += 1
        horizon = ts - self.config.confidence_window_s
        while self._window[0][0] < horizon:
            _, old = self._window.popleft()
            self._counts[old] -= 1


class LightReader:
    """Reads one signal head from camera frames: `LampClassifier` + `PhaseTracker`.

    Raises:
        ImportError: OpenCV is not installed.
    """

    def __init__(self, config: LightReaderConfig) -> None:
        self.config = config
        self.classifier = LampClassifier(config)
        self.tracker = PhaseTracker(config)
        self.last_observation: LampObservation | None = None

    def update(self, image_bgr: npt.NDArray[np.uint8], ts: float) -> SignalReading:
        """Classify a frame (H, W, 3) uint8 BGR at time `ts` and return the smoothed reading.

        Raises:
            SignalError: not a BGR uint8 frame, or the ROI lies outside it.
        """
        obs = self.classifier.classify_bgr(image_bgr)
        self.last_observation = obs
        return self.tracker.step(obs.colour, ts, ambiguous=obs.ambiguous or obs.obscured)

    def reset(self) -> None:
        """Forget the phase (e.g. after the stream reconnected)."""
        self.tracker.reset()
        self.last_observation = None


SourceName = Literal["feed", "camera", "none"]


class SignalReader:
    """The governing light's state per frame: a controller feed when fresh, else the camera.

    The camera reader is updated on every frame even while the feed is used, so its phase is
    current when the feed goes stale. A feed is stale when it has no reading for the light or its
    last confirmation is older than `stale_s`; the switch is logged once each way.

    Args:
        camera: the camera reader, or None (then a stale feed gives "unknown").
        feed: an external source, or None (camera only).
        light_id: the feed's id of the light that governs this camera.
        stale_s: feed age beyond which the camera is used.
        camera_id: for log lines.

    Raises:
        ValueError: neither camera nor feed, or stale_s <= 0.
    """

    def __init__(
        self,
        camera: LightReader | None = None,
        feed: SignalSource | None = None,
        *,
        light_id: str = "main",
        stale_s: float = 5.0,
        camera_id: str = "",
    ) -> None:
        if camera is None and feed is None:
            raise ValueError("a SignalReader needs a camera reader, a feed, or both")
        if stale_s <= 0:
            raise ValueError(f"stale_s must be > 0, got {stale_s}")
        self.camera = camera
        self.feed = feed
        self.light_id = light_id
        self.stale_s = stale_s
        self._camera_id = camera_id
        self._source: SourceName = "none"
        self._stale_since: float | None = None

    @property
    def source(self) -> SourceName:
        """Where the last reading came from."""
        return self._source

    def update(self, image_bgr: npt.NDArray[np.uint8] | None, ts: float) -> SignalReading:
        """The reading at frame time `ts`; `image_bgr` (H, W, 3) uint8 feeds the camera reader.

        With `image_bgr` None (no frame, e.g. a feed-only light) the camera reader is not updated
        and cannot stand in for a stale feed: the reading is then unknown.

        Raises:
            SignalError: see `LightReader.update`.
        """
        cam = self.camera.update(image_bgr, ts) if self.camera is not None and image_bgr is not None else None
        if self.feed is not None:
            fr = self.feed.reading(self.light_id, ts)
            if fr is not None and ts - fr.updated_ts <= self.stale_s:
                if self._source != "feed" and self._stale_since is not None:
                    logger.info(
                        "camera %s: signal feed for light %s is fresh again", self._camera_id, self.light_id
                    )
                self._source, self._stale_since = "feed", None
                return SignalReading(fr.state, fr.since_ts, 1.0)
            if self._stale_since is None:
                self._stale_since = ts
                age = "no reading" if fr is None else f"last update {ts - fr.updated_ts:.1f} s ago"
                logger.warning(
                    "camera %s: signal feed for light %s is stale (%s); %s",
                    self._camera_id,
                    self.light_id,
                    age,
                    "using the camera" if self.camera is not None else "state unknown",
                )
        if cam is not None:
            self._source = "camera"
            return cam
        self._source = "none"
        since = self._stale_since if self._stale_since is not None else ts
        return SignalReading("unknown", since, 0.0)
