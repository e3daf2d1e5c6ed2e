"""`Detections`: shape checks, indexing, immutability."""

from __future__ import annotations

import numpy as np
import pytest

from detector import Detections, box_iou


def make(n: int, with_ids: bool = False) -> Detections:
    xyxy = np.array([[10 * i, 10 * i, 10 * i + 5, 10 * i + 8] for i in range(n)], np.float32).reshape(-1, 4)
    return Detections(
        xyxy=xyxy,
        confidence=np.linspace(0.1, 0.9, n, dtype=np.float32),
        class_id=np.arange(n, dtype=np.int32) % 3,
        tracker_id=np.arange(100, 100 + n) if with_ids else None,
    )


@pytest.mark.parametrize(
    ("xyxy", "confidence", "class_id", "tracker_id", "message"),
    [
        (np.zeros((3, 5)), np.zeros(3), np.zeros(3), None, r"xyxy must be \(N, 4\), got \(3, 5\)"),
        (np.zeros(4), np.zeros(1), np.zeros(1), None, r"xyxy must be \(N, 4\)"),
        (np.zeros((3, 4)), np.zeros(2), np.zeros(3), None, r"confidence must be \(3,\), got \(2,\)"),
        (np.zeros((3, 4)), np.zeros(3), np.zeros((3, 1)), None, r"class_id must be \(3,\)"),
        (np.zeros((3, 4)), np.zeros(3), np.zeros(3), np.zeros(4), r"tracker_id must be \(3,\)"),
    ],
)
def test_shapes_are_checked(xyxy, confidence, class_id, tracker_id, message) -> None:
    with pytest.raises(ValueError, match=message):
        Detections(xyxy, confidence, class_id, tracker_id)


def test_dtypes_are_normalised() -> None:
    d = Detections(np.zeros((2, 4), np.float64), np.zeros(2), np.zeros(2, np.int64), np.zeros(2, np.int32))
    assert d.xyxy.dtype == np.float32
    assert d.confidence.dtype == np.float32
    assert d.class_id.dtype == np.int32
    assert d.tracker_id is not None and d.tracker_id.dtype == np.int64


def test_mask_slice_and_int_index() -> None:
    d = make(5, with_ids=True)
    masked = d[d.confidence > 0.5]
    assert len(masked) == 2
    assert masked.tracker_id is not None and masked.tracker_id.tolist() == [103, 104]
    assert len(d[1:3]) == 2
    one = d[2]
    assert len(one) == 1 and one.xyxy.shape == (1, 4)
    assert len(d[np.array([], dtype=np.int64)]) == 0


def test_immutable() -> None:
    d = make(3)
    with pytest.raises(ValueError):
        d.xyxy[0, 0] = 99.0
    with pytest.raises(AttributeError):
        d.xyxy = np.zeros((3, 4), np.float32)  # type: ignore[misc]
    tracked = d.with_tracker_id(np.array([7, 8, 9]))
    assert d.tracker_id is None  # the original is untouched
    assert tracked.tracker_id is not None and tracked.tracker_id.tolist() == [7, 8, 9]


def test_data_rows_follow_indexing() -> None:
    d = make(4).with_data(plate=np.array(["a", "b", "c", "d"]))
    assert d[np.array([True, False, True, False])].data["plate"].tolist() == ["a", "c"]
    with pytest.raises(ValueError, match="first dimension 4"):
        make(4).with_data(bad=np.zeros(3))


def test_geometry_helpers() -> None:
    d = Detections(np.array([[0, 0, 10, 20]], np.float32), np.ones(1), np.zeros(1))
    assert d.area.tolist() == [200.0]
    assert d.bottom_center.tolist() == [[5.0, 20.0]]


def test_merge_and_empty() -> None:
    merged = Detections.merge([make(2, True), make(3, True)])
    assert len(merged) == 5 and merged.tracker_id is not None
    assert Detections.merge([make(2), make(1, True)]).tracker_id is None
    assert len(Detections.empty()) == 0
    assert len(Detections.merge([])) == 0


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),
    ],
)
def test_box_iou(a, b, expected) -> None:
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(expected)
