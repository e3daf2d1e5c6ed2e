"""Plate detector: pure pre/post-processing on tiny arrays, the real model on real photos, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from models import ModelError
from plates.det_eval import DetEvalResult, evaluate_detection, match_boxes, read_box_labels
from plates.detect import (
    PAD_VALUE,
    PlateBoxes,
    PlateDetector,
    PlateDetectorConfig,
    Resize,
    box_iou,
    check_image,
    clip_boxes,
    crop_region,
    decode,
    nms,
    plan_resize,
    resize_pad,
    to_blob,
)
from plates.errors import PlateError

PLATES_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"


def _f32(rows: list[list[float]]) -> npt.NDArray[np.float32]:
    return np.asarray(rows, np.float32).reshape(-1, 4)


# --- pure pre-processing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_hw", "long_side", "stretch", "upscale", "expected"),
    [
        # aspect kept, already at size: input padded up to multiples of 32 only
        ((480, 640), 640, 1.0, True, ((480, 640), (480, 640))),
        ((303, 472), 640, 1.0, True, ((411, 640), (416, 640))),
        # stretch 2: 303 rows count as 606, the long side; width follows the same scale
        ((303, 472), 640, 2.0, True, ((640, 498), (640, 512))),
        ((720, 1280), 640, 2.0, True, ((640, 569), (640, 576))),
        # no upscaling: a small image keeps its size, padding still rounds to the stride
        ((100, 200), 640, 1.0, False, ((100, 200), (128, 224))),
        ((1000, 100), 320, 1.0, True, ((320, 32), (320, 32))),
    ],
)
def test_plan_resize(
    image_hw: tuple[int, int],
    long_side: int,
    stretch: float,
    upscale: bool,
    expected: tuple[tuple[int, int], tuple[int, int]],
) -> None:
    assert plan_resize(image_hw, long_side, stretch, upscale) == expected


@pytest.mark.parametrize(
    ("image_hw", "long_side", "stretch", "match"),
    [
        ((0, 10), 640, 1.0, "positive"),
        ((10, 10), 100, 1.0, "multiple of 32"),
        ((10, 10), 640, 0.0, "stretch"),
    ],
)
def test_plan_resize_rejects(image_hw: tuple[int, int], long_side: int, stretch: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plan_resize(image_hw, long_side, stretch)


def test_resize_pad_places_image_top_left_and_pads_grey() -> None:
    image = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    padded, geometry = resize_pad(image, (4, 8), (32, 32))
    assert padded.shape == (32, 32, 3)
    assert padded.flags.c_contiguous
    assert geometry == Resize((2.0, 2.0))
    assert (padded[4:] == PAD_VALUE).all()
    assert (padded[:, 8:] == PAD_VALUE).all()
    # nearest content survives an exact 2x enlargement at the corners
    assert padded[0, 0].tolist() == image[0, 0].tolist()
    assert padded[3, 7].tolist() == image[1, 3].tolist()


def test_resize_pad_rejects_size_larger_than_input() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        resize_pad(np.zeros((2, 2, 3), np.uint8), (64, 32), (32, 32))


def test_resize_maps_boxes_back_per_axis() -> None:
    back = Resize((2.0, 4.0)).to_image(_f32([[2, 4, 6, 8]]))
    np.testing.assert_allclose(back, [[1, 1, 3, 2]])
    assert back.dtype == np.float32


def test_to_blob_is_rgb_chw_in_unit_range() -> None:
    image = np.array([[[0, 0, 255], [255, 0, 0]]], np.uint8)  # BGR: red, blue
    blob = to_blob(image)
    assert blob.shape == (1, 3, 1, 2)
    assert blob.dtype == np.float32
    np.testing.assert_allclose(blob[0, 0, 0], [1.0, 0.0])  # R
    np.testing.assert_allclose(blob[0, 1, 0], [0.0, 0.0])  # G
    np.testing.assert_allclose(blob[0, 2, 0], [0.0, 1.0])  # B


# --- pure post-processing ------------------------------------------------------------------------


def test_decode_filters_scores_and_converts_centre_boxes() -> None:
    # columns: three anchors; rows: cx, cy, w, h, score
    output = np.array(
        [
            [10, 50, 30],
            [20, 60, 30],
            [4, 10, 2],
            [2, 20, 2],
            [0.9, 0.2, 0.5],
        ],
        np.float32,
    )
    xyxy, confidence = decode(output, 0.5)
    np.testing.assert_allclose(xyxy, [[8, 19, 12, 21], [29, 29, 31, 31]])
    np.testing.assert_allclose(confidence, [0.9, 0.5])
    assert xyxy.dtype == confidence.dtype == np.float32


def test_decode_takes_best_class_score_and_can_return_nothing() -> None:
    output = np.array([[10], [10], [2], [2], [0.1], [0.7]], np.float32)  # two classes
    _, confidence = decode(output, 0.5)
    np.testing.assert_allclose(confidence, [0.7])
    xyxy, confidence = decode(output, 0.8)
    assert xyxy.shape == (0, 4)
    assert confidence.shape == (0,)


@pytest.mark.parametrize("shape", [(4, 10), (5,), (1, 5, 10)])
def test_decode_rejects_bad_layout(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"4 \+ C"):
        decode(np.zeros(shape, np.float32), 0.5)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),
        ([0, 0, 10, 10], [0, 0, 5, 5], 0.25),
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # empty boxes do not divide by zero
    ],
)
def test_box_iou(a: list[float], b: list[float], expected: float) -> None:
    iou = box_iou(_f32([a]), _f32([b]))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected, abs=1e-6)


def test_box_iou_is_pairwise() -> None:
    iou = box_iou(
        _f32([[0, 0, 10, 10], [20, 20, 30, 30]]), _f32([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    )
    np.testing.assert_allclose(iou, np.array([[1, 1 / 3, 0], [0, 0, 1]], np.float32), atol=1e-6)


@pytest.mark.parametrize(
    ("iou_threshold", "max_det", "expected"),
    [
        (0.5, 10, [1, 2]),  # box 0 overlaps the better box 1 by 0.82: dropped
        (0.9, 10, [1, 0, 2]),  # threshold above that overlap: kept, best first
        (0.9, 2, [1, 0]),
    ],
)
def test_nms(iou_threshold: float, max_det: int, expected: list[int]) -> None:
    xyxy = _f32([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]])
    confidence = np.array([0.8, 0.9, 0.3], np.float32)
    assert nms(xyxy, confidence, iou_threshold, max_det).tolist() == expected


def test_nms_of_nothing() -> None:
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, 10)
    assert keep.shape == (0,)
    assert keep.dtype == np.int64


def test_clip_boxes_clips_and_flags_boxes_outside() -> None:
    clipped, visible = clip_boxes(_f32([[-5, -5, 10, 10], [95, 10, 120, 20], [100, 10, 120, 20]]), (100, 50))
    np.testing.assert_allclose(clipped, [[0, 0, 10, 10], [95, 10, 100, 20], [100, 10, 100, 20]])
    assert visible.tolist() == [True, True, False]


@pytest.mark.parametrize(
    ("box", "margin", "expected"),
    [
        ([10, 20, 30, 60], 0.0, (10, 20, 30, 60)),
        ([10, 20, 30, 60], 0.1, (8, 16, 32, 64)),
        ([10.5, 20.5, 29.5, 59.5], 0.0, (10, 20, 30, 60)),  # rounded outwards
        ([-10, -10, 200, 30], 0.5, (0, 0, 100, 50)),  # clipped left, top and right
        ([10, 70, 30, 79], 0.5, (0, 65, 40, 80)),  # clipped bottom
    ],
)
def test_crop_region(box: list[float], margin: float, expected: tuple[int, int, int, int]) -> None:
    assert crop_region(box, (100, 80), margin) == expected


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ([10, 20, 30], "4 finite numbers"),
        ([10, 20, float("nan"), 40], "4 finite numbers"),
        ([30, 20, 10, 40], "no area"),
        ([200, 10, 300, 40], "outside"),
    ],
)
def test_crop_region_rejects(box: list[float], match: str) -> None:
    with pytest.raises(PlateError, match=match):
        crop_region(box, (100, 50), 0.1)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        ([[0, 0, 0]], "numpy array"),
        (np.zeros((10, 10, 3), np.float32), "dtype float32"),
        (np.zeros((10, 10), np.uint8), r"shape \(10, 10\)"),
        (np.zeros((10, 10, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
    ],
)
def test_check_image_rejects(image: object, match: str) -> None:
    with pytest.raises(PlateError, match=match):
        check_image(image)


def test_plate_boxes_checks_shapes_and_is_read_only() -> None:
    mine = np.zeros((2, 4), np.float32)
    boxes = PlateBoxes(mine, np.ones(2, np.float32))
    assert len(boxes) == 2
    assert mine.flags.writeable  # the caller's array is untouched
    with pytest.raises(ValueError, match="read-only"):
        boxes.xyxy[0, 0] = 1
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        PlateBoxes(np.zeros((2, 5), np.float32), np.ones(2, np.float32))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        PlateBoxes(np.zeros((2, 4), np.float32), np.ones(3, np.float32))
    assert len(PlateBoxes.empty()) == 0


# --- evaluation helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "detections", "confidence", "matched", "ious"),
    [
        # the better detection takes the label; the second, overlapping, finds nothing free
        ([[0, 0, 10, 10]], [[0, 0, 10, 10], [1, 0, 11, 10]], [0.5, 0.9], [True], [0.818]),
        # below the threshold: unmatched, best IoU still reported
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [0.9], [False], [0.333]),
        # each label gets its own detection
        (
            [[0, 0, 10, 10], [20, 0, 30, 10]],
            [[20, 0, 30, 10], [0, 0, 10, 9]],
            [0.9, 0.8],
            [True, True],
            [0.9, 1.0],
        ),
        ([[0, 0, 10, 10]], [], [], [False], [0.0]),
    ],
)
def test_match_boxes(
    labels: list[list[float]],
    detections: list[list[float]],
    confidence: list[float],
    matched: list[bool],
    ious: list[float],
) -> None:
    found = PlateBoxes(_f32(detections), np.asarray(confidence, np.float32))
    got_matched, got_ious = match_boxes(_f32(labels), found, 0.5)
    assert got_matched.tolist() == matched
    np.testing.assert_allclose(got_ious, ious, atol=1e-3)


def test_read_box_labels_groups_rows_by_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("file,x1,y1,x2,y2,text\na.jpg,1,2,3,4,X\nb.jpg,0,0,1,1,\na.jpg,5,6,7,8,Y\n")
    boxes = read_box_labels(labels)
    assert list(boxes) == ["a.jpg", "b.jpg"]
    np.testing.assert_allclose(boxes["a.jpg"], [[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("file,x1,y1,x2\na.jpg,1,2,3\n", "missing column"),
        ("file,x1,y1,x2,y2\na.jpg,1,2,three,4\n", ":2: box"),
    ],
)
def test_read_box_labels_rejects(tmp_path: Path, content: str, match: str) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    with pytest.raises(PlateError, match=match):
        read_box_labels(labels)


def test_read_box_labels_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlateError, match="cannot read labels"):
        read_box_labels(tmp_path / "absent.csv")


# --- the real model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> PlateDetector:
    return PlateDetector()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"plate data not available: {path} (expected ../shared/data beside the checkout)")
    return path


def _labelled(subset: str, name: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    root = _need(PLATES_DATA / subset)
    image = cv2.imread(str(root / name))
    assert image is not None, name
    return np.asarray(image, np.uint8), read_box_labels(root / "labels.csv")[name]


REAL_IMAGES = [
    ("vn_scenes", "gp_0000_06886_b.jpg"),  # two-line motorbike plate at a parking gate
    ("vn_scenes", "gp_0429_07077_b.jpg"),
    ("vn_scenes", "mz_clip3_new_4.jpg"),  # 1280x720 basement frame, three labelled plates
    ("vn_scenes", "mz_clip4_new_14.jpg"),
    ("openalpr", "eu_eu2.jpg"),
    ("openalpr", "eu_test_042.jpg"),
    ("openalpr", "br_AYO9034.jpg"),
]


@pytest.mark.parametrize(("subset", "name"), REAL_IMAGES)
def test_real_model_finds_the_labelled_plates(detector: PlateDetector, subset: str, name: str) -> None:
    image, labels = _labelled(subset, name)
    found = detector.detect(image)
    matched, ious = match_boxes(labels, found, 0.5)
    assert matched.all(), f"{name}: IoU with the labelled plates {ious.round(2).tolist()}"
    assert found.xyxy.dtype == np.float32
    assert (np.diff(found.confidence) <= 0).all()  # best first
    h, w = image.shape[:2]
    assert (found.xyxy >= 0).all()
    assert (found.xyxy[:, [0, 2]] <= w).all() and (found.xyxy[:, [1, 3]] <= h).all()


@pytest.mark.parametrize(("subset", "name"), REAL_IMAGES)
def test_real_model_on_a_vehicle_crop_maps_back_to_the_frame(
    detector: PlateDetector, subset: str, name: str
) -> None:
    image, labels = _labelled(subset, name)
    h, w = image.shape[:2]
    plate = labels[0]
    # A stand-in vehicle box around the plate: plates sit low and central on a vehicle's box.
    pw, ph = plate[2] - plate[0], plate[3] - plate[1]
    vehicle = [plate[0] - pw, plate[1] - 4 * ph, plate[2] + pw, plate[3] + ph]
    found = detector.detect_in_vehicle(image, vehicle)
    matched, ious = match_boxes(plate[None], found, 0.5)
    assert matched.all(), f"{name}: IoU with the labelled plate {ious.round(2).tolist()}"
    x1, y1, x2, y2 = crop_region(vehicle, (w, h), detector.config.crop_margin)
    assert (found.xyxy[:, [0, 2]] >= x1).all() and (found.xyxy[:, [0, 2]] <= x2).all()
    assert (found.xyxy[:, [1, 3]] >= y1).all() and (found.xyxy[:, [1, 3]] <= y2).all()


def test_real_model_finds_nothing_on_a_blank_image(detector: PlateDetector) -> None:
    blank = np.full((480, 640, 3), 128, np.uint8)
    assert len(detector.detect(blank)) == 0
    assert len(detector.detect_in_vehicle(blank, [100, 100, 300, 300])) == 0


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((64, 64, 3), np.float32), "dtype float32"),
        (np.zeros((64, 64), np.uint8), "shape"),
    ],
)
def test_real_model_rejects_bad_images(
    detector: PlateDetector, image: npt.NDArray[np.uint8], match: str
) -> None:
    with pytest.raises(PlateError, match=match):
        detector.detect(image)
    with pytest.raises(PlateError, match=match):
        detector.detect_in_vehicle(image, [0, 0, 10, 10])


def test_real_model_rejects_vehicle_outside_frame(detector: PlateDetector) -> None:
    with pytest.raises(PlateError, match="outside"):
        detector.detect_in_vehicle(np.zeros((100, 100, 3), np.uint8), [200, 200, 300, 300])


def test_an_altered_model_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "plate_yolov8n.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="sha256"):
        PlateDetector(model_path=fake)


def test_config_is_strict() -> None:
    with pytest.raises(ValueError, match="image_sise"):
        PlateDetectorConfig(image_sise=640)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="multiple"):
        PlateDetectorConfig(image_size=650)


def test_evaluate_detection_on_real_subset(detector: PlateDetector, tmp_path: Path) -> None:
    root = _need(PLATES_DATA / "openalpr")
    with (root / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["file"] in {"eu_eu2.jpg", "br_AYO9034.jpg"}]
    assert len(rows) == 2
    subset = tmp_path / "labels.csv"
    with subset.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done: list[int] = []
    result = evaluate_detection(subset, root, detector, progress=lambda i, n: done.append(i))
    assert isinstance(result, DetEvalResult)
    assert (result.images, result.labels, result.matched) == (2, 2, 2)
    assert result.recall == 1.0
    assert 0 < result.precision <= 1.0
    assert [r.file for r in result.rows] == [r["file"] for r in rows]
    assert all(r.ms > 0 for r in result.rows)
    assert done == [1, 2]


def test_evaluate_detection_names_a_missing_image(detector: PlateDetector, tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,x1,y1,x2,y2\nabsent.jpg,1,2,3,4\n")
    with pytest.raises(PlateError, match=r"absent\.jpg"):
        evaluate_detection(tmp_path / "labels.csv", tmp_path, detector)
