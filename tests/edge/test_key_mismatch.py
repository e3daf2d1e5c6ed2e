"""A box whose signing key is not the one registered for its device on the server, and packages the
server refuses because of how the box or the device is set up: nothing is lost or refused for good,
the health says what to do, and after the fix (`phatnguoi devices set-public-key`) everything goes,
once. Real uploader and edge worker against the real server on loopback.

Before the fix, the box's packages were refused for good one after the other (``failed_permanent``,
an ALERT line each) while `/healthz` said ok, and a 403 for another device's package paused every
upload of the box for good."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api import admin
from phatnguoi.flows import FlowCount
from phatnguoi.outbox import Outbox
from phatnguoi.uploader import DEVICE_PATH, Uploader, UploaderConfig, configuration_refusal
from tests.conftest import REPO_ROOT
from tests.edge.packages import make_packages
from tests.edge.proxy import FORWARD, Action, FaultProxy
from tests.edge.server import DEVICE_ID, VIOLATIONS, LiveServer, wait_until
from violations.manifest import generate_keypair, load_private_key, public_key_fingerprint, public_key_pem

FAST = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5, "jitter": 0.5, "timeout_s": 10.0}


@pytest.mark.parametrize(
    ("status", "reason", "held"),
    [
        (400, "signature: signature does not match manifest.json (manifest altered, or signed by …)", True),
        (403, "manifest device_id 'edge-mm-01' is not the calling device 'edge-mm-02'", True),
        (403, "device edge-1 may not post for camera 'cam-z'", True),
        (403, "camera 'cam-z' is not registered", True),
        (403, "device edge-1 is disabled", False),  # re-enabled on the server: retried as before
        (401, "invalid device key", False),
        (400, "files: still_at.jpg: SHA-256 differs", False),  # the package itself: refused for good
        (422, "signature: x", False),
    ],
)  # fmt: skip
def test_which_refusals_are_configuration(status: int, reason: str, held: bool) -> None:
    assert configuration_refusal(status, reason) is held


def _flows(camera: str, n: int) -> list[FlowCount]:
    t0 = (int(time.time()) // 300 - 12) * 300  # an hour ago, on the 5-minute grid
    return [
        FlowCount(camera, "approach", "forward", "car", t0 + 300 * k, t0 + 300 * (k + 1), 5 + k)
        for k in range(n)
    ]


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    srv = live_server()
    srv.start()
    return srv


def _set_public_key(srv: LiveServer, device: str, pub: Path) -> subprocess.CompletedProcess[str]:
    """`phatnguoi devices set-public-key` on the server's database, as the operator runs it."""
    args = ["devices", "set-public-key", device, "--public-key", str(pub)]
    return subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**srv.env, "COLUMNS": "300"},
    )  # fmt: skip


def test_the_wrong_key_registered_holds_evidence_until_set_public_key(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path, tmp_path: Path
) -> None:
    """The server holds another box's key for this device. No package is sent, none fails; flow counts
    (not signed) still go; the health line says which command fixes it. After it, all go, once."""
    generate_keypair(tmp_path / "box.pem", tmp_path / "box.pub")
    box = load_private_key(tmp_path / "box.pem")
    ob = make_outbox(box.public_key())
    folders = make_packages(box, evidence_root, 5, device_id=DEVICE_ID, camera_id="cam-a1")
    for f in folders:
        ob.enqueue_package(f)
    ob.enqueue_flows(_flows("cam-a1", 2))
    up = Uploader(
        ob, server.device_key, UploaderConfig(server_url=server.url, **FAST), key_file=tmp_path / "box.pub"
    )
    up.start()
    try:
        wait_until(lambda: ob.stats().flows["sent"] == 2, 20, "flow counts sent")
        time.sleep(1.5)  # several checks of the key (backoff 0.1 .. 0.5 s)
        stats, s = ob.stats(), up.stats()
        assert (stats.evidence["queued"], stats.evidence["failed_permanent"], stats.evidence["sent"]) == (
            5,
            0,
            0,
        )
        assert server.stored() == {} and s.refused == 0 and s.retries == 0 and not up.paused
        assert s.key == "mismatch" and s.key_problem is not None
        assert s.key_problem.startswith(f"the server has another public key for device {DEVICE_ID} (sha256 ")
        assert f"(sha256 {public_key_fingerprint(box)[:16]}…, {tmp_path / 'box.pub'})" in s.key_problem
        assert (
            f"`phatnguoi devices set-public-key {DEVICE_ID} --public-key {tmp_path / 'box.pub'}`"
            in s.key_problem
        )
        assert [a["kind"] for a in ob.alerts()] == ["key_mismatch"]  # once, not once per package

        fixed = _set_public_key(server, DEVICE_ID, tmp_path / "box.pub")
        assert fixed.returncode == 0, fixed.stderr
        assert fixed.stdout.strip().endswith(f"replaced by {public_key_fingerprint(box)[:16]}…")
        wait_until(lambda: ob.stats().evidence["sent"] == 5, 20, "evidence sent after the fix")
    finally:
        assert up.stop(10)
    assert set(server.stored()) == {f.name for f in folders}
    assert server.received_audits() == 5  # each stored once
    assert up.stats().key == "ok" and up.stats().key_problem is None
    refused = _set_public_key(server, DEVICE_ID, tmp_path / "box.pub")  # the same key: nothing to do
    assert refused.returncode == 0 and "already has this public key" in refused.stdout


