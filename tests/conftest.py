"""Shared fixtures: where the real evaluation data lives (../shared/data beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
HANOI_CLIP = SHARED_DATA / "videos" / "hanoi_giangvo_langha.mp4"
HANOI_LABELS = SHARED_DATA / "videos" / "hanoi_giangvo_langha_rider_boxes"
SAMPLE_CLIP = REPO_ROOT / "examples" / "sample" / "hanoi_nguyenxien_khuatduytien.mp4"


def need(path: Path) -> Path:
    """Skip the test with a clear reason when a piece of shared data is absent."""
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (expected ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need(SHARED_DATA)


@pytest.fixture(scope="session")
def hanoi_clip() -> Path:
    return need(HANOI_CLIP)


@pytest.fixture(scope="session")
def hanoi_labels() -> Path:
    return need(HANOI_LABELS)
