"""Labelled camera frames for training and evaluating the detector (datasets/vn_traffic).

The dataset file lists clips (a video under the shared videos folder), each with its enforcement zone,
an optional stop line, the frame step and time splits. Labels are YOLO txt files, one per labelled
frame, in `labels/<clip>/<frame:06d>.txt` beside the dataset file, with COCO class ids and coordinates
normalised to the whole frame. The frames themselves are decoded from the videos when needed and never
stored in the repository.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = logging.getLogger(__name__)

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


class DatasetError(ValueError):
    """A dataset file, label file or video that cannot be used; the message names it."""


class ClipSpec(BaseModel):
    """One labelled clip."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="Video path relative to the videos folder.")
    licence: str = ""
    zone: tuple[int, int, int, int] = Field(description="Enforcement zone x1, y1, x2, y2 (frame pixels).")
    stop_line: tuple[tuple[int, int], tuple[int, int]] | None = None
    step: int = Field(ge=1, description="Every step-th frame of a split is labelled.")
    splits: dict[Split, tuple[int, int]] = Field(description="Half-open frame ranges per split.")

    @model_validator(mode="after")
    def _check(self) -> ClipSpec:
        x1, y1, x2, y2 = self.zone
        if x2 <= x1 or y2 <= y1 or min(self.zone) < 0:
            raise ValueError(f"zone must be x1, y1, x2, y2 with x2 > x1 >= 0, y2 > y1 >= 0, got {self.zone}")
        ranges = sorted(self.splits.values())
        for (_, b), (c, _) in itertools.pairwise(ranges):
            if b > c:
                raise ValueError(f"split ranges overlap: {self.splits}")
        if any(b <= a for a, b in ranges):
            raise ValueError(f"empty split range: {self.splits}")
        return self

    def frames(self, split: Split | None = None) -> list[int]:
        """Frame indices labelled in one split (all splits when None), ascending."""
        out: list[int] = []
        for name, (a, b) in self.splits.items():
            if split is None or name == split:
                out += range(a, b, self.step)
        return sorted(out)

    def split_of(self, frame: int) -> Split | None:
        for name, (a, b) in self.splits.items():
            if a <= frame < b:
                return name
        return None