def test_a_signature_refusal_holds_the_package_and_checks_the_key_again(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path
) -> None:
    """The key was right at the first check and replaced on the server afterwards: the next package is
    refused (400), held (not failed), the key is checked again before any other package is sent, and
    once the box's key is back everything goes."""
    ob = make_outbox(server.private_key.public_key())
    up = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url, key_check_s=3600, **FAST))
    assert up.run_once() == 0 and up.stats().key == "ok"  # nothing queued: only the check
    admin.set_device_public_key(server.settings, DEVICE_ID, public_key_pem(Ed25519PrivateKey.generate()))
    folders = make_packages(server.private_key, evidence_root, 3, device_id=DEVICE_ID, camera_id="cam-a1")
    for f in folders:
        ob.enqueue_package(f)
    assert up.run_once() == 1  # refused: the round stops there
    held = [r for r in ob.evidence_rows() if r["attempts"]]
    assert len(held) == 1 and held[0]["state"] == "queued"
    assert held[0]["last_error"].startswith("held: HTTP 400: signature: ")
    assert ob.stats().held == 1 and ob.stats().held_reason.startswith("HTTP 400: signature: ")  # type: ignore[union-attr]
    assert up.run_once() == 0 and up.stats().key == "mismatch"  # the check: no other package goes
    assert [r["attempts"] for r in ob.evidence_rows()].count(0) == 2
    assert {a["kind"] for a in ob.alerts()} == {"held", "key_mismatch"} and not up.paused

    admin.set_device_public_key(server.settings, DEVICE_ID, public_key_pem(server.private_key))
    wait_until(lambda: (up.run_once(), ob.stats().evidence["sent"])[1] == 3, 20, "everything sent")
    assert set(server.stored()) == {f.name for f in folders} and server.received_audits() == 3
    assert ob.stats().held == 0 and up.stats().refused == 0


def test_another_devices_packages_are_held_without_pausing_the_others(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path
) -> None:
    """The box was renamed to another device id with packages of the old one still queued (the repro:
    403 "manifest device_id … is not the calling device", classed as a refused key, paused every
    upload of the box). An older server (no /devices/me: 404) answers 403: held; the server's own
    answer known, the box holds them without sending. The box's own packages go either way."""
    ob = make_outbox(server.private_key.public_key())
    old = make_packages(server.private_key, evidence_root, 2, device_id="edge-old", camera_id="cam-a1")
    own = make_packages(
        server.private_key, evidence_root, 3, device_id=DEVICE_ID, camera_id="cam-a1", first_seed=10
    )
    for f in old + own:
        ob.enqueue_package(f)
    older_server = lambda n, path: Action("status", 404) if path == DEVICE_PATH else FORWARD  # noqa: E731
    with FaultProxy(server.url, older_server) as proxy:
        up = Uploader(ob, server.device_key, UploaderConfig(server_url=proxy.url, **FAST))
        wait_until(lambda: (up.run_once(), ob.stats().evidence["sent"])[1] == 3, 20, "own packages sent")
        assert proxy.outcomes(VIOLATIONS).count("403") == 2
    stats, s = ob.stats(), up.stats()
    assert (stats.evidence["queued"], stats.evidence["failed_permanent"], stats.held) == (2, 0, 2)
    assert stats.held_reason == "HTTP 403: manifest device_id 'edge-old' is not the calling device 'edge-1'"
    assert s.consecutive_failures == 0 and not up.paused and s.key == "unchecked"
    assert [a["kind"] for a in ob.alerts()] == ["held"]
    assert set(server.stored()) == {f.name for f in own}

    # The operator's `outbox requeue` makes them due now; this server answers /devices/me: held on the
    # box, not sent again.
    assert ob.requeue_failed() == 2
    with FaultProxy(server.url) as proxy:
        up = Uploader(ob, server.device_key, UploaderConfig(server_url=proxy.url, **FAST))
        assert up.run_once() == 2 and up.stats().key == "ok"
        assert proxy.outcomes(VIOLATIONS) == []
    rows = {r["event_id"]: r for r in ob.evidence_rows()}
    assert all(rows[f.name]["last_error"].endswith("(on the box)") for f in old)
    assert ob.stats().held == 2


