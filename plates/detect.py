"""Licence-plate detection: a one-class YOLOv8n plate detector on ONNX Runtime.

The model (``plate-yolov8n`` in ``models/manifest.yaml``) is fastanpr's YOLOv8n plate detector converted
to ONNX with dynamic input size (see ``tools/convert_plate_model.py``). `PlateDetector` runs it on a
whole image or on a vehicle's box in a frame, and returns `PlateBoxes` in the input image's pixels.
A vehicle's box often shows a neighbour's plate too: `plate_owners` gives each plate of a frame to at
most one of its vehicles.

Only this module knows the plate model's tensor layout (STYLE.md §2): input ``images`` (1, 3, H, W)
float32 RGB in [0, 1] with H and W multiples of 32; output (1, 4 + C, N) with centre-x, centre-y, width,
height in input pixels followed by C class scores (sigmoid applied) for each of the N anchor cells.
The pre- and post-processing functions below are pure and tested on tiny arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from models import resolve
from models.runtime import InferenceError, OnnxSession, RuntimeOptions
from plates.errors import PlateError

logger = logging.getLogger(__name__)

MODEL_NAME = "plate-yolov8n"
#: Grey of the padding, as in the Ultralytics pipeline the model was trained with.
PAD_VALUE = 114
#: Largest stride of the YOLOv8 head: input sides must be multiples of it.
STRIDE = 32

FloatArray = npt.NDArray[np.float32]
UInt8Image = npt.NDArray[np.uint8]


class PlateDetectorConfig(BaseModel):
    """How plates are detected. Defaults and the measurements behind them: models/files/README.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(
        default=640,
        ge=STRIDE,
        le=2048,
        multiple_of=STRIDE,
        description="Long side of the network input for whole images (the model was trained at 640).",
    )
    crop_size: int = Field(
        default=384,
        ge=STRIDE,
        le=2048,
        multiple_of=STRIDE,
        description="Long side of the network input for a vehicle crop.",
    )
    crop_margin: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Margin added around a vehicle box before cropping, as a fraction of its size.",
    )
    vertical_stretch: float = Field(
        default=2.0,
        ge=0.5,
        le=4.0,
        description=(
            "Height scale relative to width scale when resizing a whole image. On undistorted input "
            "the model draws boxes 1.3-1.5 times as tall as the plate (its training photos were "
            "probably stretched to 640x640); stretching by 2 brings its boxes onto the plate."
        ),
    )
    crop_vertical_stretch: float = Field(
        default=1.5,
        ge=0.5,
        le=4.0,
        description=(
            "The same for a vehicle crop. Less than for whole images: tall motorbike crops would "
            "otherwise lose too much width, and small rear plates were found more often at 1.5."
        ),
    )
    upscale: bool = Field(
        default=True,
        description="Enlarge images smaller than the input size (small plates get more pixels).",
    )
    conf_threshold: float = Field(default=0.25, gt=0.0, lt=1.0, description="Minimum plate score.")
    iou_threshold: float = Field(default=0.5, gt=0.0, le=1.0, description="NMS overlap threshold.")
    max_det: int = Field(default=50, ge=1, le=1000, description="Most plates returned per image.")


