"""Shared fixtures: where the real evaluation data lives (../shared/data beside the checkout), and the
one headless Chromium of the session (browser tests in tests/web and tests/notices)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
HANOI_CLIP = SHARED_DATA / "videos" / "hanoi_giangvo_langha.mp4"
HANOI_LABELS = SHARED_DATA / "videos" / "hanoi_giangvo_langha_rider_boxes"
SAMPLE_CLIP = REPO_ROOT / "examples" / "sample" / "hanoi_nguyenxien_khuatduytien.mp4"
# Debian's `chromium` package: Playwright's own browser download is never used.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium, one for the session (Playwright's sync API allows one at a time)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
