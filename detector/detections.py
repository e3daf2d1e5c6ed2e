"""`Detections`: one immutable, vectorised batch of boxes per frame (STYLE.md §1).

Every stage after the detector (tracker, rules, evidence) works on this one type. Arrays are checked
on construction and never mutated: indexing returns a new object, and so does `with_tracker_id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]
IdArray = npt.NDArray[np.int64]


def _frozen(a: np.ndarray) -> np.ndarray:
    # A read-only view: cheap, and our code cannot write through it. The caller's own array keeps
    # its flags (we do not copy on the hot path).
    view = a.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Boxes of one frame.

    Attributes:
        xyxy: (N, 4) float32, pixel corners x1, y1, x2, y2 in the frame's coordinates.
        confidence: (N,) float32 in [0, 1].
        class_id: (N,) int32, ids of the detector's class list.
        tracker_id: (N,) int64 or None before tracking.
        data: extra per-row arrays, each with first dimension N.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    tracker_id: IdArray | None = None
    data: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be (N, 4), got {xyxy.shape}")
        n = xyxy.shape[0]
        confidence = np.asarray(self.confidence, dtype=np.float32)
        class_id = np.asarray(self.class_id, dtype=np.int32)
        if confidence.shape != (n,):
            raise ValueError(f"confidence must be ({n},), got {confidence.shape}")
        if class_id.shape != (n,):
            raise ValueError(f"class_id must be ({n},), got {class_id.shape}")
        tracker_id = None
        if self.tracker_id is not None:
            tracker_id = np.asarray(self.tracker_id, dtype=np.int64)
            if tracker_id.shape != (n,):
                raise ValueError(f"tracker_id must be ({n},), got {tracker_id.shape}")
        data: dict[str, np.ndarray] = {}
        for key, value in self.data.items():
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"data['{key}'] must have first dimension {n}, got {arr.shape}")
            data[key] = _frozen(arr)
        object.__setattr__(self, "xyxy", _frozen(xyxy))
        object.__setattr__(self, "confidence", _frozen(confidence))
        object.__setattr__(self, "class_id", _frozen(class_id))
        object.__setattr__(self, "tracker_id", None if tracker_id is None else _frozen(tracker_id))
        object.__setattr__(self, "data", MappingProxyType(data))

    @classmethod
    def empty(cls) -> Detections:
        """No boxes."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int32),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> Detections:
        """Rows selected by a boolean mask, an index array or a slice, as a new `Detections`."""
        if isinstance(index, int | np.integer):
            index = slice(int(index), int(index) + 1 or None)
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={k: v[index] for k, v in self.data.items()},
        )

    def with_tracker_id(self, tracker_id: np.ndarray) -> Detections:
        """A copy with `tracker_id` set (N,)."""
        return Detections(self.xyxy, self.confidence, self.class_id, tracker_id, self.data)

    def with_data(self, **arrays: np.ndarray) -> Detections:
        """A copy with extra per-row arrays added or replaced."""
        return Detections(self.xyxy, self.confidence, self.class_id, self.tracker_id, {**self.data, **arrays})

    @property
    def area(self) -> FloatArray:
        """(N,) box areas in pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return np.asarray(wh[:, 0] * wh[:, 1], np.float32)

    @property
    def bottom_center(self) -> FloatArray:
        """(N, 2) middle of each box's bottom edge: where a vehicle touches the road."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5, self.xyxy[:, 3]], axis=1).astype(
            np.float32
        )

    @staticmethod
    def merge(batches: list[Detections]) -> Detections:
        """Concatenate several batches (tracker ids kept only if every batch has them)."""
        if not batches:
            return Detections.empty()
        with_ids = all(b.tracker_id is not None for b in batches)
        keys = set.intersection(*(set(b.data) for b in batches)) if batches else set()
        return Detections(
            xyxy=np.concatenate([b.xyxy for b in batches]),
            confidence=np.concatenate([b.confidence for b in batches]),
            class_id=np.concatenate([b.class_id for b in batches]),
            tracker_id=(
                np.concatenate([b.tracker_id for b in batches if b.tracker_id is not None])
                if with_ids
                else None
            ),
            data={k: np.concatenate([b.data[k] for b in batches]) for k in keys},
        )


def box_iou(a: np.ndarray, b: np.ndarray) -> npt.NDArray[np.float32]:
    """IoU matrix between boxes a (N, 4) and b (M, 4), xyxy → (N, M) float32."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
