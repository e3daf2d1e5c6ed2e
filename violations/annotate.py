"""Drawing for evidence images (STYLE.md §8): the offending vehicle, scene lines and zones, the light
state, and a caption strip. Pure functions: each returns a new image and never writes into its input.

Colours are fixed so that a reviewer learns them once: the offending vehicle is red, scene lines and
zones are yellow, the light badge has the colour of the light. A box the tracker predicted (the
detector did not see the vehicle in that frame) is drawn dashed, so it is never mistaken for a
detection.

Text: ASCII is drawn with OpenCV's Hershey font. OpenCV cannot draw Vietnamese, so text with other
characters (the few Vietnamese words on evidence images, e.g. "dự đoán", "mất dấu") is drawn with
Pillow and DejaVu Sans (Debian ``fonts-dejavu-core``, the font the notice PDF uses too). Without that
font it is drawn without diacritics ("du doan") and one warning says what to install; never as "?".
"""

from __future__ import annotations

import functools
import logging
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

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
#: Where DejaVu Sans is looked for (Debian/Ubuntu, Fedora/Alpine), for text that is not ASCII.
FONT_FILES: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
)
# Pixel size of DejaVu Sans whose capitals are as tall as the Hershey font's at scale 1.
_TTF_PX_PER_SCALE = 29.0
# Several builders (one per camera) draw on their own worker threads; one font object is shared.
_TTF_LOCK = threading.Lock()


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


def fold_diacritics(text: str) -> str:
    """`text` without diacritics ("mất dấu" → "mat dau", "Đèn" → "Den"): readable Vietnamese where
    no font can draw it."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@functools.lru_cache(maxsize=1)
def _font_file() -> Path | None:
    for path in FONT_FILES:
        if path.is_file():
            return path
    logger.warning(
        "DejaVu Sans not found (%s): Vietnamese text on evidence images is drawn without diacritics; "
        "install fonts-dejavu-core",
        ", ".join(str(p) for p in FONT_FILES),
    )
    return None


@functools.lru_cache(maxsize=16)
def _ttf(px: int) -> Any:
    """DejaVu Sans at `px` pixels (a Pillow FreeTypeFont), or None without the font or Pillow."""
    path = _font_file()
    if path is None:
        return None
    try:
        from PIL import ImageFont
    except ImportError:  # Pillow comes with fpdf2 and supervision; guard anyway
        logger.warning("Pillow is not installed: Vietnamese text on evidence images loses its diacritics")
        return None
    return ImageFont.truetype(str(path), px)


def _text_font(text: str, scale: float) -> tuple[str, Any]:
    """What to draw for `text` and with which TrueType font (None: the Hershey font)."""
    if text.isascii():
        return text, None
    font = _ttf(max(8, round(_TTF_PX_PER_SCALE * scale)))
    if font is None:
        return _ascii(fold_diacritics(text)), None
    return text, font


def text_size(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height above the baseline, depth below it) in pixels of `text` drawn by `put_text`."""
    text, font = _text_font(text, scale)
    if font is None:
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
        return tw, th, base
    with _TTF_LOCK:
        left, top, right, bottom = font.getbbox(text, anchor="ls")
    return int(right - min(left, 0)), int(-top), int(max(bottom, 0))


