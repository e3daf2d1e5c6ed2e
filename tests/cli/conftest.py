"""The real run of the Giang Vo clip, shared by the tests that check its outputs (one run per session),
and the environment of a server command (`server_env`)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

GIANGVO_START = "2022-09-25T09:15:40Z"


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a server command: a SQLite file and an evidence store in `tmp_path`, a random
    secret."""
    return {
        **os.environ,
        "PHATNGUOI_DATABASE_URL": f"sqlite:///{tmp_path / 'pn.db'}",
        "PHATNGUOI_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "PHATNGUOI_JWT_SECRET": secrets.token_urlsafe(40),
        "COLUMNS": "200",
    }


@pytest.fixture(scope="session")
def run_output(tmp_path_factory: pytest.TempPathFactory, hanoi_clip: Path) -> Path:
    """`phatnguoi run` over the whole Giang Vo clip with its example scene and camera (no plates): the
    output folder (events, crossings, evidence, summary, `stdout.json`)."""
    out = tmp_path_factory.mktemp("run")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "phatnguoi.cli",
            "run",
            "--source",
            str(hanoi_clip),
            "--scene",
            "examples/scenes/hanoi_giangvo_langha.yaml",
            "--config",
            "examples/cameras/hanoi_giangvo_langha.yaml",
            "--out",
            str(out),
            "--no-plates",
            "--start-time",
            GIANGVO_START,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    (out / "stdout.json").write_text(proc.stdout)
    return out
