"""Plate background colour from pixels: white (private), yellow (commercial), blue (state), red (military).

The characters are dark on white and yellow plates and white on blue and red ones, so the background
is whichever of the two tone groups covers more of the plate. Its median hue and saturation decide the
colour. (No grey-world white balance: on a crop that is mostly plate it would cancel the very colour
being measured; balance, if needed, belongs to the whole frame.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plates.errors import PlateError
from plates.grammar import PlateColour

# OpenCV hue is 0..179. Ranges are wide: camera white balance and LED lighting shift hues a lot.
_YELLOW = (15, 40)
_BLUE = (90, 135)
_RED_LOW, _RED_HIGH = 8, 170
_MIN_SATURATION = (
    100  # below this the background is white/grey (aged white plates reach ~75 under warm light)
)


@dataclass(frozen=True, slots=True)
class ColourReading:
    """The decided colour and how clearly (share of background pixels agreeing, 0..1)."""

    colour: PlateColour
    confidence: float
    hue: float
    saturation: float


def plate_colour(crop: npt.NDArray[np.uint8]) -> ColourReading:
    """Decide the background colour of a BGR plate crop (N, M, 3).

    Raises:
        PlateError: the crop is empty or not a colour image.
    """
    import cv2

    if not isinstance(crop, np.ndarray) or crop.ndim != 3 or crop.shape[2] != 3 or crop.size == 0:
        shape = getattr(crop, "shape", type(crop).__name__)
        raise PlateError(f"plate crop must be a non-empty (H, W, 3) image, got {shape}")
    h, w = crop.shape[:2]
    # the centre: a crop's border is often the car body or the plate frame
    inner = np.ascontiguousarray(crop[h // 5 : h - h // 5 or h, w // 8 : w - w // 8 or w])
    hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV)
    grey = cv2.cvtColor(inner, cv2.COLOR_BGR2GRAY)
    # Characters and background are the two tone groups; the background is the larger one, whether
    # dark-on-light (white, yellow plates) or light-on-dark (blue, red plates).
    _, split = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light = split.reshape(-1) > 0
    pixels = hsv.reshape(-1, 3).astype(np.float32)
    background = pixels[light] if light.mean() >= 0.5 else pixels[~light]
    if len(background) == 0:
        background = pixels
    hue = float(np.median(background[:, 0]))
    sat = float(np.median(background[:, 1]))
    if sat < _MIN_SATURATION:
        agree = float(np.mean(background[:, 1] < _MIN_SATURATION))
        return ColourReading(PlateColour.WHITE, round(agree, 3), hue, sat)
    hues = background[:, 0]
    saturated = background[:, 1] >= _MIN_SATURATION
    shares = {
        PlateColour.YELLOW: float(np.mean(saturated & (hues >= _YELLOW[0]) & (hues <= _YELLOW[1]))),
        PlateColour.BLUE: float(np.mean(saturated & (hues >= _BLUE[0]) & (hues <= _BLUE[1]))),
        PlateColour.RED: float(np.mean(saturated & ((hues <= _RED_LOW) | (hues >= _RED_HIGH)))),
    }
    colour, share = max(shares.items(), key=lambda kv: kv[1])
    if share < 0.3:
        return ColourReading(PlateColour.WHITE, round(1.0 - share, 3), hue, sat)
    return ColourReading(colour, round(share, 3), hue, sat)