@functools.lru_cache(maxsize=64)
def _text_mask(text: str, px: int) -> tuple[npt.NDArray[np.float32], int, int]:
    """Coverage 0..1 of `text` in DejaVu Sans at `px` pixels, and the offset of its top-left corner
    from the left end of the baseline. Cached: a clip repeats the same label on every frame (~1 ms
    to render, ~0.05 ms to blend). The arrays are read-only."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    font = _ttf(px)
    with _TTF_LOCK:
        left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor="ls"))
        mask = PILImage.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor="ls")
    alpha = np.asarray(mask, np.float32) / 255.0
    alpha.flags.writeable = False
    return alpha, left, top


def put_text(image: Image, text: str, x: int, y: int, scale: float, color: tuple[int, int, int]) -> None:
    """Draw `text` IN PLACE with the left end of its baseline at (x, y) (as `cv2.putText` does).

    ASCII is drawn with the Hershey font (`scale` as for `cv2.putText`); other text with DejaVu Sans
    of the same capital height, blended anti-aliased, clipped to the image.
    """
    text, font = _text_font(text, scale)
    if font is None:
        cv2.putText(image, text, (x, y), _FONT, scale, color, 1, cv2.LINE_AA)
        return
    alpha, left, top = _text_mask(text, font.size)
    h, w = image.shape[:2]
    x0, y0 = x + left, y + top
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + alpha.shape[1], w), min(y0 + alpha.shape[0], h)
    if xa >= xb or ya >= yb:
        return
    a = alpha[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
    region = image[ya:yb, xa:xb].astype(np.float32)
    ink = np.asarray(color, np.float32)
    image[ya:yb, xa:xb] = np.round(region * (1.0 - a) + ink * a).astype(np.uint8)


def _label(image: Image, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    """Draw `text` on a filled box whose bottom-left corner is near (x, y), kept inside the image."""
    scale = _font_scale(image.shape)
    tw, th, base = text_size(text, scale)
    h, w = image.shape[:2]
    x = int(min(max(0, x), max(0, w - tw - 4)))
    y = int(min(max(th + base + 2, y), h))
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    put_text(image, text, x + 2, y - base - 1, scale, ink)


def _dashed_rectangle(
    image: Image, p1: tuple[int, int], p2: tuple[int, int], color: tuple[int, int, int], thickness: int
) -> None:
    """A rectangle of dashes IN PLACE, about half ink and half gap as seen (a thick line's ends stick
    out by half its width, so dashes are drawn half as long as gaps); every edge starts and ends on a
    dash, so the corners are always drawn."""
    (x1, y1), (x2, y2) = p1, p2
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        length = max(abs(bx - ax), abs(by - ay), 1)
        n = max(1, round((length + 4 * thickness) / (6 * thickness)))  # dashes on this edge
        unit = length / max(3 * n - 2, 1)  # dash 1 unit, gap 2 units
        for k in range(n):
            s0, s1 = 3 * k * unit / length, min((3 * k + 1) * unit / length, 1.0)
            if n == 1:
                s1 = 1.0
            a = (round(ax + (bx - ax) * s0), round(ay + (by - ay) * s0))
            b = (round(ax + (bx - ax) * s1), round(ay + (by - ay) * s1))
            cv2.line(image, a, b, color, thickness, cv2.LINE_8)


def draw_vehicle(
    image: Image,
    box_xyxy: Sequence[float],
    label: str | None = None,
    color: tuple[int, int, int] = VEHICLE_COLOR,
    *,
    predicted: bool = False,
) -> Image:
    """A copy of `image` (H, W, 3) with the vehicle box and an optional label above it.

    Args:
        image: BGR uint8 (H, W, 3).
        box_xyxy: x1, y1, x2, y2 in pixels (clipped to the image when drawn).
        label: text, e.g. ``"#12 motorcycle"`` (Vietnamese is drawn too, see the module docstring).
        color: BGR box colour.
        predicted: the box is the tracker's prediction, not a detection: drawn dashed.

    Raises:
        ValueError: `box_xyxy` does not have 4 finite values.
    """
    if len(box_xyxy) != 4 or not all(np.isfinite(float(v)) for v in box_xyxy):
        raise ValueError(f"box_xyxy must be 4 finite numbers, got {list(box_xyxy)}")
    out = image.copy()
    x1, y1, x2, y2 = (round(float(v)) for v in box_xyxy)
    thickness = line_thickness(out.shape)
    if predicted:
        _dashed_rectangle(out, (x1, y1), (x2, y2), color, thickness)
    else:
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_8)
    if label:
        _label(out, label, x1, y1 - thickness, color)
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
        _label(out, label, int(ipts[0, 0, 0]), int(ipts[0, 0, 1]) - 4, color)
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
        put_text(out, line, 6, y - base - 3, scale, (255, 255, 255))
    return out


def pad_even(image: Image) -> Image:
    """`image` with one black column/row added where its width/height is odd (4:2:0 video needs even)."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    padded = cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.asarray(padded, dtype=np.uint8)