@dataclass(frozen=True, slots=True, eq=False)
class PlateBoxes:
    """Plate boxes found in one image, best first.

    Attributes:
        xyxy: (N, 4) float32 pixel corners x1, y1, x2, y2 in the coordinates of the image given to
            the detector (the whole frame for `PlateDetector.detect_in_vehicle`).
        confidence: (N,) float32 plate scores in [0, 1], descending.
    """

    xyxy: FloatArray
    confidence: FloatArray

    def __post_init__(self) -> None:
        # Read-only views: the caller's own arrays keep their flags.
        xyxy = np.asarray(self.xyxy, dtype=np.float32).view()
        confidence = np.asarray(self.confidence, dtype=np.float32).view()
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be (N, 4), got {xyxy.shape}")
        if confidence.shape != (xyxy.shape[0],):
            raise ValueError(f"confidence must be ({xyxy.shape[0]},), got {confidence.shape}")
        xyxy.flags.writeable = False
        confidence.flags.writeable = False
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)

    @classmethod
    def empty(cls) -> PlateBoxes:
        """No plates."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])


@dataclass(frozen=True, slots=True)
class Resize:
    """How image pixels map into the network input: ``input_xy = image_xy * scale_xy``.

    The image sits in the top-left corner of the input; padding is on the right and bottom.
    """

    scale_xy: tuple[float, float]

    def to_image(self, xyxy: FloatArray) -> FloatArray:
        """Boxes (N, 4) from network-input pixels back to image pixels."""
        sx, sy = self.scale_xy
        return (xyxy / np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)


def check_image(image: object, what: str = "image") -> UInt8Image:
    """The image itself if it is a non-empty (H, W, 3) uint8 array.

    Raises:
        PlateError: not a numpy array, wrong dtype, wrong shape, or zero size.
    """
    if not isinstance(image, np.ndarray):
        raise PlateError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise PlateError(f"{what} must be uint8 BGR, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise PlateError(f"{what} must be (H, W, 3) BGR, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise PlateError(f"{what} is empty: shape {image.shape}")
    return image


def plan_resize(
    image_hw: tuple[int, int], long_side: int, vertical_stretch: float = 1.0, upscale: bool = True
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resized image size and network input size for an image.

    The image is stretched vertically by `vertical_stretch` (see `PlateDetectorConfig`), then scaled
    so that its long side becomes `long_side` (or is left as it is when it is already smaller and
    `upscale` is False). Each input side is that size rounded up to a multiple of `STRIDE`, so the
    padding is at most ``STRIDE - 1`` pixels instead of the bands of a square letterbox.

    Args:
        image_hw: (height, width) of the image.
        long_side: long side of the resized image, a multiple of `STRIDE`.
        vertical_stretch: height scale relative to width scale (1 keeps the aspect).
        upscale: allow enlarging.

    Returns:
        ((resized_h, resized_w), (input_h, input_w)).

    Raises:
        ValueError: a non-positive size or stretch, or `long_side` not a multiple of `STRIDE`.
    """
    h, w = image_hw
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    if long_side <= 0 or long_side % STRIDE:
        raise ValueError(f"long side must be a positive multiple of {STRIDE}, got {long_side}")
    if vertical_stretch <= 0:
        raise ValueError(f"vertical stretch must be positive, got {vertical_stretch}")
    scale = long_side / max(w, h * vertical_stretch)
    if not upscale:
        scale = min(scale, 1.0)
    new_h = max(1, round(h * scale * vertical_stretch))
    new_w = max(1, round(w * scale))
    in_h = -(-new_h // STRIDE) * STRIDE
    in_w = -(-new_w // STRIDE) * STRIDE
    return (new_h, new_w), (in_h, in_w)


def resize_pad(
    image: UInt8Image, resized_hw: tuple[int, int], input_hw: tuple[int, int]
) -> tuple[UInt8Image, Resize]:
    """Resize an image to `resized_hw` and pad it (grey, right and bottom) to `input_hw`.

    Args:
        image: (H, W, 3) uint8.
        resized_hw: size of the resized image, each side at most the input's.
        input_hw: network input (height, width).

    Returns:
        (input_h, input_w, 3) uint8 and the `Resize` that maps boxes back.

    Raises:
        ValueError: `resized_hw` does not fit in `input_hw`.
    """
    import cv2

    h, w = image.shape[:2]
    new_h, new_w = resized_hw
    in_h, in_w = input_hw
    if not (0 < new_h <= in_h and 0 < new_w <= in_w):
        raise ValueError(f"resized size {resized_hw} does not fit the input {input_hw}")
    if (new_h, new_w) != (h, w):
        shrink = new_w * new_h < w * h
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=interp), np.uint8)
    if (new_h, new_w) != (in_h, in_w):
        border = (PAD_VALUE,) * 3
        padded = cv2.copyMakeBorder(
            image, 0, in_h - new_h, 0, in_w - new_w, cv2.BORDER_CONSTANT, value=border
        )
        image = np.asarray(padded, np.uint8)
    return np.ascontiguousarray(image), Resize((new_w / w, new_h / h))


