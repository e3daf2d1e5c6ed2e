"""What `run`, `detect` and `edge` say when they cannot start: a missing, unreadable or malformed key, a
bad option, a model that does not load. One line, the right exit code, no traceback, no abort of a
reader thread left decoding, and nothing written to --out / data_dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_one_line_error, cli
from tests.cli.test_edge_cli import _config, _edge
from tests.conftest import REPO_ROOT, SAMPLE_CLIP

SCENE = "examples/scenes/sample.yaml"


def _run(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("run", "--source", str(SAMPLE_CLIP), "--scene", SCENE, "--out", str(out), *args)


def test_a_bad_start_time_is_one_line_and_exit_2_before_anything_is_written(tmp_path: Path) -> None:
    # It used to be checked after the source's reader thread had started: the exit then killed the
    # thread mid-decode ("FATAL: exception not rethrown", SIGABRT, exit 134), with a new key in OUT.
    out = tmp_path / "out"
    proc = _run(out, "--start-time", "2025-13-45")
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "--start-time must be ISO 8601", "2025-13-45")
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (None, ["cannot read private key", "no such file", "phatnguoi keys generate --private"]),
        (b"not a key\n", ["private key", "is not a PEM private key"]),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ["private key", "is not a PEM private key"],
        ),
    ],
    ids=["missing", "not-pem", "bad-pem"],
)
def test_run_with_a_bad_key(tmp_path: Path, content: bytes | None, needles: list[str]) -> None:
    key = tmp_path / "device.pem"
    if content is not None:
        key.write_bytes(content)
        key.chmod(0o600)
    out = tmp_path / "out"
    proc = _run(out, "--key", str(key))
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, str(key), *needles)
    assert not out.exists()


def test_edge_without_its_private_key(tmp_path: Path) -> None:
    """The example config before `keys generate` was run: one line saying how to make the key."""
    config = _config(tmp_path, 0)
    (tmp_path / "k.pem").unlink()
    proc = _edge(config)
    assert proc.returncode == 1, proc.stderr
    key = tmp_path / "k.pem"
    assert_one_line_error(
        proc,
        f"cannot read private key {key}: no such file; create it with "
        f"`phatnguoi keys generate --private {key} --public {tmp_path / 'k.pub'}`",
    )
    assert not (tmp_path / "edge").exists()  # data_dir: nothing made before the keys are there


def test_edge_without_its_public_key(tmp_path: Path) -> None:
    config = _config(tmp_path, 0)
    (tmp_path / "k.pub").unlink()
    proc = _edge(config)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, f"cannot read public key {tmp_path / 'k.pub'}", "keys generate")


def test_edge_with_a_data_dir_it_cannot_create(tmp_path: Path) -> None:
    config = _config(tmp_path, 0)
    (tmp_path / "edge").write_text("a file where the data folder should be")
    proc = _edge(config)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, f"cannot create data_dir {tmp_path / 'edge'}: File exists")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run the command as another user",
)
@pytest.mark.parametrize("command", ["edge", "run"])
def test_a_key_its_user_cannot_read(command: str) -> None:
    """`keys generate` run as root leaves the key root's, mode 600: the service's user cannot read it."""
    with tempfile.TemporaryDirectory() as folder:  # pytest's tmp_path is in a folder only root enters
        tmp_path = Path(folder)
        config = _config(tmp_path, 0)
        tmp_path.chmod(0o755)
        for path in (config, tmp_path / "k.pub"):
            path.chmod(0o644)
        key, out = tmp_path / "k.pem", tmp_path / "out"
        args = ["edge", "--config", str(config)]
        if command == "run":
            args = [
                "run",
                "--source",
                str(SAMPLE_CLIP),
                "--scene",
                SCENE,
                "--key",
                str(key),
                "--out",
                str(out),
            ]
        proc = subprocess.run(
            [
                *("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
                *(sys.executable, "-m", "phatnguoi.cli", *args),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            env={**os.environ, "COLUMNS": "300", "HOME": folder, "USER": "nobody", "LOGNAME": "nobody"},
        )
        assert proc.returncode == 1, proc.stderr
        assert_one_line_error(
            proc, f"cannot read private key {key}: permission denied for user nobody", f"chown nobody {key}"
        )
        assert not out.exists() and not (tmp_path / "edge").exists()


def test_detect_with_a_model_that_does_not_load(tmp_path: Path) -> None:
    """The model fails after the source is open: the source is closed, the exit is a clean one line."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = cli("detect", "--source", str(SAMPLE_CLIP), "--model", str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, f"model file {bad}: not an ONNX model file")


def test_detect_prints_only_the_files_it_wrote(tmp_path: Path) -> None:
    """Ctrl-C before the camera gave a frame: no annotated.mp4 is written, so none is announced."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "o"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "phatnguoi.cli", "detect"),
            *("--source", f"http://127.0.0.1:{port}/stream.mjpg", "--out", str(out)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "interrupted after 0 frames" in stdout
    assert not (out / "annotated.mp4").exists()
    assert "video:" not in stdout and f"tracks: {out / 'tracks.jsonl'}" in stdout
    assert "video" not in json.loads((out / "summary.json").read_text())["outputs"]
