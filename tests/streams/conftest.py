"""Fixtures for stream tests: the shared data folder and a loopback MJPEG camera."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.streams.mjpeg_server import MjpegServer

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"


@pytest.fixture
def videos_dir() -> Path:
    """``../shared/data/videos`` beside the checkout; skips the test when it is absent."""
    if not VIDEOS.is_dir():
        pytest.skip(f"shared test videos not found at {VIDEOS}")
    return VIDEOS


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    """A running 15 fps 320x240 MJPEG camera on a free loopback port; killed after the test."""
    with MjpegServer(fps=15.0) as server:
        yield server
