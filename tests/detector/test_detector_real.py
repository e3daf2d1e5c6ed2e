"""The real COCO YOLOv8n on real Hanoi frames, scored against the labelled rider + motorbike boxes.

The labels are not exhaustive (far riders, cars and vans are unlabelled), so this checks recall of the
labelled boxes; precision is only reported by the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detector import DetectorConfig, box_iou
from detector.yolo_onnx import YoloOnnxDetector
from models import ModelError
from models.registry import default_registry, file_sha256
from models.runtime import InferenceError
from phatnguoi.bench import load_yolo_labels

HANOI_CAMERA = DetectorConfig(roi=(0, 96, 640, 480), confidence=0.1, merge_riders=True)
BASELINE = DetectorConfig(input_height=640, confidence=0.25, merge_riders=False)


def _recall(detector: YoloOnnxDetector, labels_dir: Path, iou: float) -> float:
    hit = total = 0
    for lf in load_yolo_labels(labels_dir, (480, 640)):
        image = cv2.imread(str(next((labels_dir / "images").glob(f"*_{lf.index + 1:04d}.jpg"))))
        found = detector.detect(image).xyxy
        m = box_iou(lf.xyxy, found)
        hit += int((m.max(axis=1) >= iou).sum()) if m.shape[1] else 0
        total += len(lf.xyxy)
    return hit / total


@pytest.fixture(scope="module")
def chosen() -> YoloOnnxDetector:
    try:
        return YoloOnnxDetector(HANOI_CAMERA)
    except ModelError as e:
        pytest.skip(str(e))


def test_chosen_configuration_recall_not_below_baseline(chosen: YoloOnnxDetector, hanoi_labels: Path) -> None:
    """The camera's configuration (zone crop at 640x384, low confidence for the tracker) finds the
    labelled riders as well as the bare 640x640 letterbox of the same model. Measured 2026-11 with the
    Vietnamese-traffic model: 1.000 / 0.917 vs 0.994 / 0.900 at IoU 0.3 / 0.5 (the 0.02 slack at 0.5 is
    for box-fit noise: an earlier training of it measured 0.903 vs 0.914)."""
    baseline = YoloOnnxDetector(BASELINE)
    for iou, slack in ((0.3, 0.0), (0.5, 0.02)):
        ours, base = _recall(chosen, hanoi_labels, iou), _recall(baseline, hanoi_labels, iou)
        assert ours >= base - slack, f"IoU {iou}: chosen {ours:.3f} < baseline {base:.3f}"
    assert _recall(chosen, hanoi_labels, 0.3) >= 0.97
    assert _recall(chosen, hanoi_labels, 0.5) >= 0.88


def test_vietnamese_traffic_model_beats_coco_on_the_rider_boxes(hanoi_labels: Path) -> None:
    """The shipped labelled frames of the source repository (not our labels, not our clip split): riders
    seen from behind are what the COCO model misses. Measured 2026-11: IoU 0.5 recall 0.917 vs 0.798."""
    vn = YoloOnnxDetector(HANOI_CAMERA)
    coco = YoloOnnxDetector(HANOI_CAMERA.model_copy(update={"model": "yolov8n-coco"}))
    assert vn.model_name == "yolov8n-vn-traffic"
    assert _recall(vn, hanoi_labels, 0.5) >= _recall(coco, hanoi_labels, 0.5) + 0.05


def test_known_vehicles_in_one_frame(chosen: YoloOnnxDetector, hanoi_clip: Path) -> None:
    # frame index 30 (5 s): the red car at the bottom right and the white van at the bottom left
    cap = cv2.VideoCapture(str(hanoi_clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, image = cap.read()
    cap.release()
    assert ok
    d = chosen.detect(image)
    names = [chosen.class_names[c] for c in d.class_id]
    red_car = box_iou(np.array([[515, 345, 640, 450]]), d.xyxy)[0]
    assert red_car.max() > 0.6 and names[int(red_car.argmax())] == "car"
    van = box_iou(np.array([[30, 290, 200, 480]]), d.xyxy)[0]
    assert van.max() > 0.6 and names[int(van.argmax())] in {"car", "truck", "bus"}
    assert all(y2 >= 96 for y2 in d.xyxy[:, 3])  # nothing from outside the region of interest


def test_batch_equals_single(chosen: YoloOnnxDetector, hanoi_labels: Path) -> None:
    images = [cv2.imread(str(p)) for p in sorted((hanoi_labels / "images").glob("*.jpg"))[:2]]
    batch = chosen.detect_batch(images)
    for img, b in zip(images, batch, strict=True):
        s = chosen.detect(img)
        assert len(s) == len(b)
        np.testing.assert_allclose(s.xyxy, b.xyxy, atol=0.05)


@pytest.mark.parametrize("bad", [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10), np.uint8), "not an image"])
def test_bad_frames_raise_inference_error(chosen: YoloOnnxDetector, bad: object) -> None:
    with pytest.raises(InferenceError, match="non-empty"):
        chosen.detect(bad)  # type: ignore[arg-type]


def test_unknown_class_and_wrong_model_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not in model"):
        YoloOnnxDetector(DetectorConfig(classes=("tractor",)))
    with pytest.raises(ModelError, match="not found"):
        YoloOnnxDetector(DetectorConfig(model_path=tmp_path / "nope.onnx"))
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"fake\.onnx: not an ONNX model file"):
        YoloOnnxDetector(DetectorConfig(model_path=fake))


def test_an_explicit_file_that_is_not_the_manifest_model() -> None:
    """The user's own export: named after its file, its own checksum (for evidence), its own classes."""
    own = default_registry().resolve("yolov8n-coco")
    det = YoloOnnxDetector(DetectorConfig(model_path=own))  # the default model is yolov8n-vn-traffic
    assert det.model_name == f"file:{own.name}" and det.model_sha256 == file_sha256(own)
    assert det.class_names == default_registry().entry("yolov8n-coco").classes
    assert det.merges_riders  # not known to draw rider + bike boxes: the config's merge_riders holds
    same = YoloOnnxDetector(DetectorConfig(model_path=default_registry().resolve("yolov8n-vn-traffic")))
    assert same.model_name == "yolov8n-vn-traffic" and not same.merges_riders


def test_batch_with_a_region_per_camera(chosen: YoloOnnxDetector, hanoi_labels: Path) -> None:
    """Two cameras through one session: each frame with its own region equals detecting it alone."""
    paths = sorted((hanoi_labels / "images").glob("*.jpg"))[:2]
    images = [cv2.imread(str(p)) for p in paths]
    rois = [(0, 96, 640, 480), (0, 0, 640, 480)]
    batch = chosen.detect_batch(images, rois)
    full = YoloOnnxDetector(HANOI_CAMERA.model_copy(update={"roi": None}))
    for got, want in ((batch[0], chosen.detect(images[0])), (batch[1], full.detect(images[1]))):
        assert len(got) == len(want)
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.05)
    with pytest.raises(InferenceError, match="regions of interest"):
        chosen.detect_batch(images, rois[:1])
