"""The whole chain on one machine: a real server on loopback, the edge worker on a real clip,
evidence uploaded through the durable outbox, every violation stored once."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any
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


def _config(tmp_path: Path, hanoi_clip: Path) -> Any:
    """One camera on the Giang Vo clip, no server, no plates."""
    from phatnguoi.config import load_camera
    from phatnguoi.edge import DeviceSection, EdgeCameraSection, EdgeConfig
    from violations.manifest import generate_keypair

    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    return EdgeConfig(
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


def test_worker_metrics_and_health(tmp_path: Path, hanoi_clip: Path) -> None:
    from phatnguoi.edge import EdgeWorker
    from phatnguoi.metrics import MetricsServer

    worker = EdgeWorker(_config(tmp_path, hanoi_clip))
    metrics = MetricsServer(worker.metrics, worker.health, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{metrics.port}/metrics"
    running = threading.Event()
    running.set()
    mid_run: list[tuple[float, float]] = []  # (frames processed, evidence waiting) while the worker runs

    def scrape() -> None:
        names = r'phatnguoi_frames_processed_total\{.*\}|phatnguoi_outbox_depth\{kind="evidence"\}'
        pattern = re.compile(rf"^({names}) (\S+)$", re.M)
        while running.is_set():
            with urlopen(url, timeout=5) as r:
                found = dict(m.groups() for m in pattern.finditer(r.read().decode()))
            if len(found) == 2:
                frames, depth = (float(v) for _, v in sorted(found.items()))
                mid_run.append((frames, depth))
            time.sleep(0.25)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    try:
        worker.run(deadline_s=120)
        running.clear()
        scraper.join(timeout=10)
        with urlopen(url, timeout=5) as r:
            text = r.read().decode()
        assert 'phatnguoi_frames_processed_total{camera="hanoi-giangvo-langha"} 360.0' in text
        assert 'phatnguoi_frames_in_total{camera="hanoi-giangvo-langha"} 360.0' in text
        assert "phatnguoi_violations_total" in text and "phatnguoi_alerts 0.0" in text
        # the outbox gauges follow the run (no server: evidence piles up), not only its end
        assert any(frames < 360 and depth >= 1 for frames, depth in mid_run), mid_run
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


def test_a_detector_failure_still_queues_the_evidence_of_established_violations(
    tmp_path: Path, hanoi_clip: Path
) -> None:
    """The detector fails mid-run: the worker goes down with the error, but every violation the rules
    had established by then is written and queued first (not left waiting for frames that never come)."""
    from models.runtime import InferenceError
    from phatnguoi.edge import EdgeWorker
    from phatnguoi.outbox import Outbox
    from violations.manifest import load_public_key

    worker = EdgeWorker(_config(tmp_path, hanoi_clip))
    real = worker.detector.detect_batch

    def failing(*args: Any, **kwargs: Any) -> Any:
        # right after the third violation, whose evidence still waits for the frames after it
        if worker.cameras[0].events >= 3:
            raise InferenceError("detector: the accelerator went away")
        return real(*args, **kwargs)

    worker.detector.detect_batch = failing  # type: ignore[method-assign]
    with pytest.raises(InferenceError, match="went away"):
        worker.run(deadline_s=120)
    established = worker.cameras[0].events
    assert established >= 3
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(tmp_path / "k.pub")) as box:
        assert box.stats().evidence.get("queued", 0) == established


def test_evidence_that_cannot_be_written_raises_an_operator_alert(tmp_path: Path, hanoi_clip: Path) -> None:
    """A package the builder could not write (a full disk, an encoder error) is never silently missing:
    the operator gets an alert per violation, recorded in the outbox and counted on /metrics."""
    import dataclasses

    from phatnguoi.edge import EdgeWorker

    worker = EdgeWorker(_config(tmp_path, hanoi_clip))
    evidence = worker.cameras[0].pipeline.evidence
    build = evidence.on_frame

    def failing(*args: Any, **kwargs: Any) -> Any:
        results = build(*args, **kwargs)
        return [dataclasses.replace(b, status="failed", error="No space left on device") for b in results]

    evidence.on_frame = failing
    worker.run(deadline_s=120)
    violations = worker.cameras[0].events
    assert violations >= 4
    assert worker.outbox.alert_counts["evidence_failed"] == violations
    assert worker.health()["outbox"]["evidence"].get("queued", 0) == 0
    assert f"phatnguoi_alerts {float(violations)}" in worker.metrics.render().decode()


def test_flows_counted_by_stop_line_crossing(tmp_path: Path, hanoi_clip: Path) -> None:
    """`flows.source: crossings` counts the vehicles that drove over the stop line (each one crossing in
    the crossing log), per class, under the line's lane name."""
    from phatnguoi.edge import EdgeWorker
    from phatnguoi.flows import FlowConfig
    from phatnguoi.outbox import Outbox
    from violations.manifest import load_public_key

    config = _config(tmp_path, hanoi_clip).model_copy(update={"flows": FlowConfig(source="crossings")})
    worker = EdgeWorker(config)
    worker.run(deadline_s=120)
    crossings = tmp_path / "edge" / "hanoi-giangvo-langha" / "crossings.jsonl"
    log = [json.loads(x) for x in crossings.read_text().splitlines()]
    assert len(log) >= 6
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(tmp_path / "k.pub")) as box:
        rows = box.flow_rows()
    assert {r["lane"] for r in rows} == {"line:sl1"} and {r["direction"] for r in rows} == {"in"}
    by_class: dict[str, int] = {}
    for r in rows:
        by_class[r["vehicle_class"]] = by_class.get(r["vehicle_class"], 0) + r["count"]
    expected: dict[str, int] = {}
    for c in log:
        expected[c["vehicle_class"]] = expected.get(c["vehicle_class"], 0) + 1
    assert by_class == expected


def test_processed_fps_is_measured_over_a_recent_window(tmp_path: Path, hanoi_clip: Path) -> None:
    """A camera that stalled shows 0 fps on /metrics, not its lifetime average."""
    from phatnguoi.edge import EdgeWorker

    worker = EdgeWorker(_config(tmp_path, hanoi_clip))
    try:
        cam = worker.cameras[0]
        now = time.monotonic()
        cam.fps_marks.extend([(now - 30.0, 0), (now - 12.0, 300)])  # 10 fps, then nothing for 12 s
        cam.processed = 300
        worker._update_metrics()
        text = worker.metrics.render().decode()
        assert 'phatnguoi_fps_processed{camera="hanoi-giangvo-langha"} 0.0' in text
        cam.processed = 360  # 60 frames since the mark 12 s ago
        worker._update_metrics()
        pattern = r'phatnguoi_fps_processed\{camera="hanoi-giangvo-langha"\} (\S+)'
        fps = re.search(pattern, worker.metrics.render().decode())
        assert fps is not None and 4.9 < float(fps.group(1)) < 5.1
    finally:
        worker.close()
