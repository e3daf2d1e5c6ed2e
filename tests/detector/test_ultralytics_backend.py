"""The optional Ultralytics back-end refuses what it cannot run, with a clear message."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from detector import DetectorConfig
from detector.ultralytics_backend import UltralyticsDetector
from models import ModelError


def test_needs_a_pt_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"needs detector.model_path pointing to a .pt file"):
        UltralyticsDetector(DetectorConfig(backend="ultralytics"))
    with pytest.raises(ModelError, match="not found"):
        UltralyticsDetector(DetectorConfig(backend="ultralytics", model_path=tmp_path / "x.pt"))


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed")
def test_missing_extra_is_named(tmp_path: Path) -> None:
    weights = tmp_path / "x.pt"
    weights.write_bytes(b"weights")
    with pytest.raises(ModelError, match=r"pip install 'phatnguoi\[ultralytics\]'"):
        UltralyticsDetector(DetectorConfig(backend="ultralytics", model_path=weights))
