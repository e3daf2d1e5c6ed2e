"""The whole chain on one machine: a real server on loopback, the edge worker on a real clip,
evidence uploaded through the durable outbox, every violation stored once."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.conftest import REPO_ROOT


def test_demo_chain_on_the_hanoi_clip(tmp_path: Path, hanoi_clip: Path) -> None:
    from phatnguoi.demo import run_demo

    result, server = run_demo(
        tmp_path / "demo",
        source=hanoi_clip,
        scene_file=REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml",
        camera_file=REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml",
    )
    try:
        assert result.frames == 360
        assert result.violations >= 4  # the 4 red-light runners labelled by eye, at least
        assert result.uploaded == result.violations and result.queued == 0
        assert result.server_violations == result.violations  # each stored once
        with urlopen(f"{server.url}/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        server.stop()


def test_worker_metrics_and_health(tmp_path: Path, hanoi_clip: Path) -> None:
    from phatnguoi.config import load_camera
    from phatnguoi.edge import DeviceSection, EdgeCameraSection, EdgeConfig, EdgeWorker
    from phatnguoi.metrics import MetricsServer
    from violations.manifest import generate_keypair

    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    config = EdgeConfig(
        device=DeviceSection(id="edge-t", private_key=tmp_path / "k.pem", public_key=tmp_path / "k.pub"),
        data_dir=tmp_path / "edge",
        detector=load_camera(
            REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml"
        ).detector.model_copy(update={"roi": None}),
        cameras=(
            EdgeCameraSection(
                id="hanoi-giangvo-langha",
                source=str(hanoi_clip),
                roi=(0, 96, 640, 480),
                read_plates=False,
                scene=REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml",
            ),
        ),
    )
    worker = EdgeWorker(config)
    metrics = MetricsServer(worker.metrics, worker.health, "127.0.0.1", 0).start()
    try:
        worker.run(deadline_s=120)
        with urlopen(f"http://127.0.0.1:{metrics.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert 'phatnguoi_frames_processed_total{camera="hanoi-giangvo-langha"} 360.0' in text
        assert "phatnguoi_violations_total" in text and "phatnguoi_outbox_depth" in text
        health = worker.health()
        assert health["cameras"]["hanoi-giangvo-langha"]["frames_processed"] == 360
        violations = health["cameras"]["hanoi-giangvo-langha"]["violations"]
        assert violations >= 4
        assert health["outbox"]["evidence"].get("queued", 0) == violations  # no server: kept on the box
    finally:
        metrics.close()


def test_edge_config_errors_name_the_field(tmp_path: Path) -> None:
    from phatnguoi.config import ConfigError
    from phatnguoi.edge import load_edge_config

    bad = tmp_path / "edge.yaml"
    bad.write_text(
        "device: {id: e1, private_key: k.pem, public_key: k.pub}\ndata_dir: d\ncameras: []\nfoo: 1\n"
    )
    with pytest.raises(ConfigError) as e:
        load_edge_config(bad)
    assert "cameras" in str(e.value) and "foo" in str(e.value) and "edge.yaml" in str(e.value)
    assert json.dumps(str(e.value))  # one printable line


def test_bench_edge_one_camera(hanoi_clip: Path) -> None:
    from phatnguoi.bench_edge import bench_edge

    result = bench_edge(
        hanoi_clip,
        REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml",
        REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml",
        counts=(1,),
    )
    (run,) = result["runs"]
    assert run["frames_per_camera"] == [360]
    assert run["violations"] >= 4 and run["stored_on_server"] == run["violations"]
    assert run["fps_per_camera"] > 0 and run["latency_s"]["p50"] is not None
