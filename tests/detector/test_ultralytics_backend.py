"""The optional Ultralytics back-end refuses what it cannot run, with a clear message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from detector import DetectorConfig
from detector.ultralytics_backend import UltralyticsDetector
from models import ModelError


def test_needs_a_pt_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"needs detector.model_path pointing to a .pt file"):
        UltralyticsDetector(DetectorConfig(backend="ultralytics"))
    with pytest.raises(ModelError, match="not found"):
        UltralyticsDetector(DetectorConfig(backend="ultralytics", model_path=tmp_path / "x.pt"))


def test_missing_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # as if the extra were not installed
    weights = tmp_path / "x.pt"
    weights.write_bytes(b"weights")
    with pytest.raises(ModelError, match=r"pip install 'phatnguoi\[ultralytics\]'"):
        UltralyticsDetector(DetectorConfig(backend="ultralytics", model_path=weights))


def test_a_real_checkpoint_detects_like_the_onnx_model(tmp_path: Path, hanoi_clip: Path) -> None:
    """The COCO YOLOv8n rebuilt as an Ultralytics checkpoint (no download) runs on the back-end and
    finds the same vehicles as the ONNX export on a real frame."""
    pytest.importorskip("ultralytics", reason="the optional ultralytics extra is not installed")
    import models
    from detector.dataset import read_video_frames
    from detector.detections import box_iou
    from detector.train import build_coco_checkpoint
    from detector.yolo_onnx import YoloOnnxDetector

    frame = read_video_frames(hanoi_clip, [150])[150]
    weights = build_coco_checkpoint(models.resolve("yolov8n-coco"), [frame], tmp_path / "coco.pt")
    config = DetectorConfig(model="yolov8n-coco", input_width=640, confidence=0.4, merge_riders=True)
    ours = UltralyticsDetector(config.model_copy(update={"backend": "ultralytics", "model_path": weights}))
    onnx = YoloOnnxDetector(config)
    a, b = ours.detect(frame), onnx.detect(frame)
    assert ours.class_names == onnx.class_names
    assert len(a) >= 10 and abs(len(a) - len(b)) <= 2, (len(a), len(b))
    iou = box_iou(a.xyxy, b.xyxy)
    assert (iou.max(axis=1) > 0.8).mean() >= 0.9  # the same boxes, up to letterbox differences
