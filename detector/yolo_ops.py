"""Pure pre- and post-processing for YOLOv8 detection graphs (STYLE.md §2).

Only this module and `detector.yolo_graph` know the YOLOv8 tensor layout: input ``(B, 3, H, W)``
RGB in [0, 1]; output ``(B, 4 + C, N)`` with centre-x, centre-y, width, height in input pixels followed
by C class scores (already sigmoid) for each of the N grid cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Geometry:
    """How a frame (or its region of interest) maps into the network input.

    ``input_xy = (frame_xy - offset) * scale + pad`` ; boxes map back with `to_frame`.
    """

    scale: float
    pad_xy: tuple[float, float]
    offset_xy: tuple[float, float]

    def to_frame(self, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Boxes (N, 4) from input pixels to frame pixels."""
        px, py = self.pad_xy
        ox, oy = self.offset_xy
        shift = np.array([px, py, px, py], np.float32)
        offset = np.array([ox, oy, ox, oy], np.float32)
        return ((xyxy - shift) / self.scale + offset).astype(np.float32)


def input_size_for(frame_hw: tuple[int, int], width: int, multiple: int = 32) -> tuple[int, int]:
    """Network input (height, width) that keeps the frame's aspect at the given width.

    The height is rounded up to a multiple of the largest stride, so at most `multiple - 1` rows are
    padding instead of the quarter of a square letterbox.
    """
    h, w = frame_hw
    if h <= 0 or w <= 0:
        raise ValueError(f"frame size must be positive, got {h}x{w}")
    if width % multiple:
        raise ValueError(f"input width must be a multiple of {multiple}, got {width}")
    height = int(np.ceil(h * width / w / multiple) * multiple)
    return max(height, multiple), width


def letterbox(
    image: npt.NDArray[np.uint8],
    input_hw: tuple[int, int],
    roi_xyxy: tuple[int, int, int, int] | None = None,
) -> tuple[npt.NDArray[np.uint8], Geometry]:
    """Resize (keeping aspect) and pad an image, or its region of interest, to `input_hw`.

    Args:
        image: (H, W, 3) BGR uint8.
        input_hw: network input (height, width).
        roi_xyxy: optional crop of the image in pixels, applied before resizing.

    Returns:
        (input_h, input_w, 3) BGR uint8 and the `Geometry` that maps boxes back.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"image must be (H, W, 3) and non-empty, got {image.shape}")
    ox = oy = 0
    if roi_xyxy is not None:
        x1, y1, x2, y2 = roi_xyxy
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(image.shape[1], x2), min(image.shape[0], y2)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(
                f"region of interest {roi_xyxy} is outside the {image.shape[1]}x{image.shape[0]} image"
            )
        image = image[y1:y2, x1:x2]
        ox, oy = x1, y1
    h, w = image.shape[:2]
    in_h, in_w = input_hw
    scale = min(in_h / h, in_w / w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if (new_w, new_h) != (w, h):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=interp), np.uint8)
    pad_x, pad_y = (in_w - new_w) / 2, (in_h - new_h) / 2
    if new_w != in_w or new_h != in_h:
        top, left = round(pad_y - 0.1), round(pad_x - 0.1)
        image = cv2.copyMakeBorder(  # type: ignore[assignment]
            image,
            top,
            in_h - new_h - top,
            left,
            in_w - new_w - left,
            cv2.BORDER_CONSTANT,
            value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
        )
        pad_x, pad_y = float(left), float(top)
    return np.ascontiguousarray(image), Geometry(scale, (pad_x, pad_y), (float(ox), float(oy)))


def to_tensor(images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
    """BGR uint8 images of one size → (B, 3, H, W) float32 RGB in [0, 1]."""
    return np.asarray(
        cv2.dnn.blobFromImages(list(images), scalefactor=1 / 255.0, swapRB=True), dtype=np.float32
    )


def decode(
    output: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.int32],
    conf_threshold: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Candidate boxes of one image from a raw YOLOv8 output.

    Args:
        output: (4 + C, N) raw output of one image.
        class_ids: (K,) classes to keep; the rest are ignored before thresholding.
        conf_threshold: minimum class score.

    Returns:
        xyxy (M, 4) float32 in input pixels, confidence (M,), class_id (M,) int32.
    """
    if output.ndim != 2 or output.shape[0] < 5:
        raise ValueError(f"output must be (4 + C, N), got {output.shape}")
    scores = output[4 + class_ids]  # (K, N)
    best = scores.argmax(axis=0)
    conf = scores[best, np.arange(scores.shape[1])]
    keep = conf >= conf_threshold
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32)
    cx, cy, w, h = output[:4, keep]
    half_w, half_h = w * 0.5, h * 0.5
    xyxy = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)
    return xyxy, conf[keep].astype(np.float32), class_ids[best[keep]].astype(np.int32)


def nms(
    xyxy: npt.NDArray[np.float32],
    confidence: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int32],
    iou_threshold: float,
    max_det: int = 300,
) -> npt.NDArray[np.int64]:
    """Class-aware non-maximum suppression. Returns kept indices, best first."""
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    # Offsetting boxes by class makes one NMS pass class-aware (boxes of different classes never overlap).
    offset = class_id.astype(np.float32)[:, None] * 8192.0
    boxes = xyxy + offset
    order = np.argsort(-confidence, kind="stable")
    keep: list[int] = []
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def merge_riders(
    xyxy: npt.NDArray[np.float32],
    confidence: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int32],
    person_id: int,
    two_wheeler_ids: Sequence[int],
    min_overlap: float = 0.5,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Fold each rider (a person on a motorbike or bicycle) into one rider + vehicle box.

    A camera sees a rider and the motorbike as one road user; traffic rules and plates apply to that
    box (the convention of the labelled Hanoi frames). A person is a rider when at least
    `min_overlap` of the lower half of the person box lies inside a two-wheeler box; the two-wheeler's
    box grows to the union and the person row is dropped. Persons on foot are kept as pedestrians.
    """
    n = len(xyxy)
    if n == 0:
        return xyxy, confidence, class_id
    is_person = class_id == person_id
    is_wheel = np.isin(class_id, np.asarray(two_wheeler_ids, np.int32))
    if not is_person.any() or not is_wheel.any():
        return xyxy, confidence, class_id
    p_idx = np.flatnonzero(is_person)
    w_idx = np.flatnonzero(is_wheel)
    persons = xyxy[p_idx].copy()
    persons[:, 1] = (persons[:, 1] + persons[:, 3]) * 0.5  # lower half: legs and seat
    wheels = xyxy[w_idx]
    lt = np.maximum(persons[:, None, :2], wheels[None, :, :2])
    rb = np.minimum(persons[:, None, 2:], wheels[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    p_area = np.prod(np.clip(persons[:, 2:] - persons[:, :2], 1e-6, None), axis=1)
    overlap = inter / p_area[:, None]  # (P, W)
    best_w = overlap.argmax(axis=1)
    is_rider = overlap[np.arange(len(p_idx)), best_w] >= min_overlap
    out = xyxy.copy()
    conf = confidence.copy()
    for pi, wi in zip(p_idx[is_rider], w_idx[best_w[is_rider]], strict=True):
        out[wi, :2] = np.minimum(out[wi, :2], xyxy[pi, :2])
        out[wi, 2:] = np.maximum(out[wi, 2:], xyxy[pi, 2:])
        conf[wi] = max(conf[wi], confidence[pi])
    keep = np.ones(n, bool)
    keep[p_idx[is_rider]] = False
    return out[keep], conf[keep], class_id[keep]