# ---------------------------------------------------------------------------------------------------
# The real edge worker
# ---------------------------------------------------------------------------------------------------

CAMERA = "hanoi-giangvo-langha"


def _worker_config(tmp_path: Path, hanoi_clip: Path, server: LiveServer, device: str) -> Any:
    from phatnguoi.config import load_camera
    from phatnguoi.edge import DeviceSection, EdgeCameraSection, EdgeConfig

    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    return EdgeConfig(
        device=DeviceSection(id=device, private_key=tmp_path / "k.pem", public_key=tmp_path / "k.pub"),
        data_dir=tmp_path / "edge",
        detector=load_camera(
            REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml"
        ).detector.model_copy(update={"roi": None}),
        cameras=(
            EdgeCameraSection(
                id=CAMERA,
                source=str(hanoi_clip),
                roi=(0, 96, 640, 480),
                read_plates=False,
                scene=REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml",
            ),
        ),
        upload=UploaderConfig(server_url=server.url, **FAST),
    )


def test_edge_worker_with_the_wrong_key_registered_loses_nothing(
    server: LiveServer, tmp_path: Path, hanoi_clip: Path
) -> None:
    """The installer's mistake on a real box: the device registered with the .pub of another key. The
    worker runs the Giang Vo clip: /healthz not ok with the command that fixes it, every violation
    queued (none failed). `devices set-public-key` while it runs: every violation arrives, once."""
    from phatnguoi.edge import EdgeWorker

    device = "edge-gv"
    wrong = Ed25519PrivateKey.generate()
    api_key = admin.add_device(server.settings, device, [CAMERA], public_key_pem(wrong))
    config = _worker_config(tmp_path, hanoi_clip, server, device)
    worker = EdgeWorker(config, device_key=api_key)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(until_sent=True, deadline_s=400)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    thread = threading.Thread(target=run, name="edge-worker", daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.health()["cameras"][CAMERA]["state"] == "ended", 300, "the clip processed")
        time.sleep(1.0)  # the last packages queued, a few key checks
        health = worker.health()
        violations = health["cameras"][CAMERA]["violations"]
        assert violations >= 4
        assert not health["ok"]
        assert health["uploader"]["key"] == "mismatch"
        assert (
            f"`phatnguoi devices set-public-key {device} --public-key {tmp_path / 'k.pub'}`"
            in (health["uploader"]["key_problem"])
        )
        evidence = health["outbox"]["evidence"]
        assert (evidence["queued"], evidence["failed_permanent"], evidence["sent"]) == (violations, 0, 0)
        assert server.stored() == {}

        fixed = _set_public_key(server, device, tmp_path / "k.pub")
        assert fixed.returncode == 0, fixed.stderr
        thread.join(120)
        assert not thread.is_alive() and not errors, errors
    finally:
        worker.stop()
        thread.join(30)
    health = worker.health()
    assert health["uploader"]["key"] == "ok"
    assert health["outbox"]["evidence"]["sent"] == violations
    assert len(server.stored()) == violations and server.received_audits() == violations
    with Outbox(config.data_dir / "outbox.sqlite", load_private_key(tmp_path / "k.pem").public_key()) as ob:
        assert {r["state"] for r in ob.evidence_rows()} == {"sent"}
        assert set(server.stored()) == {r["event_id"] for r in ob.evidence_rows()}
        assert [a["kind"] for a in ob.alerts()] == ["key_mismatch"]


def test_set_public_key_is_refused_once_evidence_of_the_device_is_stored(
    server: LiveServer, tmp_path: Path
) -> None:
    """Stored evidence is verified with the registered key: it stays; one line says what to do."""
    import httpx

    from tests.api.evidence import build_package, post_package

    pkg = build_package(server.private_key, device_id=DEVICE_ID, camera_id="cam-a1")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert post_package(http, pkg, server.device_key).status_code == 201
    generate_keypair(tmp_path / "other.pem", tmp_path / "other.pub")
    proc = _set_public_key(server, DEVICE_ID, tmp_path / "other.pub")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(
        f"error: device '{DEVICE_ID}' has 1 violation(s) stored, verified with its registered key"
    )
    assert set(server.stored()) == {pkg.event_id}
    me = httpx.get(f"{server.url}{DEVICE_PATH}", headers={"X-Device-Key": server.device_key}, timeout=10)
    assert me.json()["public_key_sha256"] == public_key_fingerprint(server.private_key)
