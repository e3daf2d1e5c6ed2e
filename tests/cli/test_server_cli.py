"""Server and evidence commands as an operator runs them: real subprocesses, a real server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT


def run(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
        **kw,
    )


def test_set_up_a_server_and_a_device(tmp_path: Path, server_env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], server_env).returncode == 0
    env = {**server_env, "PHATNGUOI_NEW_PASSWORD": "a-long-pass-phrase-9"}
    proc = run(["users", "add", "chief", "--role", "admin"], env)
    assert proc.returncode == 0 and "user chief (admin) added" in proc.stdout, proc.stderr
    keys = run(
        ["keys", "generate", "--private", str(tmp_path / "k.pem"), "--public", str(tmp_path / "k.pub")],
        server_env,
    )
    assert keys.returncode == 0, keys.stderr
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0  # private key readable by its owner only
    proc = run(
        ["devices", "add", "edge-1", "--public-key", str(tmp_path / "k.pub"), "--camera", "cam-1"], server_env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("pnd_")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "phatnguoi.cli", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/me", timeout=2).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["users", "add", "x", "--role", "emperor"], "role"),
        (
            ["devices", "add", "d", "--public-key", "/nonexistent.pub", "--camera", "c"],
            "public key file not found",
        ),
        (["evidence", "verify", "/nonexistent"], "evidence folder not found"),
    ],
)
def test_bad_input(server_env: dict[str, str], args: list[str], needle: str) -> None:
    run(["db", "upgrade"], server_env)
    proc = run(args, {**server_env, "PHATNGUOI_NEW_PASSWORD": "a-long-pass-phrase-9"})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr


def test_missing_secret_is_one_line(server_env: dict[str, str]) -> None:
    env = {k: v for k, v in server_env.items() if k != "PHATNGUOI_JWT_SECRET"}
    proc = run(["db", "upgrade"], env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "PHATNGUOI_JWT_SECRET" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_evidence_verify_detects_an_altered_byte(tmp_path: Path, server_env: dict[str, str]) -> None:
    from tests.api.evidence import build_package
    from violations.manifest import generate_keypair, load_private_key

    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    pkg = build_package(load_private_key(tmp_path / "k.pem"), device_id="edge-1", camera_id="cam-1")
    folder = tmp_path / pkg.event_id
    folder.mkdir()
    (folder / "manifest.json").write_bytes(pkg.manifest_bytes)
    (folder / "manifest.sig").write_text(pkg.signature + "\n")
    for name, data in pkg.files.items():
        (folder / name).write_bytes(data)
    ok = run(["evidence", "verify", str(folder), "--public-key", str(tmp_path / "k.pub")], server_env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    still = folder / "still_at.jpg"
    altered = bytearray(still.read_bytes())
    altered[len(altered) // 2] ^= 0x01
    still.write_bytes(bytes(altered))
    bad = run(["evidence", "verify", str(folder), "--public-key", str(tmp_path / "k.pub")], server_env)
    assert bad.returncode == 1
    assert "still_at.jpg" in bad.stdout
