"""The training recipe end to end on real frames: COCO rebuild, dataset preparation, one short epoch,
ONNX export, and the exported model running in the production detector."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from detector.dataset import Dataset, crop_boxes, read_video_frames, video_size
from tests.conftest import REPO_ROOT, SHARED_DATA, need

pytest.importorskip("torch", reason="the optional 'train' extra is not installed")
pytest.importorskip("ultralytics", reason="the optional 'train' extra is not installed")
os.environ.setdefault("YOLO_OFFLINE", "1")

DATASET = REPO_ROOT / "datasets" / "vn_traffic"
VIDEOS = SHARED_DATA / "videos"


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """Six labelled Giang Vo frames (four train, two val) copied from the shipped labels."""
    need(VIDEOS / "hanoi_giangvo_langha.mp4")
    root = tmp_path_factory.mktemp("ds")
    spec = yaml.safe_load((DATASET / "clips.yaml").read_text())
    clip = spec["clips"]["hanoi_giangvo_langha"]
    clip["splits"] = {"train": [150, 162], "val": [216, 222]}
    spec["clips"] = {"hanoi_giangvo_langha": clip}
    (root / "clips.yaml").write_text(yaml.safe_dump(spec))
    (root / "labels" / "hanoi_giangvo_langha").mkdir(parents=True)
    for index in (150, 153, 156, 159, 216, 219):
        name = f"{index:06d}.txt"
        shutil.copy(
            DATASET / "labels" / "hanoi_giangvo_langha" / name, root / "labels" / "hanoi_giangvo_langha"
        )
    return Dataset(root / "clips.yaml")


def test_coco_rebuild_matches_the_onnx_model() -> None:
    import torch

    import models
    from detector.train import _letterbox_square, build_coco_checkpoint
    from models.runtime import OnnxSession

    frames = read_video_frames(need(VIDEOS / "hanoi_giangvo_langha.mp4"), [30, 90, 150, 210])
    crops = [f[96:480] for f in frames.values()]
    onnx_path = models.resolve("yolov8n-coco")
    ckpt = build_coco_checkpoint(onnx_path, crops, Path(os.environ.get("TMPDIR", "/tmp")) / "pn_init_test.pt")
    model = torch.load(ckpt, weights_only=False)["model"].eval()
    x = np.stack([_letterbox_square(crops[2], 640)])
    with torch.no_grad():
        ours = model(torch.from_numpy(x))[0].numpy()
    sess = OnnxSession(onnx_path)
    theirs = sess.run({sess.input_names[0]: x})[0]
    assert ours.shape == theirs.shape == (1, 84, 8400)
    assert np.abs(ours[:, :4] - theirs[:, :4]).max() < 0.05  # px
    assert np.abs(ours[:, 4:] - theirs[:, 4:]).max() < 1e-3  # class scores
    # the BN layers now carry real statistics, not the identity of the folded export
    bn = model.model[2].cv1.bn
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var), atol=1e-2)


def test_prepare_fit_export_and_run(small_dataset: Dataset, tmp_path: Path) -> None:
    import models
    from detector.config import DetectorConfig
    from detector.train import TrainError, export_onnx, fit, prepare
    from detector.yolo_onnx import YoloOnnxDetector
    from models.registry import ModelEntry, Registry, default_registry, file_sha256

    prep = prepare(small_dataset, VIDEOS, tmp_path, models.resolve("yolov8n-coco"), calibration_images=4)
    assert prep.images == {"train": 4, "val": 2, "test": 0}
    # every kept box is written, in zone-crop coordinates
    hw = video_size(VIDEOS / "hanoi_giangvo_langha.mp4")
    zone = small_dataset.spec.clips["hanoi_giangvo_langha"].zone
    expected = 0
    for f in small_dataset.labelled({"hanoi_giangvo_langha": hw}, ("train",)):
        expected += int(crop_boxes(f.xyxy, zone)[1].sum())
    assert prep.boxes["train"] == expected > 20
    rows = (prep.root / "labels" / "train" / "hanoi_giangvo_langha_000150.txt").read_text().split("\n")
    assert all(0 <= float(v) <= 1 for row in rows if row for v in row.split()[1:])

    best = fit(prep.data_yaml, prep.init_checkpoint, tmp_path, epochs=1, imgsz=160, batch=4, workers=0)
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["args"]["seed"] == 0 and recipe["args"]["deterministic"] is True
    assert recipe["args"]["epochs"] == 1 and recipe["resumed"] == 0
    assert len(recipe["labels_sha256"]) == 64
    # resuming a finished run is refused in one line, and the run's recipe keeps what it was trained with
    with pytest.raises(TrainError, match="nothing to resume"):
        fit(prep.data_yaml, prep.init_checkpoint, tmp_path, epochs=5, imgsz=160, workers=0, resume=True)
    again = json.loads((tmp_path / "recipe.json").read_text())
    assert again["args"] == recipe["args"] and again["labels_sha256"] == recipe["labels_sha256"]
    # no CUDA here: Ultralytics' refusal reaches the CLI as one line, no traceback
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "phatnguoi.cli", "train", "detector", "--step", "fit"),
            *("--out", str(tmp_path), "--device", "0", "--epochs", "1", "--imgsz", "160", "--workers", "0"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: training stopped:") and "CUDA" in lines[0]

    onnx_path = export_onnx(best, tmp_path / "candidate.onnx", imgsz=160)
    entry = ModelEntry(
        name="candidate",
        task="detect",
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        license="test",
        classes=default_registry().entry("yolov8n-coco").classes,
    )
    registry = Registry((*default_registry(), entry))
    det = YoloOnnxDetector(
        DetectorConfig(model="candidate", model_path=onnx_path, roi=zone, input_width=640), registry
    )
    frame = read_video_frames(VIDEOS / "hanoi_giangvo_langha.mp4", [219])[219]
    out = det.detect(frame)  # the 160x160 export re-shaped to 640x384 at load time
    assert len(out) > 0
    assert (out.xyxy[:, 1] >= zone[1] - 1).all() and (out.xyxy[:, 3] <= zone[3] + 1).all()


def test_with_val_trains_on_both_splits(small_dataset: Dataset, tmp_path: Path) -> None:
    """`--with-val` hands Ultralytics the train and val images as one training set."""
    from ultralytics.data.utils import check_det_dataset

    import models
    from detector.train import TrainError, _with_val_yaml, prepare

    prep = prepare(small_dataset, VIDEOS, tmp_path, models.resolve("yolov8n-coco"), calibration_images=4)
    both = check_det_dataset(str(_with_val_yaml(prep.data_yaml)), autodownload=False)
    dirs = both["train"]
    assert isinstance(dirs, list) and [Path(d).name for d in dirs] == ["train", "val"]
    assert sum(len(list(Path(d).glob("*.jpg"))) for d in dirs) == 6
    assert check_det_dataset(str(prep.data_yaml), autodownload=False)["train"] == str(Path(dirs[0]))
    other = tmp_path / "other.yaml"
    other.write_text("path: .\ntrain: somewhere\nval: images/val\n")
    with pytest.raises(TrainError, match="not a prepared dataset"):
        _with_val_yaml(other)


def test_prepare_never_replaces_a_folder_it_did_not_make(small_dataset: Dataset, tmp_path: Path) -> None:
    import models
    from detector.train import TrainError, prepare

    keep = tmp_path / "data" / "videos.mp4"
    keep.parent.mkdir()
    keep.write_bytes(b"not ours")
    with pytest.raises(TrainError, match="is not a prepared dataset"):
        prepare(small_dataset, VIDEOS, tmp_path, models.resolve("yolov8n-coco"), calibration_images=4)
    assert keep.read_bytes() == b"not ours"
