"""The Dockerfile's server recipe, without a Docker daemon: its runtime settings are read from the
Dockerfile and the documented commands (`db upgrade`, then `serve`) run with them, the image's volume
mapped into a temporary folder, from a working directory they must not write to (in the image it
belongs to root while the process runs as `phatnguoi`: the old default database `./phatnguoi.db`
could not be created there, and `serve` died with 143 lines of traceback)."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
VOLUME = "/var/lib/phatnguoi"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    text = "\n".join(
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def image_env() -> dict[str, str]:
    """The PHATNGUOI_* variables the image sets (ENV KEY=VALUE ...)."""
    env: dict[str, str] = {}
    for word, rest in instructions():
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return {k: v for k, v in env.items() if k.startswith("PHATNGUOI_")}


def test_what_the_image_writes_is_in_its_volume_owned_by_its_user() -> None:
    steps = instructions()
    assert ("VOLUME", VOLUME) in steps
    user = next(rest for word, rest in steps if word == "USER")
    run_lines = " ".join(rest for word, rest in steps if word == "RUN")
    assert re.search(rf"install -d -o {user} -g {user}( -m \d+)? {VOLUME}\b", run_lines), run_lines
    env = image_env()
    assert env["PHATNGUOI_DATABASE_URL"].startswith(f"sqlite:///{VOLUME}/")
    for key in ("PHATNGUOI_EVIDENCE_DIR", "PHATNGUOI_SMS_FILE"):
        assert env[key].startswith(f"{VOLUME}/"), key


def test_the_documented_commands_migrate_and_serve_with_the_images_settings(tmp_path: Path) -> None:
    volume = tmp_path / "var-lib-phatnguoi"
    volume.mkdir()  # `install -d` in the image
    workdir = tmp_path / "opt-phatnguoi"  # WORKDIR: nothing may be written here
    workdir.mkdir()
    env = {k: v.replace(VOLUME, str(volume)) for k, v in image_env().items()}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PHATNGUOI_")},
        **env,
        "PHATNGUOI_JWT_SECRET": secrets.token_urlsafe(48),
        "PYTHONPATH": str(REPO_ROOT),
    }
    cli = [sys.executable, "-m", "phatnguoi.cli"]
    header = DOCKERFILE.read_text()
    assert f"-v phatnguoi-data:{VOLUME} phatnguoi db upgrade" in header
    assert f"-v phatnguoi-data:{VOLUME} phatnguoi db upgrade" in (REPO_ROOT / "README.md").read_text()

    upgrade = subprocess.run(
        [*cli, "db", "upgrade"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None, server.communicate(timeout=10)[0][-3000:]
        assert health.status_code == 200 and health.json()["evidence"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert list(workdir.iterdir()) == []
    assert (volume / "phatnguoi.db").is_file()
