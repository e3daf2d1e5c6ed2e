"""Detection and tracking: the `Detections` type, YOLO back-ends, ByteTrack and per-track history.

Light on purpose: `from detector import Detections` imports numpy only. The back-ends import
onnxruntime / OpenCV / trackers when they are built.
"""

from detector.config import VEHICLE_CLASSES, DetectorConfig, TrackerConfig
from detector.detections import Detections, box_iou

__all__ = ["VEHICLE_CLASSES", "Detections", "DetectorConfig", "TrackerConfig", "box_iou"]
