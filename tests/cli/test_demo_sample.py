"""The README's first command (`make demo` runs `phatnguoi demo`) on the shipped sample clip, as a user
sees it: the whole chain runs, the server answers, and with no violation on this clip the demo says why
instead of leaving an empty map unexplained."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_demo_on_the_sample_clip_explains_an_empty_map(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", "demo", "--out", str(tmp_path / "demo"), "--no-serve"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "processed 114 frames: 0 violations" in out
    assert "the server holds 0 violations" in out
    assert "no violation on this clip: no vehicle was seen crossing a stop line cleanly" in out
    assert "--source, --scene and --config" in out
    url = re.search(r"review: (http://127\.0\.0\.1:\d+/map\?period=all)", out)
    assert url is not None, out
    # --no-serve stopped the server: the address printed was real, and nothing listens on it now
    try:
        urllib.request.urlopen(url.group(1), timeout=2)
        listening = True
    except OSError:
        listening = False
    assert not listening
    assert (tmp_path / "demo" / "edge" / "outbox.sqlite").is_file()


def test_demo_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "phatnguoi.cli", "demo", "--out", str(tmp_path / "demo")),
                *("--no-serve", "--port", str(port)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
            env={**os.environ, "COLUMNS": "300"},
        )
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:") or "Traceback" in ln]
    assert proc.returncode == 1, proc.stderr
    assert lines == [
        f"error: the demo server could not listen on http://127.0.0.1:{port} (is the port in use?)"
    ], proc.stderr
