"""From a plate crop to straight, 48-pixel-high text line images.

The PP-OCR text detector, run on the crop scaled to a short side of ~96 px, draws one band per text
line: two stacked bands on a motorbike plate, one long band on a car plate. Each band becomes a
rotated rectangle (`find_text_boxes`, DB post-processing: threshold, contour, min-area rectangle,
"unclip" growth back to the glyph extent); fragments of one row are merged (`merge_rows`); the one or
two biggest rows are the plate's lines (`select_lines`); each is warped upright to the recogniser's
height (`warp_line`). That corrects rotation per line, which is most of the skew in plate crops, at
the cost of one small detector call.

When the detector finds nothing usable the crop itself is split: one line if it is wide, otherwise
two at the emptiest row of the middle band of the horizontal ink profile (`split_rows_by_profile`).

All functions here are pure and work on numpy arrays; quads are (4, 2) float32 in the order
top-left, top-right, bottom-right, bottom-left, x then y.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

#: Crops at least this wide (width / height) are taken as one-line plates by the fallback split.
ONE_LINE_ASPECT = 2.0
#: Crops lower than this (px) are never split into two lines: each half would be unreadable anyway.
MIN_SPLIT_HEIGHT = 16


@dataclass(frozen=True, slots=True)
class TextBox:
    """A text region: an upright-ordered quad and the mean text probability inside it."""

    quad: FloatArray
    score: float

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of the quad's centre."""
        c = self.quad.mean(axis=0)
        return float(c[0]), float(c[1])

    @property
    def size(self) -> tuple[float, float]:
        """(width, height): lengths of the top and left edges."""
        w = float(np.linalg.norm(self.quad[1] - self.quad[0]))
        h = float(np.linalg.norm(self.quad[3] - self.quad[0]))
        return w, h

    @property
    def area(self) -> float:
        """Width times height."""
        w, h = self.size
        return w * h

    def y_range(self) -> tuple[float, float]:
        """Lowest and highest y of the quad."""
        return float(self.quad[:, 1].min()), float(self.quad[:, 1].max())


def rect_quad(center: tuple[float, float], size: tuple[float, float], angle_deg: float) -> FloatArray:
    """Corners of a rotated rectangle, ordered tl, tr, br, bl with the text axis the more horizontal side.

    Args:
        center: (cx, cy); size: (w, h) along the rectangle's own axes; angle_deg: as `cv2.minAreaRect`.

    Returns:
        (4, 2) float32.
    """
    theta = np.deg2rad(angle_deg)
    ax0 = np.array([np.cos(theta), np.sin(theta)])  # direction of `size[0]`
    ax1 = np.array([-np.sin(theta), np.cos(theta)])  # direction of `size[1]`
    half0, half1 = size[0] / 2.0, size[1] / 2.0
    # The text runs along whichever axis is closer to horizontal, whatever its length.
    if abs(ax0[0]) >= abs(ax1[0]):
        u, a, v, b = ax0, half0, ax1, half1
    else:
        u, a, v, b = ax1, half1, ax0, half0
    if u[0] < 0:
        u = -u
    v = np.array([-u[1], u[0]])  # u turned 90° clockwise on screen: points down the image
    c = np.asarray(center, dtype=np.float64)
    quad = np.stack([c - a * u - b * v, c + a * u - b * v, c + a * u + b * v, c - a * u + b * v])
    return quad.astype(np.float32)


def grow_quad(quad: npt.ArrayLike, along: float, across: float) -> FloatArray:
    """Grow a tl, tr, br, bl rectangle by `along` at each end of its text axis and `across` on
    each long side (negative values shrink it).

    Returns:
        (4, 2) float32.
    """
    q = np.asarray(quad, dtype=np.float64)
    u = q[1] - q[0]
    u = u / max(float(np.linalg.norm(u)), 1e-9)
    v = q[3] - q[0]
    v = v / max(float(np.linalg.norm(v)), 1e-9)
    du, dv = along * u, across * v
    grown = np.stack([q[0] - du - dv, q[1] + du - dv, q[2] + du + dv, q[3] - du + dv])
    return grown.astype(np.float32)


