"""`detect --model FILE` with the user's own YOLOv8 export (not the manifest's file): it runs, with the
class names of the export's metadata; a file that is not such an export is one line saying why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from models.registry import default_registry
from tests.cli.test_cli import assert_one_line_error, cli
from tests.conftest import REPO_ROOT, SAMPLE_CLIP


def _detect(model: Path, out: Path) -> list[str]:
    return [
        *("detect", "--source", str(SAMPLE_CLIP), "--config", "examples/cameras/sample.yaml"),
        *("--model", str(model), "--out", str(out), "--max-frames", "6", "--json"),
    ]


def test_an_own_export_runs_with_its_own_class_names(tmp_path: Path) -> None:
    # Another YOLOv8n export than the default model's file (it used to fail the default's checksum).
    own = default_registry().resolve("yolov8n-coco")
    proc = cli(*_detect(own, tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 6 and summary["tracks"] > 0
    assert set(summary["tracks_per_class"]) <= {"person", "bicycle", "car", "motorcycle", "bus", "truck"}


def _edited(tmp_path: Path, names: str | None) -> Path:
    proto = onnx.load(str(default_registry().resolve("yolov8n-coco")))
    kept = [p for p in proto.metadata_props if p.key != "names"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    if names is not None:
        proto.metadata_props.add(key="names", value=names)
    path = tmp_path / "own.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (lambda tmp: _edited(tmp, None), ["no class names in its metadata", "export"]),
        (
            lambda tmp: _edited(tmp, "{0: 'car', 1: 'bus'}"),
            ["output has shape (1, 84, 8400), expected (1, 6, N) for 2 classes"],
        ),
        (
            lambda tmp: REPO_ROOT / "models" / "files" / "plate_yolov8n.onnx",
            ["not a fixed-size (1, 3, H, W) image", "dynamic=False"],
        ),
    ],
    ids=["no-names", "names-do-not-fit", "dynamic-input"],
)
def test_a_file_that_is_not_a_usable_export(
    tmp_path: Path, make: Callable[[Path], Path], needles: list[str]
) -> None:
    model = make(tmp_path)
    out = tmp_path / "o"
    proc = cli(*_detect(model, out))
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, f"model file {model}:", *needles)
