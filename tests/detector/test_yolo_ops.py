"""YOLOv8 pre/post-processing on tiny hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from detector.yolo_ops import decode, input_size_for, letterbox, merge_riders, nms, to_tensor


@pytest.mark.parametrize(
    ("frame_hw", "width", "expected"),
    [
        ((480, 640), 640, (480, 640)),
        ((384, 640), 640, (384, 640)),
        ((720, 1064), 640, (448, 640)),  # 433 rounded up to a multiple of 32
        ((360, 640), 640, (384, 640)),
        ((1080, 1920), 960, (544, 960)),
        ((10, 1000), 320, (32, 320)),  # never below one stride
    ],
)
def test_input_size_for(frame_hw, width, expected) -> None:
    assert input_size_for(frame_hw, width) == expected


@pytest.mark.parametrize(("frame_hw", "width"), [((0, 640), 640), ((480, 640), 600)])
def test_input_size_for_rejects(frame_hw, width) -> None:
    with pytest.raises(ValueError):
        input_size_for(frame_hw, width)


def test_letterbox_maps_boxes_back() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 100:140] = 255  # a white block
    out, geo = letterbox(image, (64, 64))
    assert out.shape == (64, 64, 3)
    assert geo.scale == pytest.approx(0.32)
    # the 200x100 image becomes 64x32, centred vertically
    assert geo.pad_xy == (0.0, 16.0)
    assert (out[:16] == 114).all() and (out[-16:] == 114).all()
    box_in = np.array([[100 * 0.32, 40 * 0.32 + 16, 140 * 0.32, 60 * 0.32 + 16]], np.float32)
    np.testing.assert_allclose(geo.to_frame(box_in), [[100, 40, 140, 60]], atol=1e-4)


def test_letterbox_roi_offsets_boxes() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    out, geo = letterbox(image, (384, 640), roi_xyxy=(0, 96, 640, 480))
    assert out.shape == (384, 640, 3) and geo.scale == 1.0 and geo.pad_xy == (0.0, 0.0)
    np.testing.assert_allclose(geo.to_frame(np.array([[10, 0, 20, 10]], np.float32)), [[10, 96, 20, 106]])
    with pytest.raises(ValueError, match="outside"):
        letterbox(image, (64, 64), roi_xyxy=(700, 0, 800, 10))
    with pytest.raises(ValueError, match="non-empty"):
        letterbox(np.zeros((0, 5, 3), np.uint8), (64, 64))


def test_to_tensor_is_rgb_nchw() -> None:
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    t = to_tensor([bgr, bgr])
    assert t.shape == (2, 3, 2, 3) and t.dtype == np.float32
    assert t[0, 2].max() == 1.0 and t[0, 0].max() == 0.0  # blue ends up in the last channel


def _raw(rows: list[tuple[float, float, float, float, dict[int, float]]], n_classes: int = 4) -> np.ndarray:
    out = np.zeros((4 + n_classes, len(rows)), np.float32)
    for j, (cx, cy, w, h, scores) in enumerate(rows):
        out[:4, j] = (cx, cy, w, h)
        for c, s in scores.items():
            out[4 + c, j] = s
    return out


def test_decode_filters_classes_and_scores() -> None:
    raw = _raw(
        [
            (50, 50, 20, 10, {0: 0.9}),  # kept class 0
            (10, 10, 4, 4, {1: 0.95}),  # class 1 not kept
            (80, 20, 10, 10, {2: 0.2, 3: 0.6}),  # best kept class is 3
            (30, 30, 10, 10, {3: 0.05}),  # below threshold
        ]
    )
    xyxy, conf, cls = decode(raw, np.array([0, 2, 3], np.int32), 0.25)
    np.testing.assert_allclose(xyxy, [[40, 45, 60, 55], [75, 15, 85, 25]])
    np.testing.assert_allclose(conf, [0.9, 0.6])
    assert cls.tolist() == [0, 3]
    empty = decode(raw, np.array([0], np.int32), 0.95)
    assert empty[0].shape == (0, 4)
    with pytest.raises(ValueError, match=r"\(4 \+ C, N\)"):
        decode(np.zeros((3, 5), np.float32), np.array([0], np.int32), 0.1)


def test_nms_is_class_aware() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    conf = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    cls = np.array([0, 0, 1, 0], np.int32)
    assert nms(xyxy, conf, cls, 0.5).tolist() == [0, 2, 3]
    assert nms(xyxy, conf, np.zeros(4, np.int32), 0.5).tolist() == [0, 3]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), 0.5).size == 0


def test_merge_riders_folds_rider_into_motorbike() -> None:
    person, motorbike, car = 0, 3, 2
    xyxy = np.array(
        [
            [100, 50, 130, 120],  # rider: lower half sits on the motorbike below
            [95, 90, 135, 150],  # motorbike
            [300, 50, 330, 140],  # pedestrian, nothing under them
            [400, 100, 500, 160],  # car
        ],
        np.float32,
    )
    conf = np.array([0.9, 0.5, 0.8, 0.7], np.float32)
    cls = np.array([person, motorbike, person, car], np.int32)
    out, c, k = merge_riders(xyxy, conf, cls, person, [1, motorbike])
    assert k.tolist() == [motorbike, person, car]
    np.testing.assert_allclose(out[0], [95, 50, 135, 150])  # union of rider and motorbike
    assert c[0] == pytest.approx(0.9)
    np.testing.assert_allclose(out[1], xyxy[2])  # pedestrian unchanged