def find_text_boxes(
    prob: npt.ArrayLike,
    thresh: float = 0.3,
    box_thresh: float = 0.5,
    unclip_ratio: float = 1.6,
    min_side: float = 3.0,
    along: float = 1.0,
) -> list[TextBox]:
    """DB post-processing: text regions of a probability map as rotated rectangles.

    Args:
        prob: (h, w) text probability in [0, 1].
        thresh: pixel threshold for the text mask.
        box_thresh: regions whose mean probability is lower are dropped.
        unclip_ratio: the shrunk DB kernel is grown by ``area * ratio / perimeter`` on every side,
            back to the glyphs' extent (DB's own rule).
        min_side: regions with a side shorter than this (map pixels) are noise.
        along: fraction of the growth applied along the text direction. DB grows a long thin
            box by nearly its height at each end, which on a plate reaches the plate's frame; a
            frame edge reads as a ``1``.

    Returns:
        Boxes in map coordinates, in no particular order.

    Raises:
        ValueError: `prob` is not 2-D.
    """
    import cv2

    p = np.asarray(prob, dtype=np.float32)
    if p.ndim != 2:
        raise ValueError(f"probability map must be (h, w), got {p.shape}")
    # DB dilates the mask by 2x2 so that characters of one word touch.
    mask = np.asarray(cv2.dilate((p > thresh).astype(np.uint8), np.ones((2, 2), np.uint8)), dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes: list[TextBox] = []
    for contour in contours:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < min_side:
            continue
        region = np.zeros_like(mask)
        cv2.drawContours(region, [contour], -1, 1, thickness=-1)
        score = float(p[region.astype(bool)].mean())
        if score < box_thresh:
            continue
        grow = w * h * unclip_ratio / (2.0 * (w + h))
        quad = rect_quad((cx, cy), (w, h), angle)
        boxes.append(TextBox(grow_quad(quad, along * grow, grow), score))
    return boxes


def _same_row(a: TextBox, b: TextBox, max_offset: float) -> bool:
    # Measured across a's own text axis, not in image y: the two lines of a tilted two-line plate
    # overlap in image y yet are clearly stacked along the plate's normal.
    u = a.quad[1] - a.quad[0]
    u = u / max(float(np.linalg.norm(u)), 1e-6)
    v = np.array([-u[1], u[0]], dtype=np.float32)
    offset = abs(float(np.dot(np.subtract(b.center, a.center), v)))
    return offset <= max_offset * min(a.size[1], b.size[1])


def merge_boxes(boxes: Sequence[TextBox]) -> TextBox:
    """One rotated rectangle around all corners of `boxes`; score weighted by area.

    Raises:
        ValueError: `boxes` is empty.
    """
    import cv2

    if not boxes:
        raise ValueError("nothing to merge")
    if len(boxes) == 1:
        return boxes[0]
    pts = np.concatenate([b.quad for b in boxes]).astype(np.float32)
    (cx, cy), (w, h), angle = cv2.minAreaRect(pts)
    areas = np.array([b.area for b in boxes])
    score = float(np.dot(areas, [b.score for b in boxes]) / max(areas.sum(), 1e-6))
    return TextBox(rect_quad((cx, cy), (w, h), angle), score)


def merge_rows(boxes: Sequence[TextBox], max_offset: float = 0.5) -> list[TextBox]:
    """Merge boxes that share a text row into one box per row, top to bottom.

    Two boxes share a row when their centres are apart by at most `max_offset` of the shorter box's
    height, measured across the text direction: the detector sometimes cuts ``51G-123.45`` into
    ``51G`` and ``123.45``.
    """
    rows: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: b.center[1]):
        for row in rows:
            if any(_same_row(other, box, max_offset) for other in row):
                row.append(box)
                break
        else:
            rows.append([box])
    merged = [merge_boxes(row) for row in rows]
    return sorted(merged, key=lambda b: b.center[1])


