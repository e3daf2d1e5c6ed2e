"""The default detector: a YOLOv8 ONNX graph on ONNX Runtime, shaped to the camera.

The exported graph is re-shaped (`detector.yolo_graph`) to an input that keeps the frame's aspect
(640×480 for a 640×480 camera instead of a 640×640 letterbox), or to the enforcement-zone crop of the
camera's config. One session is built per input shape, lazily, with a warm-up run.

The model is a manifest entry (checked by its sha256), or any YOLOv8 detection export given as an
explicit file (`DetectorConfig.model_path`, `detect --model`): a file that is not the entry's is the
user's own model, named ``file:<name>`` in evidence, with the class names of its export metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from detector.config import DetectorConfig
from detector.detections import Detections
from detector.yolo_graph import GraphEditError, reshape_yolov8, yolov8_class_names
from detector.yolo_ops import Geometry, decode, input_size_for, letterbox, merge_riders, nms, to_tensor
from models.registry import ModelError, Registry, default_registry, file_sha256
from models.runtime import InferenceError, OnnxSession, RuntimeOptions

logger = logging.getLogger(__name__)


class YoloOnnxDetector:
    """YOLOv8 detection on ONNX Runtime. Thread-compatible, not thread-safe: one caller at a time."""

    def __init__(self, config: DetectorConfig | None = None, registry: Registry | None = None) -> None:
        self.config = config or DetectorConfig()
        registry = registry or default_registry()
        entry = registry.entry(self.config.model)
        explicit = self.config.model_path
        self.model_path: Path
        self.class_names: tuple[str, ...]
        if explicit is not None and explicit.is_file() and file_sha256(explicit) != entry.sha256:
            # The user's own model (e.g. fine-tuned): not in the manifest, so its class names come
            # from the file itself, and whether it draws rider + bike boxes is the config's merge_riders.
            self.model_path = explicit
            self._model_bytes = explicit.read_bytes()
            try:
                self.class_names = yolov8_class_names(self._model_bytes)
            except GraphEditError as e:
                raise ModelError(f"model file {explicit}: {e}") from None
            self.model_name = f"file:{explicit.name}"
            self.model_sha256 = file_sha256(explicit)
            rider_boxes = False
        else:
            if entry.task != "detect":
                raise ModelError(f"model '{entry.name}' is a {entry.task} model, not a detector")
            if not entry.classes:
                raise ModelError(f"model '{entry.name}' has no class names in the manifest")
            self.model_name = entry.name
            self.model_path = registry.resolve(entry.name, explicit)
            self._model_bytes = self.model_path.read_bytes()
            self.model_sha256 = entry.sha256
            self.class_names = entry.classes
            rider_boxes = entry.rider_boxes
        unknown = [c for c in self.config.classes if c not in self.class_names]
        if unknown:
            raise ModelError(f"classes {unknown} are not in model '{self.model_name}'")
        self._keep_ids = np.asarray([self.class_names.index(c) for c in self.config.classes], np.int32)
        self._person = self.class_names.index("person") if "person" in self.class_names else -1
        self._two_wheelers = [
            self.class_names.index(c) for c in ("bicycle", "motorcycle") if c in self.class_names
        ]
        # A model trained on rider + bike boxes already draws one box per rider; folding its "person"
        # boxes (pedestrians) into two-wheelers would only swallow pedestrians standing by a bike.
        folds = self.config.merge_riders and not rider_boxes
        self.merges_riders = folds and self._person >= 0 and bool(self._two_wheelers)
        self._sessions: dict[tuple[int, int], OnnxSession] = {}
        self._runtime = RuntimeOptions(
            providers=self.config.providers,
            intra_op_threads=self.config.threads,
            allow_spinning=self.config.allow_spinning,
        )

    def input_size(
        self, frame_hw: tuple[int, int], roi: tuple[int, int, int, int] | None = None
    ) -> tuple[int, int]:
        """Network input (height, width) used for frames of this size (and region of interest;
        default: the configured one)."""
        if self.config.input_height is not None:
            return self.config.input_height, self.config.input_width
        h, w = frame_hw
        roi = roi if roi is not None else self.config.roi
        if roi is not None:
            x1, y1, x2, y2 = roi
            h, w = min(y2, h) - y1, min(x2, w) - x1
            if h <= 0 or w <= 0:
                raise ValueError(f"roi {roi} is outside the {frame_hw[1]}x{frame_hw[0]} frame")
        return input_size_for((h, w), self.config.input_width)

    def session(self, input_hw: tuple[int, int]) -> OnnxSession:
        """The session for one input shape, built and warmed up on first use."""
        sess = self._sessions.get(input_hw)
        if sess is None:
            try:
                graph = reshape_yolov8(self._model_bytes, *input_hw)
            except GraphEditError as e:
                raise ModelError(f"model '{self.model_name}': {e}") from e
            sess = OnnxSession(graph, self._runtime, name=f"{self.model_name}@{input_hw[1]}x{input_hw[0]}")
            sess.warm_up({sess.input_names[0]: np.zeros((1, 3, *input_hw), np.float32)})
            self._sessions[input_hw] = sess
            logger.info("detector %s ready on %s", sess.name, ", ".join(sess.providers))
        return sess

    @property
    def providers(self) -> list[str]:
        """Providers of the sessions built so far (the first one's)."""
        for sess in self._sessions.values():
            return sess.providers
        return []

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        """Detect in one BGR (H, W, 3) frame."""
        return self.detect_batch([image])[0]

    def detect_batch(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        rois: Sequence[tuple[int, int, int, int] | None] | None = None,
    ) -> list[Detections]:
        """Detect in several frames (e.g. one per camera); frames whose network input has the same
        shape share one batched session call.

        Args:
            images: BGR (H, W, 3) frames.
            rois: per frame, the region of interest to detect in (default: the configured one).
        """
        if rois is not None and len(rois) != len(images):
            raise InferenceError(f"detector: {len(rois)} regions of interest for {len(images)} frames")
        per_roi = list(rois) if rois is not None else [self.config.roi] * len(images)
        results: list[Detections | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
                shape = getattr(img, "shape", type(img).__name__)
                raise InferenceError(f"detector: frame must be a non-empty (H, W, 3) image, got {shape}")
            roi = per_roi[i] if per_roi[i] is not None else None
            groups.setdefault(
                self.input_size(img.shape[:2], roi or (0, 0, img.shape[1], img.shape[0])), []
            ).append(i)
        for input_hw, idx in groups.items():
            sess = self.session(input_hw)
            prepared = [letterbox(images[i], input_hw, per_roi[i]) for i in idx]
            tensor = to_tensor([p[0] for p in prepared])
            (output,) = sess.run({sess.input_names[0]: tensor})[:1]
            for k, i in enumerate(idx):
                results[i] = self._postprocess(output[k], prepared[k][1])
        return [r if r is not None else Detections.empty() for r in results]

    def _postprocess(self, output: npt.NDArray[np.float32], geometry: Geometry) -> Detections:
        xyxy, conf, cls = decode(output, self._keep_ids, self.config.confidence)
        keep = nms(xyxy, conf, cls, self.config.iou)
        xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep]
        if self.merges_riders:
            xyxy, conf, cls = merge_riders(xyxy, conf, cls, self._person, self._two_wheelers)
        return Detections(xyxy=geometry.to_frame(xyxy), confidence=conf, class_id=cls)
