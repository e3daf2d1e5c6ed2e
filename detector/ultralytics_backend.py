"""Optional Ultralytics back-end for `.pt` weights (``pip install 'phatnguoi[ultralytics]'``).

For models that exist only as PyTorch checkpoints (e.g. a freshly fine-tuned detector before its ONNX
export). The ONNX Runtime back-end is the default and the one measured for the edge box.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.config import DetectorConfig
from detector.detections import Detections
from detector.yolo_ops import merge_riders
from models.registry import ModelError
from models.runtime import InferenceError


class UltralyticsDetector:
    """YOLO `.pt` weights through Ultralytics' predictor, returning our `Detections`."""

    def __init__(self, config: DetectorConfig) -> None:
        if config.model_path is None or config.model_path.suffix != ".pt":
            raise ModelError("the ultralytics back-end needs detector.model_path pointing to a .pt file")
        if not config.model_path.is_file():
            raise ModelError(f"model file not found: {config.model_path}")
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise ModelError("the ultralytics back-end needs: pip install 'phatnguoi[ultralytics]'") from e
        self.config = config
        self._model: Any = YOLO(str(config.model_path), task="detect")
        names: dict[int, str] = self._model.names
        self.class_names: tuple[str, ...] = tuple(names[i] for i in sorted(names))
        unknown = [c for c in config.classes if c not in self.class_names]
        if unknown:
            raise ModelError(f"classes {unknown} are not in {config.model_path.name}")
        self._keep = [self.class_names.index(c) for c in config.classes]

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        """Detect in one BGR frame."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect in several BGR frames."""
        try:
            results = self._model.predict(
                list(images),
                conf=self.config.confidence,
                iou=self.config.iou,
                classes=self._keep,
                imgsz=self.config.input_width,
                verbose=False,
            )
        except Exception as e:  # ultralytics raises many untyped errors
            raise InferenceError(f"ultralytics inference failed: {e}") from e
        out = []
        for r in results:
            xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float32)
            conf = r.boxes.conf.cpu().numpy().astype(np.float32)
            cls = r.boxes.cls.cpu().numpy().astype(np.int32)
            if self.config.merge_riders and "person" in self.class_names:
                wheels = [
                    self.class_names.index(c) for c in ("bicycle", "motorcycle") if c in self.class_names
                ]
                xyxy, conf, cls = merge_riders(xyxy, conf, cls, self.class_names.index("person"), wheels)
            out.append(Detections(xyxy, conf, cls))
        return out
