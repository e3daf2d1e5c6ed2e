"""`Frame`: one decoded video image and where and when it came from.

The unit that flows from a `streams` source to the detector, the tracker and the evidence builder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        image: BGR uint8 image, shape (H, W, 3). Treat it as read-only: the same array may be held by
            several consumers (detector, evidence ring buffer); draw on a copy.
        index: 0-based. For files, the frame number in the file. For live sources, a running count of
            the frames read from the camera since the source was opened, across reconnects, dropped
            frames included, so a gap between two delivered indices is the number of frames dropped.
        ts: seconds. For files, the container time of the frame (``CAP_PROP_POS_MSEC / 1000``);
            for live sources, the time at which the frame was read on `streams.clock.frame_clock`
            (epoch seconds that advance with the monotonic clock).
        camera_id: id of the camera the frame comes from.

    Raises:
        ValueError: on construction, when ``image`` is not a uint8 array of shape (H, W, 3).
    """

    image: np.ndarray
    index: int
    ts: float
    camera_id: str

    def __post_init__(self) -> None:
        image = self.image
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"Frame.image must be a (H, W, 3) array, got {shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"Frame.image must be uint8, got {image.dtype}")

    @property
    def resolution_wh(self) -> tuple[int, int]:
        """(width, height) of the image in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])
