"""Fault tests of the outbox and uploader against a real server process on loopback.

Each test runs `phatnguoi serve` over a temporary SQLite database with a registered device, and real
signed evidence packages (built by the real `EvidenceBuilder` from frames of the Giang Vo clip, or by
`tests.api.evidence.build_package`). "Arrived exactly once" is checked on the server's own rows: the
set of event ids and the manifest hash of each equal what the edge queued, and the server's audit log
records one insertion per violation. Every wait has a deadline.

1. the server is down for the whole run, then starts;
2. the uploader process is SIGKILLed in the middle of its uploads (with an acknowledgement in
   flight), then restarted;
3. the server answers 500 (then 503 with Retry-After) for a while, then recovers; a 409 is final;
4. the disk fills up for real (a 4 MiB tmpfs; needs root) while the worker keeps building evidence.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import pytest

from phatnguoi.flows import FlowCount
from phatnguoi.outbox import Outbox, OutboxConfig, OutboxError
from phatnguoi.uploader import Uploader, UploaderConfig
from streams.frame import Frame
from tests.api.evidence import build_package, post_package
from tests.conftest import REPO_ROOT
from tests.edge.packages import SCENE_SHA, make_packages, video_packages, write_package
from tests.edge.proxy import FORWARD, Action, FaultProxy
from tests.edge.server import DEVICE_ID, VIOLATIONS, LiveServer, wait_until
from violations.evidence import EvidenceBuilder, EvidenceConfig
from violations.legal import reference
from violations.manifest import public_key_pem, verify_package
from violations.types import ViolationEvent, event_id

T0 = 1_664_097_300.0  # 2022-09-25T09:15:00Z, the Giang Vo recording's 5-minute interval
BACKOFF = {"backoff_initial_s": 0.2, "backoff_max_s": 1.0, "jitter": 0.5, "timeout_s": 10.0}


def local_hashes(ob: Outbox) -> dict[str, str]:
    return {r["event_id"]: r["manifest_sha256"] for r in ob.evidence_rows()}


def flow_counts(n: int, camera: str = "cam-a1") -> list[FlowCount]:
    return [
        FlowCount(camera, "approach", "forward", "motorcycle", T0 + 300 * k, T0 + 300 * (k + 1), 10 + k)
        for k in range(n)
    ]


def test_server_down_for_the_whole_run_then_up_every_violation_arrives_once(
    live_server: Callable[..., LiveServer],
    make_outbox: Callable[..., Outbox],
    evidence_root: Path,
    hanoi_clip: Path,
) -> None:
    srv = live_server()  # database ready, device registered, nothing listening yet
    ob = make_outbox(srv.private_key.public_key())
    up = Uploader(ob, srv.device_key, UploaderConfig(server_url=srv.url, **BACKOFF))
    up.start()
    try:
        built = video_packages(
            srv.private_key, evidence_root, hanoi_clip, device_id=DEVICE_ID, camera_id="cam-a1"
        )
        assert [b.status for b in built] == ["written"] * 4
        for b in built:
            assert ob.enqueue_package(b.path).status == "queued"
        for f in make_packages(srv.private_key, evidence_root, 16, device_id=DEVICE_ID, camera_id="cam-b1"):
            assert ob.enqueue_package(f).status == "queued"
        assert ob.enqueue_flows(flow_counts(3)) == 3
        wait_until(lambda: up.stats().errors.get("network", 0) >= 3, 15, "three failed attempts")
        assert ob.stats().evidence["sent"] == 0
        srv.start()
        wait_until(lambda: ob.stats().depth == 0, 30, "everything acknowledged")
    finally:
        assert up.stop(15)
    assert len(local_hashes(ob)) == 20
    assert srv.stored() == local_hashes(ob)
    assert srv.violation_rows() == srv.received_audits() == 20
    assert srv.flows() == {
        ("cam-a1", "approach", "forward", "motorcycle", t): 10 + k
        for k, t in enumerate(["2022-09-25T09:15:00Z", "2022-09-25T09:20:00Z", "2022-09-25T09:25:00Z"])
    }
    s = up.stats()
    assert (s.evidence_sent, s.evidence_duplicates, s.refused) == (20, 0, 0)


def _spawn_uploader(db: Path, pem: Path, url: str, key: str, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as fh:
        env = {**os.environ, "EDGE_DEVICE_KEY": key}
        return subprocess.Popen(
            [sys.executable, "-m", "tests.edge.uploader_proc", str(db), str(pem), url, "30"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=fh, text=True,
        )  # fmt: skip


def test_uploader_sigkilled_mid_upload_then_restarted_loses_and_duplicates_nothing(
    live_server: Callable[..., LiveServer],
    make_outbox: Callable[..., Outbox],
    evidence_root: Path,
    tmp_path: Path,
) -> None:
    """The proxy holds the server's answer to the 7th upload for 3 s: the server has stored that
    package, the uploader has not heard so. The uploader process is SIGKILLed right then, and
    started again: the held package is resent (200, already stored), the rest are sent once."""
    srv = live_server()
    srv.start()
    ob = make_outbox(srv.private_key.public_key())
    for f in make_packages(srv.private_key, evidence_root, 24, device_id=DEVICE_ID, camera_id="cam-a1"):
        ob.enqueue_package(f)
    queued = local_hashes(ob)
    ob.close()
    pem = tmp_path / "device.pub"
    pem.write_text(public_key_pem(srv.private_key))
    db = tmp_path / "outbox.db"
    plan = lambda n, path: Action(hold_s=3.0) if n == 7 and path == VIOLATIONS else FORWARD  # noqa: E731
    with FaultProxy(srv.url, plan) as proxy:
        first = _spawn_uploader(db, pem, proxy.url, srv.device_key, tmp_path / "uploader.log")
        try:
            wait_until(proxy.holding.is_set, 30, "the 7th upload held")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        assert first.returncode == -signal.SIGKILL
        stored_at_kill = srv.stored()
        with sqlite3.connect(db) as raw:
            states = dict(raw.execute("SELECT event_id, state FROM evidence").fetchall())
        sent_locally = {e for e, s in states.items() if s == "sent"}
        assert 0 < len(stored_at_kill) < 24  # killed in the middle
        assert sent_locally < set(stored_at_kill)  # the held one: stored, not known to the edge
        assert "sending" in states.values()  # claimed when it died
        second = _spawn_uploader(db, pem, proxy.url, srv.device_key, tmp_path / "uploader.log")
        out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, (tmp_path / "uploader.log").read_text()[-3000:]
    sent, duplicates = int(out.split()[1]), int(out.split()[3])
    assert duplicates >= 1 and sent + duplicates == 24 - len(sent_locally)
    assert srv.stored() == queued
    assert srv.violation_rows() == srv.received_audits() == 24
    after = make_outbox(srv.private_key.public_key())
    assert after.stats().evidence["sent"] == 24


def test_server_errors_then_recovery_retries_with_backoff_and_a_conflict_is_final(
    live_server: Callable[..., LiveServer],
    make_outbox: Callable[..., Outbox],
    evidence_root: Path,
    tmp_path: Path,
) -> None:
    srv = live_server()
    srv.start()
    ob = make_outbox(srv.private_key.public_key())
    # A package the server already holds under the same event id as one of ours, with another
    # manifest: the edge's copy is refused with 409, for good.
    other = build_package(srv.private_key, device_id=DEVICE_ID, camera_id="cam-a1", seed=77)
    with httpx.Client(base_url=srv.url) as http:
        assert post_package(http, other, srv.device_key).status_code == 201
    clash = build_package(
        srv.private_key, device_id=DEVICE_ID, camera_id="cam-a1", seed=78, event_id=other.event_id
    )
    folders = make_packages(srv.private_key, evidence_root, 6, device_id=DEVICE_ID, camera_id="cam-a1")
    for f in folders:
        ob.enqueue_package(f)
    ob.enqueue_package(write_package(clash, tmp_path / "clash"))
    ob.enqueue_flows(flow_counts(3))

    def plan(n: int, path: str) -> Action:
        if path == VIOLATIONS and n <= 4:
            return Action("status", 500)
        if path == VIOLATIONS and n == 5:
            return Action("status", 503, {"Retry-After": "2"})
        if path != VIOLATIONS and n == 1:
            return Action("status", 500)
        return FORWARD

    with FaultProxy(srv.url, plan) as proxy:
        up = Uploader(ob, srv.device_key, UploaderConfig(server_url=proxy.url, **BACKOFF))
        up.start()
        try:
            wait_until(lambda: ob.stats().depth == 0, 30, "everything settled")
        finally:
            assert up.stop(15)
    outcomes = proxy.outcomes(VIOLATIONS)
    times = proxy.times(VIOLATIONS)
    assert outcomes[:5] == ["500", "500", "500", "500", "503"]
    assert outcomes.count("409") == 1  # refused once, never retried
    assert outcomes.count("201") == 6
    gaps = [b - a for a, b in itertools.pairwise(times[:6])]
    # The uploader waits at least the jittered backoff of k failures in a row (0.2 s doubling, capped
    # at 1 s, up to half off) and at least the 2 s the 503 asked for.
    assert [g >= low for g, low in zip(gaps, [0.1, 0.2, 0.4, 0.5, 2.0], strict=True)] == [True] * 5, gaps
    rows = {r["event_id"]: r for r in ob.evidence_rows()}
    assert rows[clash.event_id]["state"] == "failed_permanent"
    assert "conflict" in rows[clash.event_id]["last_error"]
    assert [a["kind"] for a in ob.alerts()] == ["conflict"]
    stored = srv.stored()
    assert stored[clash.event_id] == hashlib.sha256(other.manifest_bytes).hexdigest()
    assert {e: h for e, h in stored.items() if e != clash.event_id} == {
        e: h for e, h in local_hashes(ob).items() if e != clash.event_id
    }
    assert srv.received_audits() == 7  # six of ours and the other package
    assert len(srv.flows()) == 3 and proxy.outcomes("/api/v1/flows")[0] == "500"
    s = up.stats()
    assert s.conflicts == 1 and s.errors.get("http_5xx", 0) == 6


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB file system (tmpfs). Needs root (CAP_SYS_ADMIN); skipped otherwise: the disk
    budget policy itself is tested without it in test_outbox.py."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a 4 MiB tmpfs here ({r.stderr.strip() or r.returncode}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_disk_full_keeps_detecting_alerts_and_loses_no_committed_evidence(
    small_disk: Path, live_server: Callable[..., LiveServer], hanoi_clip: Path
) -> None:
    """The outbox and the evidence folder share a real 4 MiB file system.

    1. The evidence builder writes ~0.5 MB packages of real frames (an event a second) until the disk
       is full: the frame loop never stops, later packages fail to build, the outbox raises its
       ``disk_full`` flag (1 MiB reserve of free space) once.
    2. Something else takes the last free bytes: committing a new row fails with `OutboxError`
       (``storage_error`` set, alerted); the package whose row failed stays on disk. Every package
       that was queued still verifies.
    3. Restart on the same files with the disk 100 % full and the server up: the outbox gives up its
       reserve file to open (SQLite must create its WAL and shared-memory files), uploads are recorded
       and acknowledged packages deleted (retention 0), which frees the disk; `adopt` queues the
       package whose row had failed. Every complete package reaches the server, once, with its hash;
       the flag clears and the reserve comes back."""
    srv = live_server()
    key = srv.private_key
    evidence = small_disk / "evidence"
    config = OutboxConfig(
        max_bytes=64 * 1024 * 1024, min_free_bytes=1024 * 1024, reserve_bytes=512 * 1024, retention_days=0,
        usage_scan_s=0,
    )  # fmt: skip
    ob = Outbox(small_disk / "outbox.db", key.public_key(), evidence_root=evidence, config=config)
    assert ob.reserve_path.stat().st_size == 512 * 1024
    builder = EvidenceBuilder(
        DEVICE_ID, key, evidence, scene_version=SCENE_SHA, ts_origin=T0 + 40,
        config=EvidenceConfig(pre_s=1.0, post_s=1.0, still_offset_s=0.5, background=False),
    )  # fmt: skip
    ref = reference("red_light", "motorcycle")
    assert ref is not None
    queued: set[str] = set()
    written: dict[str, Path] = {}
    held: Path | None = None  # the newest package, queued when the next one comes (see step 2)
    failed_builds = frames = 0
    cap = cv2.VideoCapture(str(hanoi_clip))
    try:
        for index in range(150):
            ok, image = cap.read()
            assert ok
            frames += 1
            ts = index / 6.0
            for result in builder.on_frame(Frame(image, index, ts, "cam-a1")):
                if result.status != "written":
                    failed_builds += 1
                    continue
                written[result.event_id] = result.path
                if held is not None and ob.enqueue_package(held).status == "queued":
                    queued.add(held.name)
                held = result.path
            if index % 6 == 3:
                builder.add_event(
                    ViolationEvent(
                        event_id(DEVICE_ID, index, "red_light", ts), "red_light", ref.citation, "cam-a1",
                        index, index, ts, "motorcycle", (300.0, 330.0, 345.0, 420.0), {"line_id": "sl1"},
                    )
                )  # fmt: skip
            if index % 30 == 29:
                ob.enqueue_flows(flow_counts(1 + index // 30))
        for result in builder.close():
            failed_builds += result.status != "written"
    finally:
        cap.release()
    # 1. The loop went on through the full disk; flagged and alerted once.
    assert frames == 150
    assert failed_builds >= 1, "the disk was to fill up"
    assert len(written) >= 3 and held is not None
    assert ob.disk_full and ob.alert_counts["disk_full"] == 1
    # 2. The last bytes go to another writer; a commit fails, reads still work.
    ob.checkpoint()  # the WAL file is emptied: the next commit needs new blocks
    with (small_disk / "filler").open("wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\xff" * 4096)
    assert ob.free_bytes() < 4096
    with pytest.raises(OutboxError) as failure:
        ob.enqueue_package(held)
    assert failure.value.disk_full and ob.storage_error is not None and ob.alert_counts["storage"] == 1
    assert ob.stats().evidence["queued"] == len(queued)
    for event in queued:
        verify_package(evidence / event, key.public_key())
    ob.close()
    # 3. Restart on a full disk, server up.
    srv.start()
    again = Outbox(small_disk / "outbox.db", key.public_key(), evidence_root=evidence, config=config)
    try:
        assert set(local_hashes(again)) == queued
        assert not again.reserve_path.exists() and again.alert_counts["reserve_used"] == 1
        up = Uploader(again, srv.device_key, UploaderConfig(server_url=srv.url, **BACKOFF))
        up.start()
        try:
            wait_until(lambda: again.stats().depth == 0, 30, "queued packages acknowledged")
            adopted = [r.event_id for r in again.adopt() if r.status == "queued"]
            assert adopted == [held.name]
            wait_until(lambda: again.stats().depth == 0, 30, "the adopted package acknowledged")
        finally:
            assert up.stop(15)
        assert set(srv.stored()) == set(written)
        assert srv.stored() == local_hashes(again)
        assert srv.violation_rows() == srv.received_audits() == len(written)
        assert again.enforce_limit().disk_full is False and not again.disk_full
        assert again.storage_error is None and again.reserve_path.exists()
        assert not any(p.name in written for p in evidence.iterdir())
    finally:
        again.close()