class DatasetSpec(BaseModel):
    """The dataset file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: dict[int, str]
    clips: dict[str, ClipSpec] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class LabelledFrame:
    """One labelled frame: boxes (N, 4) xyxy float32 in frame pixels and COCO class ids (N,) int32."""

    clip: str
    index: int
    split: Split
    xyxy: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]


class Dataset:
    """A dataset file with its labels folder."""

    def __init__(self, path: Path) -> None:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            self.spec = DatasetSpec.model_validate(raw)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read the dataset file ({exc.strerror})") from None
        except (yaml.YAMLError, ValidationError) as exc:
            first = str(exc).splitlines()[0:3]
            raise DatasetError(f"{path}: not a valid dataset file: {' '.join(first)}") from None
        self.path = path
        self.labels_dir = path.parent / "labels"

    def label_path(self, clip: str, index: int) -> Path:
        return self.labels_dir / clip / f"{index:06d}.txt"

    def labelled(
        self, frame_sizes: dict[str, tuple[int, int]], splits: Iterable[Split] = SPLITS
    ) -> Iterator[LabelledFrame]:
        """Labelled frames of the given splits, clip by clip, in time order.

        Args:
            frame_sizes: (height, width) of each clip's frames, to scale the normalised labels.

        Only frames with a label file are returned: a missing file means not labelled (yet), not empty.
        """
        wanted = set(splits)
        for name, clip in self.spec.clips.items():
            h, w = frame_sizes[name]
            for index in clip.frames():
                split = clip.split_of(index)
                path = self.label_path(name, index)
                if split not in wanted or not path.exists():
                    continue
                xyxy, cls = read_yolo_labels(path, (h, w), set(self.spec.classes))
                yield LabelledFrame(name, index, split, xyxy, cls)

    def decoded(
        self, videos: Path, splits: Iterable[Split] = SPLITS
    ) -> list[tuple[LabelledFrame, npt.NDArray[np.uint8]]]:
        """The labelled frames of these splits with their decoded BGR images, clip by clip in time order.

        Raises:
            DatasetError: a video cannot be opened or is shorter than its labels.
        """
        sizes = {name: video_size(videos / clip.file) for name, clip in self.spec.clips.items()}
        labelled = list(self.labelled(sizes, splits))
        out: list[tuple[LabelledFrame, npt.NDArray[np.uint8]]] = []
        for name, clip in self.spec.clips.items():
            mine = [f for f in labelled if f.clip == name]
            if mine:
                images = read_video_frames(videos / clip.file, [f.index for f in mine])
                out += [(f, images[f.index]) for f in mine]
        return out


def read_yolo_labels(
    path: Path, frame_hw: tuple[int, int], allowed: set[int] | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Read a YOLO txt label file into frame-pixel boxes (N, 4) xyxy and class ids (N,).

    Raises:
        DatasetError: a malformed line or a class id not in `allowed`, naming the file and line.
    """
    h, w = frame_hw
    boxes: list[tuple[float, float, float, float]] = []
    classes: list[int] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        try:
            k = int(parts[0])
            cx, cy, bw, bh = (float(v) for v in parts[1:5])
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{n}: expected 'class cx cy w h', got {line!r}") from None
        if len(parts) != 5 or not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < bw <= 1 and 0 < bh <= 1):
            raise DatasetError(f"{path}:{n}: values must be 5 numbers normalised to 0..1, got {line!r}")
        if allowed is not None and k not in allowed:
            raise DatasetError(f"{path}:{n}: class {k} is not in the dataset's classes {sorted(allowed)}")
        boxes.append(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        classes.append(k)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int32)


def read_video_frames(video: Path, indices: Iterable[int]) -> dict[int, npt.NDArray[np.uint8]]:
    """Decode the frames with these indices (0-based, in decode order) from a video file.

    Raises:
        DatasetError: the video cannot be opened or ends before the last wanted frame.
    """
    wanted = set(indices)
    if not video.is_file():
        raise DatasetError(f"{video}: video not found")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DatasetError(f"{video}: cannot be opened as a video")
    out: dict[int, npt.NDArray[np.uint8]] = {}
    i = 0
    try:
        while len(out) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            if i in wanted:
                out[i] = np.asarray(frame, np.uint8)
            i += 1
    finally:
        cap.release()
    if len(out) < len(wanted):
        raise DatasetError(f"{video}: ended at frame {i}, before frames {sorted(wanted - set(out))[:5]}")
    return out


def video_size(video: Path) -> tuple[int, int]:
    """(height, width) of a video's frames."""
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise DatasetError(f"{video}: cannot be opened as a video")
        return int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        cap.release()


def crop_boxes(
    xyxy: npt.NDArray[np.float32], zone: tuple[int, int, int, int], min_visible: float = 0.4
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Boxes clipped to a zone, in zone coordinates, and which of them are kept.

    A box is kept when at least `min_visible` of its area, and at least 3 px each way, is inside the zone
    (a sliver of a vehicle at the zone's edge teaches nothing and would be a false target).
    """
    x1, y1, x2, y2 = zone
    clipped = xyxy.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], x1, x2)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], y1, y2)
    wh = clipped[:, 2:] - clipped[:, :2]
    area = np.prod(np.clip(xyxy[:, 2:] - xyxy[:, :2], 1e-6, None), axis=1)
    keep = (wh.min(axis=1) >= 3) & (np.prod(wh, axis=1) >= min_visible * area)
    clipped -= np.asarray([x1, y1, x1, y1], np.float32)
    return clipped, keep
