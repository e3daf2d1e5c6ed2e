"""Traffic-light state for the rules: red / amber / green / unknown at every frame, and since when.

Three layers, each usable alone:

- `LampClassifier`: one frame → which lamp is lit. HSV of a small region of interest (the signal
  head); either the share of lit pixels per colour in the whole ROI, or — more robust, when the
  scene gives lamp positions — the share of lit pixels in a small disc around each lamp. Hue ranges
  are configurable per camera because cameras disagree about colour (some render red as orange),
  and an over-exposed lamp core (clipped to white/yellow) counts as lit at its lamp position
  whatever its hue.
- `PhaseTracker`: per-frame colours → a debounced phase with `since_ts`. A new colour must be seen
  for `confirm_frames` frames spanning `confirm_s` before it is accepted (and is then dated back to
  its first frame); a lit lamp survives unlit frames for `hold_s` (LED PWM flicker makes cameras
  sample lamps dark); an unlit gap after green shorter than `amber_max_s` is amber (many cameras
  render the amber lamp poorly); a state seen again after a short occlusion keeps its start time.
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
    min_lamp_fraction: float = Field(
        0.3, gt=0, le=1, description="Share of a lamp disc that must be lit for the lamp to count as on."
    )
    min_roi_fraction: float = Field(
        0.01, gt=0, le=1, description="ROI mode: share of ROI pixels of one colour for that colour to count."
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
        "(an occluded lamp, not a new phase).",
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
        return self


@dataclass(frozen=True, slots=True)
class LampObservation:
    """What one frame shows.

    Attributes:
        colour: the lit colour, or None when no lamp is lit or the frame is ambiguous.
        scores: lit share per colour in `COLOURS` order (of the lamp disc, or of the ROI).
        ambiguous: two colours were lit about equally.
    """

    colour: Colour | None
    scores: tuple[float, float, float]
    ambiguous: bool = False


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


class LampClassifier:
    """Per-frame lamp colour from the signal head's pixels (no memory between frames).

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
        # Disc offsets once; per frame only fancy indexing of ~30 pixels per lamp.
        r = config.lamp_radius
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        inside = dx * dx + dy * dy <= r * r
        self._lamps: list[tuple[int, npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
        if config.lamps is not None:
            for colour, (x, y) in config.lamps.items():
                ys = (dy[inside] + (y - y1)).astype(np.intp)
                xs = (dx[inside] + (x - x1)).astype(np.intp)
                self._lamps.append((COLOURS.index(colour), ys, xs))

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
        scores = np.zeros(3, dtype=np.float64)
        if self._lamps:
            for ci, ys, xs in self._lamps:
                px = hsv[ys, xs]
                v = px[:, 2]
                lit = (v >= cfg.min_value) & (px[:, 1] >= cfg.min_saturation) & self._luts[ci][px[:, 0]]
                if cfg.core_value is not None:
                    lit |= v >= cfg.core_value
                scores[ci] = np.count_nonzero(lit) / lit.size
            threshold = cfg.min_lamp_fraction
        else:
            v = hsv[..., 2]
            vote = (v >= cfg.min_value) & (hsv[..., 1] >= cfg.min_saturation)
            if cfg.clip_value is not None:
                # A clipped core's hue is the sensor's, not the lamp's (red LEDs clip to yellow-white).
                vote &= v < cfg.clip_value
            hist = np.bincount(hsv[..., 0][vote], minlength=256)
            scores = (self._luts @ hist[:256]) / self._area
            threshold = cfg.min_roi_fraction
        order = np.argsort(scores)[::-1]
        best, second = float(scores[order[0]]), float(scores[order[1]])
        out = (float(scores[0]), float(scores[1]), float(scores[2]))
        if best < threshold:
            return LampObservation(None, out)
        if second >= threshold and second >= cfg.ambiguity_ratio * best:
            return LampObservation(None, out, ambiguous=True)
        return LampObservation(COLOURS[int(order[0])], out)


#: No frames at all for longer than this (and than `resume_s`) is an outage: the phase starts over.
_OUTAGE_S = 2.0


class PhaseTracker:
    """Debounces per-frame colours into a signal phase with its start time (pure, no pixels).

    Feed it one observation per frame in time order with `step`. See the module docstring for the
    rules; the numbers come from `LightReaderConfig` (confirm_frames, confirm_s, hold_s, amber_max_s,
    resume_s, confidence_window_s).

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
        elif (
            self._prev is not None
            and self._prev[0] == colour
            and start - self._prev[2] <= self.config.resume_s
        ):
            since = self._prev[1]
        if self._lit is not None:
            self._prev = (self._lit, self._lit_since, self._lit_last)
        self._lit, self._lit_since, self._lit_last = colour, since, ts
        self._gap_start = None
        self._cand = None
        self._amber_since = since if colour == "amber" else None

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
        return self.tracker.step(obs.colour, ts, ambiguous=obs.ambiguous)

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