def select_lines(rows: Sequence[TextBox], max_lines: int = 2, min_area_frac: float = 0.25) -> list[TextBox]:
    """The plate's text lines among the detected rows, top to bottom.

    Rows smaller than `min_area_frac` of the biggest are stray marks (screws, frame text, a dealer's
    sticker); of the rest the `max_lines` biggest are kept.
    """
    if not rows:
        return []
    biggest = max(r.area for r in rows)
    kept = [r for r in rows if r.area >= min_area_frac * biggest]
    kept = sorted(kept, key=lambda r: r.area, reverse=True)[:max_lines]
    return sorted(kept, key=lambda r: r.center[1])


def scale_quad(quad: npt.ArrayLike, sx: float, sy: float) -> FloatArray:
    """(4, 2) quad with x multiplied by `sx` and y by `sy`."""
    q = np.asarray(quad, dtype=np.float32).copy()
    q[:, 0] *= sx
    q[:, 1] *= sy
    return q


def warp_line(image: UInt8Array, quad: npt.ArrayLike, height: int = 48, max_width: int = 320) -> UInt8Array:
    """Warp the quad of `image` to an upright line image `height` rows high.

    The width keeps the quad's aspect ratio (top edge / left edge), capped at `max_width`.
    Pixels outside the image repeat the border.

    Args:
        image: (H, W, 3) uint8.
        quad: (4, 2) tl, tr, br, bl in image pixels.

    Returns:
        (height, w, 3) uint8.

    Raises:
        ValueError: the quad is degenerate.
    """
    import cv2

    q = np.asarray(quad, dtype=np.float32)
    qw = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    qh = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    if qw < 1 or qh < 1:
        raise ValueError(f"degenerate line quad {qw:.1f}x{qh:.1f}")
    width = int(min(max_width, max(8, round(height * qw / qh))))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    warped = cv2.warpPerspective(
        image, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(warped, dtype=np.uint8)


def split_rows_by_profile(gray: npt.ArrayLike, band: tuple[float, float] = (0.3, 0.7)) -> int:
    """Row at which to cut a two-line plate: the row with the least ink inside the middle band.

    Ink is dark-on-light after Otsu's threshold; the profile is smoothed over ~1/20 of the height.

    Args:
        gray: (H, W) uint8 grey image of the plate.
        band: fraction of the height within which the cut is searched.

    Returns:
        Row index in [band[0] * H, band[1] * H].

    Raises:
        ValueError: `gray` is not a non-empty 2-D image.
    """
    import cv2

    g = np.asarray(gray, dtype=np.uint8)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"gray image must be (H, W) and non-empty, got {g.shape}")
    _, ink = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    profile = ink.sum(axis=1).astype(np.float32)
    k = max(1, g.shape[0] // 20)
    profile = np.convolve(profile, np.ones(k, np.float32) / k, mode="same")
    lo = int(band[0] * g.shape[0])
    hi = max(lo + 1, int(band[1] * g.shape[0]))
    return lo + int(np.argmin(profile[lo:hi]))


def fallback_quads(image: UInt8Array, one_line_aspect: float = ONE_LINE_ASPECT) -> list[FloatArray]:
    """Line quads for a crop where the detector found nothing: whole crop, or two halves.

    A crop at least `one_line_aspect` times wider than high, or lower than `MIN_SPLIT_HEIGHT`, is one
    line; otherwise it is cut in two
    at `split_rows_by_profile`, each half overlapping the cut by 1/20 of the height (glyphs that
    touch the gap are not clipped).

    Args:
        image: (H, W, 3) uint8 BGR.

    Returns:
        One or two (4, 2) float32 quads in image pixels, top to bottom.
    """
    import cv2

    h, w = image.shape[:2]

    def box(y0: float, y1: float) -> FloatArray:
        return np.array([[0, y0], [w, y0], [w, y1], [0, y1]], dtype=np.float32)

    if w >= one_line_aspect * h or h < MIN_SPLIT_HEIGHT:
        return [box(0, h)]
    cut = split_rows_by_profile(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    pad = h / 20
    return [box(0, min(h, cut + pad)), box(max(0, cut - pad), h)]
