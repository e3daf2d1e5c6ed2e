"""Detector and tracker configuration (strict pydantic trees, STYLE.md §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

VEHICLE_CLASSES: tuple[str, ...] = ("person", "bicycle", "car", "motorcycle", "bus", "truck")


class DetectorConfig(BaseModel):
    """Which model runs, on which pixels, how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["onnxruntime", "ultralytics"] = Field(
        "onnxruntime",
        description="onnxruntime (default) or ultralytics (needs the optional extra, .pt files)",
    )
    model: str = Field(
        "yolov8n-vn-traffic",
        description="Model name in the manifest: yolov8n-vn-traffic (trained on Vietnamese traffic, the "
        "default) or yolov8n-coco (the COCO model).",
    )
    model_path: Path | None = Field(
        None,
        description="Explicit model file: the manifest model's file, or your own YOLOv8 detection ONNX "
        "export (fixed input size; class names from its metadata; set merge_riders false if it draws "
        "rider + bike boxes).",
    )
    input_width: int = Field(
        640,
        ge=128,
        le=1920,
        multiple_of=32,
        description="Network input width; the height follows the frame's (or ROI's) aspect, rounded to 32.",
    )
    input_height: int | None = Field(
        None,
        ge=128,
        le=1920,
        multiple_of=32,
        description="Force the input height (letterbox). 640 with width 640 is the square export.",
    )
    roi: tuple[int, int, int, int] | None = Field(
        None, description="Detect only inside this frame region x1, y1, x2, y2 (the enforcement zone)."
    )
    confidence: float = Field(0.25, gt=0.0, lt=1.0, description="Minimum class score kept.")
    iou: float = Field(0.5, gt=0.0, le=1.0, description="NMS IoU threshold.")
    classes: tuple[str, ...] = Field(VEHICLE_CLASSES, min_length=1, description="Class names kept.")
    merge_riders: bool = Field(
        True,
        description="Fold a rider into the motorbike/bicycle box under them (one road user, one box); "
        "models trained on rider + bike boxes (rider_boxes in the manifest) need no folding and skip it.",
    )
    every: int = Field(
        1, ge=1, le=10, description="Run the detector on every k-th frame; the tracker predicts between."
    )
    providers: tuple[Literal["cpu", "openvino", "cuda", "tensorrt"], ...] = Field(
        ("cpu",), min_length=1, description="ONNX Runtime execution providers, in order of preference."
    )
    threads: int = Field(2, ge=1, le=64, description="Intra-op threads of the session.")
    allow_spinning: bool = Field(
        False, description="Let idle ONNX Runtime threads spin; only for a single session per process."
    )

    @field_validator("roi")
    @classmethod
    def _roi_ordered(cls, v: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if v is not None and (v[2] <= v[0] or v[3] <= v[1] or min(v) < 0):
            raise ValueError(f"roi must be x1, y1, x2, y2 with x2 > x1 >= 0 and y2 > y1 >= 0, got {v}")
        return v


class TrackerConfig(BaseModel):
    """ByteTrack settings (the `trackers` package)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lost_track_s: float = Field(1.5, gt=0, le=30, description="Keep a lost track this many seconds.")
    activation_confidence: float = Field(0.2, gt=0, lt=1, description="Score needed to start a track.")
    high_confidence: float = Field(0.3, gt=0, lt=1, description="First-stage association score.")
    match_iou: float = Field(0.1, gt=0, lt=1, description="Minimum IoU to associate a box to a track.")
    coast_s: float = Field(
        0.5,
        ge=0,
        le=5,
        description="Keep reporting a track's predicted box this long after its last detection.",
    )
    min_hits: int = Field(2, ge=1, le=10, description="Consecutive detections before a track gets an id.")
    history_s: float = Field(30.0, gt=0, le=600, description="History kept per track for the rules.")