def to_blob(image: UInt8Image) -> FloatArray:
    """(H, W, 3) BGR uint8 → (1, 3, H, W) float32 RGB in [0, 1]."""
    rgb = image[:, :, ::-1].transpose(2, 0, 1)
    blob = np.empty((1, *rgb.shape), np.float32)
    np.multiply(rgb, np.float32(1 / 255), out=blob[0], casting="unsafe")
    return blob


def decode(output: FloatArray, conf_threshold: float) -> tuple[FloatArray, FloatArray]:
    """Candidate plate boxes of one image from a raw YOLOv8 output.

    Args:
        output: (4 + C, N) output of one image: cx, cy, w, h, then C class scores. With C > 1 the
            best class score is the plate score (every class of a plate model is a kind of plate).
        conf_threshold: minimum score kept.

    Returns:
        xyxy (M, 4) float32 in input pixels, confidence (M,) float32, in the order of `output`.

    Raises:
        ValueError: `output` is not (4 + C, N) with C >= 1.
    """
    if output.ndim != 2 or output.shape[0] < 5:
        raise ValueError(f"output must be (4 + C, N) with C >= 1, got {output.shape}")
    scores = output[4:].max(axis=0)
    keep = scores >= conf_threshold
    cx, cy, w, h = output[:4, keep]
    half_w, half_h = w / 2, h / 2
    xyxy = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)
    return xyxy.reshape(-1, 4), scores[keep].astype(np.float32)


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes → (N, M) float32 (0 for empty boxes)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou.astype(np.float32)


def nms(
    xyxy: FloatArray, confidence: FloatArray, iou_threshold: float, max_det: int
) -> npt.NDArray[np.int64]:
    """Greedy non-maximum suppression.

    Args:
        xyxy: (N, 4) boxes.
        confidence: (N,) scores.
        iou_threshold: a box overlapping a better one by more than this is dropped.
        max_det: most boxes kept.

    Returns:
        (K,) int64 indices of the kept boxes, best first (ties keep input order).
    """
    order = np.argsort(-np.asarray(confidence), kind="stable")
    keep: list[int] = []
    # Plate candidates after the score filter are few (tens), so an O(K·N) loop over survivors is
    # cheaper than building the full N×N IoU matrix.
    while order.size and len(keep) < max_det:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        rest = order[1:]
        overlap = box_iou(xyxy[best : best + 1], xyxy[rest])[0]
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, np.int64)


