"""The detector interface: any back-end that turns frames into `Detections`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from detector.detections import Detections


class Detector(Protocol):
    """Frames in, one `Detections` per frame out, in frame pixel coordinates."""

    class_names: tuple[str, ...]

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        """Detect in one BGR (H, W, 3) frame."""
        ...

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect in several frames (e.g. one per camera) in one call where the back-end allows."""
        ...
