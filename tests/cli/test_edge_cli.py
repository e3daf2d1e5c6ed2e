"""`phatnguoi edge` start-up failures an installer meets: one line naming the problem, exit code 1,
no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT


def _config(tmp_path: Path, port: int) -> Path:
    from violations.manifest import generate_keypair

    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    cfg = {
        "device": {
            "id": "edge-t",
            "private_key": str(tmp_path / "k.pem"),
            "public_key": str(tmp_path / "k.pub"),
        },
        "data_dir": str(tmp_path / "edge"),
        "cameras": [
            {
                "id": "hanoi-nguyenxien-khuatduytien",
                "source": str(REPO_ROOT / "examples" / "sample" / "hanoi_nguyenxien_khuatduytien.mp4"),
                "scene": str(REPO_ROOT / "examples" / "scenes" / "sample.yaml"),
            }
        ],
        "metrics": {"host": "127.0.0.1", "port": port},
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _edge(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", "edge", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "300"},
    )


def _requeue(config: Path, kind: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", "outbox", "requeue", "--config", str(config), "--kind", kind],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def test_metrics_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _edge(_config(tmp_path, port))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"error: cannot serve /metrics on 127.0.0.1:{port}: Address already in use"


def test_a_corrupt_outbox_database(tmp_path: Path) -> None:
    config = _config(tmp_path, 0)
    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "outbox.sqlite").write_bytes(b"this is not a database" * 100)
    proc = _edge(config)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "outbox.sqlite" in last, proc.stderr


def test_outbox_requeue_puts_refused_items_back(tmp_path: Path) -> None:
    from phatnguoi.flows import FlowCount
    from phatnguoi.outbox import Outbox
    from violations.manifest import load_public_key

    config = _config(tmp_path, 0)
    (tmp_path / "edge").mkdir()
    counts = [FlowCount("hanoi-nguyenxien-khuatduytien", "left", "forward", "motorcycle", 0.0, 300.0, 4)]
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(tmp_path / "k.pub")) as box:
        box.enqueue_flows(counts)
        box.mark_permanent_failure(box.next_due(kind="flow"), "HTTP 422: unknown lane")
        assert box.stats().flows["failed_permanent"] == 1
    proc = _requeue(config, "flow")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "queued again: 1"
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(tmp_path / "k.pub")) as box:
        assert box.stats().flows["queued"] == 1 and box.stats().flows["failed_permanent"] == 0
    bad = _requeue(config, "x")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --kind must be evidence, flow or all, got 'x'"


def test_a_feed_only_light_without_a_feed_is_a_scene_error(tmp_path: Path) -> None:
    scene = yaml.safe_load((REPO_ROOT / "examples" / "scenes" / "sample.yaml").read_text())
    scene["lights"] = [{"id": "main", "feed_only": True}]
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(scene, allow_unicode=True))
    clip = REPO_ROOT / "examples" / "sample" / "hanoi_nguyenxien_khuatduytien.mp4"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "phatnguoi.cli", "run", "-s", str(clip), "--scene", str(path)),
            *("-o", str(tmp_path / "out"), "--no-plates"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: scene hanoi-nguyenxien-khuatduytien: light 'main' is feed_only"), last