def clip_boxes(xyxy: FloatArray, image_wh: tuple[int, int]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Boxes (N, 4) clipped to an image of (width, height), and which of them keep an area.

    Returns:
        clipped (N, 4) float32 and (N,) bool, False for a box less than one pixel wide or high after
        clipping (it lay in the padding or outside the image).
    """
    w, h = image_wh
    limits = np.array([w, h, w, h], np.float32)
    clipped = np.clip(xyxy, 0, limits).astype(np.float32)
    visible = (clipped[:, 2] - clipped[:, 0] >= 1) & (clipped[:, 3] - clipped[:, 1] >= 1)
    return clipped, visible


def crop_region(
    vehicle_xyxy: npt.ArrayLike, image_wh: tuple[int, int], margin: float
) -> tuple[int, int, int, int]:
    """Integer crop (x1, y1, x2, y2) around a vehicle box, widened by `margin` and clipped to the image.

    The margin is a fraction of the box's width and height on each side: a detector box often cuts
    through a plate that sits on the bumper edge.

    Raises:
        PlateError: the box is not 4 finite numbers, is inverted, or lies outside the image.
    """
    box = np.asarray(vehicle_xyxy, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise PlateError(f"vehicle box must be 4 finite numbers x1, y1, x2, y2, got {vehicle_xyxy!r}")
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise PlateError(f"vehicle box has no area: {box.tolist()}")
    w, h = image_wh
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    cx1, cy1 = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
    cx2, cy2 = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if cx2 <= cx1 or cy2 <= cy1:
        raise PlateError(f"vehicle box {box.tolist()} is outside the {w}x{h} image")
    return cx1, cy1, cx2, cy2


#: A plate's centre lies at 47-95 % of its own vehicle's box height on the Giang Vo and Hai Phong clips
#: (490 plates inside exactly one vehicle box); above `OWNER_LOWER_PART` it is on the part of the box
#: (rider, windscreen, roof) where no plate of that vehicle is.
OWNER_LOWER_PART = 0.4
#: A plate in the lower part of several boxes belongs to the one it is centred on better by this much
#: (its offset from the box's centre line, as a fraction of the box width); otherwise it is nobody's.
#: Own plates lie within 0.3 of their box's centre line (5th-95th percentile, same clips).
OWNER_CENTRE_MARGIN = 0.2


def plate_owners(
    plate_xyxy: npt.ArrayLike,
    vehicle_xyxy: npt.ArrayLike,
    below: float = 0.1,
) -> npt.NDArray[np.int64]:
    """The vehicle each plate belongs to, or -1: at most one owner per plate.

    A plate can belong to a vehicle whose box holds the plate's centre across its width and in its
    lower part (from `OWNER_LOWER_PART` of its height down to `below` of it beneath the bottom edge,
    where a box cut at the bumper leaves its plate). When several boxes hold it (motorbikes side by
    side, or one behind the other), it belongs to the one it is clearly centred on
    (`OWNER_CENTRE_MARGIN`), or to none. Which of two overlapping boxes is in front does not decide:
    the plate of the one in front shows in the box of the one behind (Hai Phong clip, frame 120), and
    the plate of the one behind shows through beside the rider in front just as well; a plate given
    to the wrong vehicle fines its neighbour, one given to nobody leaves the officer to read it.

    Args:
        plate_xyxy: (P, 4) plate boxes, frame pixels.
        vehicle_xyxy: (V, 4) vehicle boxes of the same frame.
        below: how far under a vehicle's bottom edge its plate's centre may lie, fraction of its height.

    Returns:
        (P,) int64 index into `vehicle_xyxy`, -1 for a plate that is nobody's.

    Raises:
        ValueError: an array is not (N, 4).
    """
    plates = np.asarray(plate_xyxy, np.float64)
    vehicles = np.asarray(vehicle_xyxy, np.float64)
    for name, a in (("plate_xyxy", plates), ("vehicle_xyxy", vehicles)):
        if a.ndim != 2 or a.shape[1] != 4:
            raise ValueError(f"{name} must be (N, 4), got {a.shape}")
    owners = np.full(len(plates), -1, np.int64)
    if not len(plates) or not len(vehicles):
        return owners
    cx = (plates[:, 0:1] + plates[:, 2:3]) * 0.5  # (P, 1)
    cy = (plates[:, 1:2] + plates[:, 3:4]) * 0.5
    x1, y1, x2, y2 = (vehicles[:, k][None, :] for k in range(4))  # (1, V)
    h = np.maximum(y2 - y1, 1.0)
    holds = (cx >= x1) & (cx <= x2) & (cy >= y1 + OWNER_LOWER_PART * h) & (cy <= y2 + below * h)  # (P, V)
    # Offset from each holding box's centre line; boxes that do not hold the plate count as far off.
    far = 2.0 + OWNER_CENTRE_MARGIN
    offset = np.where(holds, np.abs(cx - (x1 + x2) * 0.5) / np.maximum(x2 - x1, 1.0), far)
    order = np.argsort(offset, axis=1)
    rows = np.arange(len(plates))
    best = offset[rows, order[:, 0]]
    second = offset[rows, order[:, 1]] if vehicles.shape[0] > 1 else np.full(len(plates), far)
    clear = (best < far) & (second - best >= OWNER_CENTRE_MARGIN)
    owners[clear] = order[clear, 0]
    return owners


class PlateDetector:
    """Finds licence plates in images with the ``plate-yolov8n`` ONNX model.

    One instance holds one ONNX Runtime session; it is not thread-safe (use one per worker thread).
    """

    def __init__(
        self,
        config: PlateDetectorConfig | None = None,
        model_path: Path | None = None,
        runtime: RuntimeOptions | None = None,
    ) -> None:
        """Load the model.

        Args:
            config: detection settings (defaults suit 640-1280 px frames and vehicle crops).
            model_path: explicit model file; otherwise the manifest's resolution order applies.
            runtime: ONNX Runtime options (threads, providers).

        Raises:
            models.ModelError: the model file is missing or altered.
            models.runtime.InferenceError: the model cannot be loaded or does not run.
        """
        self.config = config or PlateDetectorConfig()
        path = resolve(MODEL_NAME, model_path)
        self._session = OnnxSession(path, runtime, name=MODEL_NAME)
        self._input_name = self._session.input_names[0]
        # The warm-up doubles as a check that the file is a YOLOv8 detector with dynamic input.
        size = self.config.crop_size
        output = self._session.run({self._input_name: np.zeros((1, 3, size, size), np.float32)})[0]
        if output.ndim != 3 or output.shape[1] < 5 or output.shape[2] != 21 * (size // STRIDE) ** 2:
            raise InferenceError(
                f"{MODEL_NAME} at {path}: output {output.shape} for a {size}x{size} input is not a "
                "YOLOv8 detection output (1, 4 + C, N)"
            )
        logger.info("plate detector loaded from %s (%s)", path, ", ".join(self._session.providers))

    def _run(self, image: UInt8Image, long_side: int, stretch: float) -> PlateBoxes:
        cfg = self.config
        resized_hw, input_hw = plan_resize(image.shape[:2], long_side, stretch, cfg.upscale)
        padded, geometry = resize_pad(image, resized_hw, input_hw)
        output = self._session.run({self._input_name: to_blob(padded)})[0]
        xyxy, confidence = decode(output[0], cfg.conf_threshold)
        keep = nms(xyxy, confidence, cfg.iou_threshold, cfg.max_det)
        h, w = image.shape[:2]
        boxes, visible = clip_boxes(geometry.to_image(xyxy[keep]), (w, h))
        return PlateBoxes(boxes[visible], confidence[keep][visible])

    def detect(self, image: UInt8Image) -> PlateBoxes:
        """Plates in a whole image.

        Args:
            image: (H, W, 3) uint8 BGR.

        Returns:
            `PlateBoxes` in the image's pixels, best first.

        Raises:
            PlateError: the image is empty or not (H, W, 3) uint8.
            models.runtime.InferenceError: the model failed.
        """
        cfg = self.config
        return self._run(check_image(image), cfg.image_size, cfg.vertical_stretch)

    def detect_in_vehicle(self, frame: UInt8Image, vehicle_xyxy: npt.ArrayLike) -> PlateBoxes:
        """Plates seen on one vehicle: crops the vehicle box (plus margin) out of the frame and detects
        there.

        Every plate in the crop comes back, also a neighbour's that shows inside the box: which of them
        is this vehicle's is for `plate_owners` to decide, with the other vehicles of the frame.

        Args:
            frame: (H, W, 3) uint8 BGR whole frame.
            vehicle_xyxy: (4,) vehicle box x1, y1, x2, y2 in frame pixels.

        Returns:
            `PlateBoxes` in the frame's pixels, best first.

        Raises:
            PlateError: bad frame, or a vehicle box that is degenerate or outside the frame.
            models.runtime.InferenceError: the model failed.
        """
        check_image(frame, "frame")
        x1, y1, x2, y2 = crop_region(vehicle_xyxy, (frame.shape[1], frame.shape[0]), self.config.crop_margin)
        found = self._run(frame[y1:y2, x1:x2], self.config.crop_size, self.config.crop_vertical_stretch)
        offset = np.array([x1, y1, x1, y1], np.float32)
        return PlateBoxes(found.xyxy + offset, found.confidence)
