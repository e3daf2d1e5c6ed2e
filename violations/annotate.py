"""Drawing for evidence images (STYLE.md §8): the offending vehicle, scene lines and zones, the light
state, and a caption strip. Pure functions: each returns a new image and never writes into its input.

Colours are fixed so that a reviewer learns them once: the offending vehicle is red, scene lines and
zones are yellow, the light badge has the colour of the light. OpenCV's Hershey fonts draw ASCII only,
so labels stay ASCII (vehicle class, rule id, times); Vietnamese text lives in the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

#: BGR colour of the offending vehicle's box.
VEHICLE_COLOR: tuple[int, int, int] = (0, 0, 255)
#: BGR colour of scene lines and zones.
SCENE_COLOR: tuple[int, int, int] = (0, 255, 255)
#: BGR badge colour per light state.
LIGHT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (0, 0, 230),
    "amber": (0, 170, 255),
    "green": (0, 190, 0),
    "unknown": (128, 128, 128),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def line_thickness(shape: tuple[int, ...]) -> int:
    """Stroke width for an image of `shape` (H, W[, C]): 2 px at 480 p, 3 px at 720 p, 5 px at 1080 p.

    Thick enough to survive JPEG chroma subsampling and to be seen on a phone.
    """
    return max(2, round(min(shape[0], shape[1]) / 220))


def _font_scale(shape: tuple[int, ...]) -> float:
    return max(0.45, min(shape[0], shape[1]) / 900)


def _ascii(text: str) -> str:
    # Hershey fonts render non-ASCII as '?', which would look like a reading error on evidence.
    return text.encode("ascii", "replace").decode("ascii")


def _label(image: Image, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    """Draw `text` on a filled box whose bottom-left corner is near (x, y), kept inside the image."""
    scale = _font_scale(image.shape)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    h, w = image.shape[:2]
    x = int(min(max(0, x), max(0, w - tw - 4)))
    y = int(min(max(th + base + 2, y), h))
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, y - base - 1), _FONT, scale, ink, 1, cv2.LINE_AA)


def draw_vehicle(
    image: Image,
    box_xyxy: Sequence[float],
    label: str | None = None,
    color: tuple[int, int, int] = VEHICLE_COLOR,
) -> Image:
    """A copy of `image` (H, W, 3) with the vehicle box and an optional label above it.

    Args:
        image: BGR uint8 (H, W, 3).
        box_xyxy: x1, y1, x2, y2 in pixels (clipped to the image when drawn).
        label: ASCII text, e.g. ``"#12 motorcycle red_light"``.
        color: BGR box colour.

    Raises:
        ValueError: `box_xyxy` does not have 4 finite values.
    """
    if len(box_xyxy) != 4 or not all(np.isfinite(float(v)) for v in box_xyxy):
        raise ValueError(f"box_xyxy must be 4 finite numbers, got {list(box_xyxy)}")
    out = image.copy()
    x1, y1, x2, y2 = (round(float(v)) for v in box_xyxy)
    cv2.rectangle(out, (x1, y1), (x2, y2), color, line_thickness(out.shape), cv2.LINE_8)
    if label:
        _label(out, _ascii(label), x1, y1 - line_thickness(out.shape), color)
    return out


def draw_polyline(
    image: Image,
    points_xy: Sequence[Sequence[float]],
    closed: bool,
    label: str | None = None,
    color: tuple[int, int, int] = SCENE_COLOR,
) -> Image:
    """A copy of `image` with a line (stop line: 2 points, `closed=False`) or a zone outline
    (polygon, `closed=True`), labelled at its first point.

    Args:
        points_xy: (K, 2) pixel coordinates, K >= 2.

    Raises:
        ValueError: fewer than 2 points, or points not of shape (K, 2).
    """
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 2:
        raise ValueError(f"points_xy must be (K >= 2, 2), got {pts.shape}")
    out = image.copy()
    ipts = np.round(pts).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(out, [ipts], closed, color, line_thickness(out.shape), cv2.LINE_AA)
    if label:
        _label(out, _ascii(label), int(ipts[0, 0, 0]), int(ipts[0, 0, 1]) - 4, color)
    return out


def draw_light_badge(image: Image, state: str, red_for_s: float | None = None) -> Image:
    """A copy of `image` with a badge in the top-right corner: the light state and, on red, for how long.

    Args:
        state: "red", "amber", "green" or "unknown" (anything else is drawn as unknown).
        red_for_s: seconds since the light turned red, shown when `state` is "red".
    """
    out = image.copy()
    text = f"LIGHT {state.upper()}"
    if state == "red" and red_for_s is not None and np.isfinite(red_for_s):
        text += f" {red_for_s:.1f}s"
    color = LIGHT_COLORS.get(state, LIGHT_COLORS["unknown"])
    scale = _font_scale(out.shape)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    _label(out, text, out.shape[1] - tw - 10, th + base + 8, color)
    return out


def caption_height(width: int, height: int, n_lines: int) -> int:
    """Height of the strip `add_caption` appends, rounded so that the total height stays even."""
    (_, th), base = cv2.getTextSize("Ag", _FONT, _font_scale((height, width)), 1)
    strip = n_lines * (th + base + 6) + 4
    return strip + ((height + strip) % 2)


def add_caption(image: Image, lines: Sequence[str]) -> Image:
    """A new image: `image` with a black strip of text lines appended BELOW it (nothing is covered).

    The result has shape (H + caption_height(W, H, len(lines)), W, 3); its height is even so that
    video encoders (4:2:0) accept it.
    """
    h, w = image.shape[:2]
    strip_h = caption_height(w, h, len(lines))
    out = np.zeros((h + strip_h, w, 3), np.uint8)
    out[:h] = image
    scale = _font_scale(image.shape)
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, 1)
    y = h + 2
    for line in lines:
        y += th + base + 6
        cv2.putText(out, _ascii(line), (6, y - base - 3), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def pad_even(image: Image) -> Image:
    """`image` with one black column/row added where its width/height is odd (4:2:0 video needs even)."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    padded = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.asarray(padded, dtype=np.uint8)
