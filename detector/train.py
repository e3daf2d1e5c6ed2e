"""Fine-tune YOLOv8n on the labelled camera frames (the optional `train` extra: Ultralytics + PyTorch).

The recipe, in three steps that can run on different machines:

1. `prepare`: decode the labelled frames from the videos, crop each to its clip's enforcement zone (what
   the camera's detector sees) and write an Ultralytics dataset (images, labels, data.yaml) with the COCO
   class list, so the 80-class head of the pretrained model is reused as it is. Build the initial
   PyTorch checkpoint from the shipped COCO YOLOv8n ONNX file (no download): its initializers keep the
   `model.N...` names, with batch-norm folded into the convolutions, so each BN layer is re-created with
   the statistics of its input measured on the dataset's frames, which leaves the function unchanged
   and gives training batch statistics that match the running ones.
2. `fit`: Ultralytics training, seeded and deterministic, resumable from `last.pt`, its arguments and the
   dataset's label hash recorded in `recipe.json`.
3. `export`: ONNX for the registry (the graph is re-shaped per camera at load time, see yolo_graph).

Heavy imports (torch, ultralytics) stay inside the functions: `import detector.train` is cheap.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import logging
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.dataset import SPLITS, Dataset, Split, crop_boxes

logger = logging.getLogger(__name__)

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


class TrainError(RuntimeError):
    """Training cannot run; the message says what to install or fix."""


def _require_ultralytics() -> None:
    try:
        import torch  # noqa: F401
        import ultralytics  # noqa: F401
    except ImportError as exc:
        raise TrainError(
            f"training needs the optional 'train' extra ({exc.name} is missing): pip install -e '.[train]'"
        ) from None


@dataclass(frozen=True, slots=True)
class Prepared:
    """What `prepare` wrote."""

    root: Path
    data_yaml: Path
    init_checkpoint: Path
    images: dict[Split, int]
    boxes: dict[Split, int]
    labels_sha256: str


def labels_digest(dataset: Dataset) -> str:
    """SHA-256 over the dataset file and every label file (names and bytes), to record what was trained on."""
    h = hashlib.sha256(dataset.path.read_bytes())
    for path in sorted(dataset.labels_dir.rglob("*.txt")):
        h.update(str(path.relative_to(dataset.labels_dir)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def prepare(
    dataset: Dataset, videos: Path, out: Path, coco_onnx: Path, *, calibration_images: int = 64
) -> Prepared:
    """Write the zone-cropped Ultralytics dataset and the initial checkpoint under `out`.

    Raises:
        DatasetError: a video or label file cannot be read.
        TrainError: the train extra is missing, or `out/data` exists and is not a prepared dataset.
    """
    _require_ultralytics()
    root = out / "data"
    if root.exists():
        if not (root / "data.yaml").is_file():
            raise TrainError(f"{root} exists and is not a prepared dataset (no data.yaml): not replacing it")
        shutil.rmtree(root)
    counts: dict[Split, int] = dict.fromkeys(SPLITS, 0)
    boxes: dict[Split, int] = dict.fromkeys(SPLITS, 0)
    calib: list[npt.NDArray[np.uint8]] = []
    for f, image in dataset.decoded(videos):
        name, clip = f.clip, dataset.spec.clips[f.clip]
        x1, y1, x2, y2 = clip.zone
        crop = image[y1:y2, x1:x2]
        h, w = crop.shape[:2]
        xyxy, keep = crop_boxes(f.xyxy, clip.zone)
        stem = f"{name}_{f.index:06d}"
        (root / "images" / f.split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / f.split).mkdir(parents=True, exist_ok=True)
        jpg = root / "images" / f.split / f"{stem}.jpg"
        if not cv2.imwrite(str(jpg), crop, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise TrainError(f"cannot write {jpg} (disk full?)")
        rows = [
            f"{k} {(a + c) / 2 / w:.6f} {(b + d) / 2 / h:.6f} {(c - a) / w:.6f} {(d - b) / h:.6f}\n"
            for k, (a, b, c, d) in zip(f.class_id[keep], xyxy[keep], strict=True)
        ]
        (root / "labels" / f.split / f"{stem}.txt").write_text("".join(rows))
        counts[f.split] += 1
        boxes[f.split] += len(rows)
        if f.split == "train":
            calib.append(crop)
    if counts["train"] == 0 or counts["val"] == 0:
        raise TrainError(f"no labelled frames to train on ({counts}): check {dataset.labels_dir}")
    data_yaml = root / "data.yaml"
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(COCO_NAMES))
    data_yaml.write_text(
        f"path: {root.resolve()}\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n{names}\n"
    )
    rng = random.Random(0)
    picked = rng.sample(calib, min(calibration_images, len(calib)))
    init = out / "init_coco_yolov8n.pt"
    build_coco_checkpoint(coco_onnx, picked, init)
    return Prepared(root, data_yaml, init, counts, boxes, labels_digest(dataset))


def _letterbox_square(image: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float32]:
    h, w = image.shape[:2]
    r = size / max(h, w)
    nh, nw = round(h * r), round(w * r)
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0


def build_coco_checkpoint(
    onnx_path: Path, images: Sequence[npt.NDArray[np.uint8]], out: Path, imgsz: int = 640
) -> Path:
    """Rebuild the COCO YOLOv8n as an Ultralytics checkpoint from its ONNX export, with batch-norm
    layers re-created from the statistics of their inputs on `images` (BGR frames).

    The export folded BN into each convolution: conv(x) * W' + b'. Here the convolution keeps W' without
    bias and the BN layer after it gets mean μ and variance σ² of W'x on real frames, γ = √(σ² + ε) and
    β = μ + b', so BN(W'x) = W'x + b' exactly in eval mode.
    """
    _require_ultralytics()
    import onnx
    import torch
    from onnx import numpy_helper
    from ultralytics.nn.modules.conv import Conv
    from ultralytics.nn.tasks import DetectionModel

    graph = onnx.load(str(onnx_path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    model = DetectionModel("yolov8n.yaml", nc=len(COCO_NAMES), verbose=False)
    model.names = dict(enumerate(COCO_NAMES))
    convs = {name: m for name, m in model.named_modules() if isinstance(m, Conv)}
    biases: dict[str, torch.Tensor] = {}
    state = model.state_dict()
    with torch.no_grad():
        for name, m in convs.items():
            w, b = weights.pop(f"{name}.conv.weight"), weights.pop(f"{name}.conv.bias")
            m.conv.weight.copy_(w)
            biases[name] = b
            m.bn.running_mean.zero_()
            m.bn.running_var.fill_(1.0 - m.bn.eps)  # var + eps = 1: BN is the identity plus β
            m.bn.weight.fill_(1.0)
            m.bn.bias.copy_(b)
        for key, value in list(weights.items()):
            if key in state and state[key].shape == value.shape:
                state[key].copy_(value)
                weights.pop(key)
    # Measure the input statistics of every BN layer on real frames, in eval mode (the folded function).
    sums: dict[str, torch.Tensor] = {}
    sqs: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Any:
        def fn(_m: Any, inputs: tuple[torch.Tensor, ...], _out: Any) -> None:
            x = inputs[0].double()
            sums[name] = sums.get(name, 0) + x.sum(dim=(0, 2, 3))
            sqs[name] = sqs.get(name, 0) + (x * x).sum(dim=(0, 2, 3))
            counts[name] = counts.get(name, 0) + x.shape[0] * x.shape[2] * x.shape[3]

        return fn

    model.eval()
    handles = [m.bn.register_forward_hook(hook(name)) for name, m in convs.items()]
    with torch.no_grad():
        for start in range(0, len(images), 8):
            batch = np.stack([_letterbox_square(i, imgsz) for i in images[start : start + 8]])
            model(torch.from_numpy(batch))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for name, m in convs.items():
            n = counts[name]
            mean = (sums[name] / n).float()
            var = (sqs[name] / n).float() - mean * mean
            var = var.clamp_min(1e-6)
            m.bn.running_mean.copy_(mean)
            m.bn.running_var.copy_(var)
            m.bn.weight.copy_(torch.sqrt(var + m.bn.eps))
            m.bn.bias.copy_(mean + biases[name])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {}, "date": None, "version": "phatnguoi-coco-rebuild"}, out)
    return out


def _patch_results_reader() -> None:
    """Ultralytics reads results.csv with polars when it saves a checkpoint; polars is a 55 MB wheel that
    nothing else needs, so fall back to the csv module when it is absent."""
    try:
        import polars  # noqa: F401
    except ImportError:
        from ultralytics.engine.trainer import BaseTrainer

        def read_results_csv(self: Any) -> dict[str, list[Any]]:
            try:
                with Path(self.csv).open(newline="") as fh:
                    rows = list(csv.DictReader(fh))
            except OSError:
                return {}
            return {k.strip(): [r[k] for r in rows] for k in (rows[0] if rows else {})}

        BaseTrainer.read_results_csv = read_results_csv


def fit(
    data_yaml: Path,
    init_checkpoint: Path,
    out: Path,
    *,
    epochs: int,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "cpu",
    seed: int = 0,
    workers: int = 4,
    resume: bool = False,
    with_val: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Train (or resume) and return the path of the best checkpoint (best validation mAP).

    With `with_val` the validation frames are trained on too (the final model, once the recipe was
    chosen on them): nothing held out is left to pick an epoch by, so per-epoch validation is off and
    the returned checkpoint holds the last epoch's weights.

    The arguments, the dataset's hash and the package versions are written to `out/recipe.json`.
    """
    _require_ultralytics()
    import torch
    import ultralytics
    from ultralytics import YOLO

    _patch_results_reader()
    # the dataset may have been prepared on another machine (or folder): point data.yaml at where it is now
    text = data_yaml.read_text()
    lines = [
        f"path: {data_yaml.parent.resolve()}" if ln.startswith("path:") else ln for ln in text.splitlines()
    ]
    if "\n".join(lines) + "\n" != text:
        data_yaml.write_text("\n".join(lines) + "\n")
    if with_val:
        data_yaml = _with_val_yaml(data_yaml)
    run_dir = out / "run"
    last = run_dir / "weights" / "last.pt"
    args: dict[str, Any] = {
        "data": str(data_yaml),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "device": device,
        "seed": seed,
        "deterministic": True,
        "workers": workers,
        "amp": False,  # the AMP self-check downloads a model; fp32 is fast enough for YOLOv8n
        "plots": False,  # plotting downloads a font
        "project": str(out.resolve()),
        "name": "run",
        "exist_ok": True,
        "cache": False,  # 'ram' is not deterministic
        "patience": 0,
        "close_mosaic": max(1, epochs // 8),
        "verbose": False,
        **({"val": False} if with_val else {}),
        **(extra or {}),
    }
    if device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    out.mkdir(parents=True, exist_ok=True)
    recipe_path = out / "recipe.json"
    resuming = resume and last.exists()
    if resuming and not _resumable(last):
        # Ultralytics would quietly start a new training on its default (downloaded) dataset instead
        raise TrainError(f"the run in {run_dir} has finished (last.pt has no optimizer): nothing to resume")
    if resuming and recipe_path.is_file():
        # Ultralytics resumes with the arguments stored in the checkpoint, whatever this call says:
        # the recipe of the run stays as it was written when the run began.
        recipe = json.loads(recipe_path.read_text())
        recipe["resumed"] = int(recipe.get("resumed", 0)) + 1
    else:
        recipe = {
            "args": args,
            "init_checkpoint": init_checkpoint.name,
            "labels_sha256": _labels_sha256(data_yaml.parent / "labels"),
            "torch": torch.__version__,
            "ultralytics": ultralytics.__version__,
            "resumed": int(resuming),
        }
    recipe_path.write_text(json.dumps(recipe, indent=1))
    try:
        if resume and last.exists():
            YOLO(str(last)).train(resume=True)
        else:
            YOLO(str(init_checkpoint)).train(**args)
    except (ValueError, AssertionError, FileNotFoundError) as e:
        # Ultralytics' own refusals: no such CUDA device, a finished run resumed, a missing image folder
        raise TrainError(f"training stopped: {str(e).strip().splitlines()[0]}") from None
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise TrainError(f"training ended without {best}")
    return best


def _resumable(checkpoint: Path) -> bool:
    """Whether an Ultralytics checkpoint is from an unfinished run (it still holds the optimizer state;
    the last epoch strips it)."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return isinstance(ckpt, dict) and ckpt.get("optimizer") is not None and int(ckpt.get("epoch", -1)) >= 0


def _labels_sha256(labels: Path) -> str:
    """Digest of the prepared label files (name and content, in name order)."""
    h = hashlib.sha256()
    for f in sorted(labels.rglob("*.txt")):
        h.update(f.relative_to(labels).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _with_val_yaml(data_yaml: Path) -> Path:
    """A copy of the prepared data.yaml (beside it) whose training set is the train and val images."""
    lines = data_yaml.read_text().splitlines()
    if "train: images/train" not in lines:
        raise TrainError(f"{data_yaml} is not a prepared dataset (no 'train: images/train' line)")
    out = data_yaml.with_name("data_trainval.yaml")
    both = "train: [images/train, images/val]"
    out.write_text("\n".join(both if ln == "train: images/train" else ln for ln in lines) + "\n")
    return out


def export_onnx(checkpoint: Path, out: Path, imgsz: int = 640) -> Path:
    """Export a trained checkpoint to ONNX (static 1x3ximgszximgsz, opset 17, simplified when onnxslim is
    installed) at `out`; the detector re-shapes the graph for each camera at load time."""
    _require_ultralytics()
    from ultralytics import YOLO

    simplify = importlib.util.find_spec("onnxslim") is not None
    exported = Path(
        YOLO(str(checkpoint)).export(format="onnx", imgsz=imgsz, opset=17, simplify=simplify, dynamic=False)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(exported), out)
    return out
