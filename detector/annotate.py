"""Drawing `Detections` on frames (STYLE.md §8): pure functions returning a new image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from detector.detections import Detections

_PALETTE = np.array(
    [
        (56, 56, 255),
        (151, 157, 255),
        (31, 112, 255),
        (29, 178, 255),
        (49, 210, 207),
        (10, 249, 72),
        (23, 204, 146),
        (134, 219, 61),
        (52, 147, 26),
        (187, 212, 0),
        (168, 153, 44),
        (255, 194, 0),
        (147, 69, 52),
        (255, 115, 100),
        (236, 24, 0),
        (255, 56, 132),
        (133, 0, 82),
        (255, 56, 203),
    ],
    np.uint8,
)


def color_for(key: int) -> tuple[int, int, int]:
    """A stable BGR colour for a track id or class id."""
    c = _PALETTE[int(key) % len(_PALETTE)]
    return int(c[0]), int(c[1]), int(c[2])


def draw_detections(
    image: npt.NDArray[np.uint8],
    detections: Detections,
    class_names: Sequence[str],
    thickness: int = 2,
) -> npt.NDArray[np.uint8]:
    """A copy of `image` with boxes and labels ("#12 motorcycle 0.81") drawn."""
    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 1200)
    for k in range(len(detections)):
        x1, y1, x2, y2 = (round(float(v)) for v in detections.xyxy[k])
        cls = int(detections.class_id[k])
        tid = None if detections.tracker_id is None else int(detections.tracker_id[k])
        color = color_for(tid if tid is not None else cls)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        name = class_names[cls] if 0 <= cls < len(class_names) else str(cls)
        label = f"{'#' + str(tid) + ' ' if tid is not None else ''}{name} {detections.confidence[k]:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), color, -1)
        cv2.putText(
            out, label, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return out


def draw_roi(image: npt.NDArray[np.uint8], roi: tuple[int, int, int, int] | None) -> npt.NDArray[np.uint8]:
    """A copy of `image` with the detection region outlined (or the image itself if none)."""
    if roi is None:
        return image
    out = image.copy()
    cv2.rectangle(out, roi[:2], roi[2:], (0, 255, 255), 1, cv2.LINE_AA)
    return out
