"""tools/label_frames.py: export never writes labels when it cannot read a clip's frame size."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("label_frames", REPO_ROOT / "tools" / "label_frames.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_without_the_videos_stops_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = _tool()
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    shutil.copy(REPO_ROOT / "datasets" / "vn_traffic" / "clips.yaml", dataset / "clips.yaml")
    work = tmp_path / "work" / "labels" / "hanoi_giangvo_langha"
    work.mkdir(parents=True)
    (work / "000000.txt").write_text("# checked\nmotorcycle 120 233 151 298\n")
    monkeypatch.setattr(tool, "DATASET", dataset)
    monkeypatch.setattr(tool, "WORK", tmp_path / "work")
    monkeypatch.setattr(tool, "VIDEOS", tmp_path / "no-videos")
    with pytest.raises(SystemExit, match=r"no-videos/hanoi_giangvo_langha\.mp4: cannot be opened as a video"):
        tool.cmd_export(argparse.Namespace())
    assert not list(dataset.rglob("*.txt"))
    with pytest.raises(SystemExit, match="cannot be opened"):
        tool.cmd_import(argparse.Namespace())
    assert (work / "000000.txt").read_text() == "# checked\nmotorcycle 120 233 151 298\n"
