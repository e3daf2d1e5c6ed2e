"""The evidence store in `/healthz` and at startup: a store the server cannot write to refused every
upload (503) while `/healthz` said ok, and the server started on it without a word.

Tests may run as root, which ignores file permissions: a store is made unwritable by putting its root
under a regular file (no process can create a folder there).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import check_startup, create_app
from api.errors import StorageError
from api.routes.health import StoreProbe, probe_store
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import World, stored_blobs
from tests.api.evidence import build_package, post_package


def unwritable_dir(tmp_path: Path) -> Path:
    """A folder path no process (root included) can create: its parent is a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    return blocker / "evidence"


def test_healthz_reports_an_unwritable_store_and_uploads_agree(
    make_client: Callable[..., TestClient], world: World, tmp_path: Path
) -> None:
    client = make_client(evidence_dir=unwritable_dir(tmp_path))
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "database": "ok", "evidence": "unwritable"}
    dev = world.devices["dev-a"]
    upload = post_package(
        client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1"), dev.key
    )
    assert upload.status_code == 503


def test_healthz_is_ok_with_a_writable_store_and_leaves_no_probe_behind(
    client: TestClient, settings: Settings
) -> None:
    for _ in range(3):
        r = client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok", "evidence": "ok"}
    assert stored_blobs(settings.evidence_dir) == []


def test_healthz_reports_an_unreachable_s3_store(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("boto3", reason="boto3 not installed (the s3 extra)")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    client = make_client(evidence_store="s3", s3_bucket="evidence", s3_endpoint_url=dead)
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["evidence"] == "unwritable"


def test_the_probe_result_is_kept_for_its_ttl(tmp_path: Path) -> None:
    """Load balancers poll often: one probe per `ttl_s`, so a store that breaks shows within it."""
    root = tmp_path / "evidence"
    now = [1000.0]
    probe = StoreProbe(LocalStore(root), ttl_s=30.0, clock=lambda: now[0])
    assert probe.check() is None
    shutil.rmtree(root)
    root.write_bytes(b"")  # the store's root is now a file: nothing can be written under it
    now[0] += 29.0
    assert probe.check() is None  # not probed again yet
    now[0] += 1.0
    problem = probe.check()
    assert problem is not None and problem.startswith("cannot write a probe blob:")
    root.unlink()
    assert probe.check() == problem  # kept, too
    assert probe.check(fresh=True) is None
    assert stored_blobs(root) == []


def test_probe_store_names_the_step_and_the_cause(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"^cannot write a probe blob: \[Errno \d+\] Not a directory"):
        probe_store(LocalStore(unwritable_dir(tmp_path)))


def test_check_startup_refuses_an_unwritable_store_in_one_line(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    evidence = unwritable_dir(tmp_path)
    app = create_app(make_settings(evidence_dir=evidence))
    with pytest.raises(StorageError) as caught:
        check_startup(app)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"the evidence store (PHATNGUOI_EVIDENCE_DIR={evidence}) does not work: ")
    check_startup(create_app(make_settings()))  # a writable one passes
