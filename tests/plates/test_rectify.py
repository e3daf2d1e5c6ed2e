"""Line finding and rectification in `plates.rectify`, on small synthetic maps and images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from plates.rectify import (
    TextBox,
    fallback_quads,
    find_text_boxes,
    grow_quad,
    merge_rows,
    rect_quad,
    scale_quad,
    select_lines,
    split_rows_by_profile,
    warp_line,
)


def box(x0: float, y0: float, x1: float, y1: float, score: float = 0.9) -> TextBox:
    return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), score)


def two_band_map(tilt_deg: float = 0.0) -> np.ndarray:
    """(96, 128) probability map with two text bands, optionally rotated about the centre."""
    prob = np.zeros((96, 128), np.float32)
    prob[20:36, 24:104] = 0.95
    prob[56:74, 16:112] = 0.95
    if tilt_deg:
        m = cv2.getRotationMatrix2D((64, 48), tilt_deg, 1.0)
        prob = cv2.warpAffine(prob, m, (128, 96))
    return prob


@pytest.mark.parametrize(
    ("size", "angle", "expected"),
    [
        # Axis-aligned, width along x.
        ((40, 10), 0.0, [[0, 15], [40, 15], [40, 25], [0, 25]]),
        # minAreaRect may report the same box as (10, 40) at 90 degrees: still text along x.
        ((10, 40), 90.0, [[0, 15], [40, 15], [40, 25], [0, 25]]),
    ],
)
def test_rect_quad_orders_corners_along_the_text(
    size: tuple[float, float], angle: float, expected: list[list[float]]
) -> None:
    np.testing.assert_allclose(rect_quad((20, 20), size, angle), expected, atol=1e-4)


def test_rect_quad_keeps_a_small_tilt() -> None:
    q = rect_quad((0, 0), (20, 4), 10.0)
    top = q[1] - q[0]
    assert top[0] > 0 and top[1] > 0  # runs right and slightly down
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(10.0)


def test_grow_quad() -> None:
    q = box(10, 10, 30, 20).quad
    np.testing.assert_allclose(grow_quad(q, 2, 1), [[8, 9], [32, 9], [32, 21], [8, 21]])


def test_find_text_boxes_two_bands() -> None:
    boxes = find_text_boxes(two_band_map(), unclip_ratio=0.0)
    ys = sorted(b.center[1] for b in boxes)
    assert len(boxes) == 2
    assert ys[0] == pytest.approx(27.5, abs=1.5) and ys[1] == pytest.approx(64.5, abs=1.5)
    assert all(0.8 < b.score <= 0.95 for b in boxes)


def test_find_text_boxes_unclip_grows_less_along_the_line() -> None:
    (tight,) = find_text_boxes(two_band_map()[:48], unclip_ratio=0.0)
    (grown,) = find_text_boxes(two_band_map()[:48], unclip_ratio=1.5, along=0.5)
    dw = grown.size[0] - tight.size[0]
    dh = grown.size[1] - tight.size[1]
    assert dh > 0 and dw == pytest.approx(dh / 2, rel=0.05)


@pytest.mark.parametrize(
    ("prob", "kwargs", "n"),
    [
        (np.zeros((64, 64), np.float32), {}, 0),
        (np.full((64, 64), 0.4, np.float32), {}, 0),  # above thresh, below box_thresh
        (np.pad(np.ones((2, 30), np.float32), 20), {}, 0),  # thinner than min_side
    ],
)
def test_find_text_boxes_rejects_noise(prob: np.ndarray, kwargs: dict[str, float], n: int) -> None:
    assert len(find_text_boxes(prob, **kwargs)) == n


def test_find_text_boxes_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        find_text_boxes(np.zeros((1, 8, 8), np.float32))


def test_merge_rows_joins_fragments_of_one_line() -> None:
    rows = merge_rows([box(60, 10, 100, 30), box(5, 12, 50, 31)])
    assert len(rows) == 1
    assert rows[0].size[0] == pytest.approx(95, abs=1)


def test_merge_rows_keeps_tilted_lines_apart() -> None:
    # The two bands of a plate tilted by 20 degrees overlap in image y, yet are two rows.
    boxes = find_text_boxes(two_band_map(tilt_deg=20), unclip_ratio=1.3)
    (y0a, y1a), (y0b, y1b) = (b.y_range() for b in boxes)
    assert min(y1a, y1b) > max(y0a, y0b)  # they do overlap in y
    rows = merge_rows(boxes)
    assert len(rows) == 2
    assert rows[0].center[1] < rows[1].center[1]


def test_select_lines_keeps_the_two_biggest_rows_top_to_bottom() -> None:
    top, bottom = box(10, 10, 90, 30), box(5, 40, 95, 62)
    speck, sticker = box(0, 0, 8, 4), box(20, 64, 70, 72)
    lines = select_lines([bottom, speck, top, sticker])
    assert lines == [top, bottom]
    assert select_lines([]) == []


def test_scale_quad() -> None:
    np.testing.assert_allclose(scale_quad(box(1, 2, 3, 4).quad, 2, 0.5), box(2, 1, 6, 2).quad)


def test_warp_line_output_and_content() -> None:
    img = np.full((60, 200, 3), 255, np.uint8)
    img[20:40, 50:150] = 0  # a black "word"
    line = warp_line(img, box(40, 10, 160, 50).quad, height=48)
    assert line.shape == (48, 144, 3) and line.dtype == np.uint8
    # The word occupies the middle of the warped line.
    assert line[24, 72].max() == 0 and line[2, 2].min() == 255
    assert warp_line(img, box(0, 0, 1000, 10).quad, max_width=320).shape[1] == 320
    with pytest.raises(ValueError, match="degenerate"):
        warp_line(img, box(5, 5, 5, 20).quad)


def test_split_rows_by_profile_finds_the_gap_between_two_bands() -> None:
    gray = np.full((100, 80), 230, np.uint8)
    gray[10:42, 10:70:6] = 20  # top line: vertical strokes
    gray[58:92, 8:72:5] = 20  # bottom line
    cut = split_rows_by_profile(gray)
    assert 42 <= cut <= 58


def test_split_rows_by_profile_rejects_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        split_rows_by_profile(np.zeros((0, 5), np.uint8))


def test_fallback_quads_one_or_two_lines() -> None:
    wide = np.full((30, 150, 3), 200, np.uint8)
    (only,) = fallback_quads(wide)
    np.testing.assert_allclose(only, box(0, 0, 150, 30).quad)
    square = np.full((100, 120, 3), 230, np.uint8)
    square[10:42, 10:110:6] = 20
    square[58:92, 10:110:5] = 20
    top, bottom = fallback_quads(square)
    assert top[0, 1] == 0 and bottom[2, 1] == 100
    assert 42 <= top[2, 1] <= 64 and 36 <= bottom[0, 1] <= 58
    # Too low to split: one line whatever the shape.
    assert len(fallback_quads(np.full((10, 12, 3), 200, np.uint8))) == 1
