"""Retention: evidence of old rejected and never-reviewed violations is deleted for good, shared blobs
stay while another violation needs them, confirmed evidence is kept, and every deletion is audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import utcnow
from api.models import AuditEntry, EvidenceFile, Violation
from api.retention import run_retention
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import World, stored_blobs
from tests.api.evidence import build_package, post_package

Auth = Callable[[str], dict[str, str]]


def ingest(client: TestClient, world: World, **kw: Any) -> int:
    dev = world.devices["dev-a"]
    r = post_package(
        client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", **kw), dev.key
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_retention_deletes_old_rejected_and_expired_evidence_only(
    client: TestClient, world: World, auth: Auth, settings: Settings, session: Session
) -> None:
    rejected = ingest(client, world, seed=1)
    shared_rejected = ingest(client, world, seed=2)  # same files as `confirmed` (same seed)
    confirmed = ingest(client, world, seed=2)
    unreviewed = ingest(client, world, seed=3)
    for vid, body in (
        (rejected, {"decision": "reject", "reason": "not_a_violation"}),
        (shared_rejected, {"decision": "reject", "reason": "duplicate"}),
        (confirmed, {"decision": "confirm"}),
    ):
        assert (
            client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a")).status_code
            == 200
        )
    blobs_before = stored_blobs(settings.evidence_dir)
    assert len(blobs_before) == 12  # 3 distinct packages x 4 files

    # Too early for anything: rejected 180 days, unreviewed 365 days (occurred 2026-11-23).
    early = run_retention(settings, utcnow() + timedelta(days=179))
    assert (early.violations_purged, early.blobs_deleted) == (0, 0)

    report = run_retention(settings, utcnow() + timedelta(days=181))
    assert (
        report.violations_purged,
        report.files_deleted,
        report.blobs_deleted,
        report.blobs_kept_shared,
    ) == (
        2,
        8,
        4,
        4,
    )
    assert report.errors == [] and report.bytes_deleted > 0
    store = LocalStore(settings.evidence_dir)
    session.rollback()
    for vid, gone in ((rejected, True), (shared_rejected, True), (confirmed, False), (unreviewed, False)):
        v = session.get(Violation, vid)
        assert v is not None and (v.evidence_purged_at is not None) == gone, vid
        for f in v.files:
            assert (f.deleted_at is not None) == gone
            # The shared blob stays for the confirmed violation.
            expect_blob = not gone or vid == shared_rejected
            assert store.exists(f.storage_uri) == expect_blob, (vid, f.name)
    assert len(stored_blobs(settings.evidence_dir)) == 8

    r = client.get(f"/api/v1/violations/{rejected}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 410 and "retention" in r.json()["detail"]
    r = client.get(f"/api/v1/violations/{shared_rejected}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 410  # deleted for this violation even though the bytes are still stored
    v = client.get(f"/api/v1/violations/{rejected}", headers=auth("off-a")).json()
    assert v["evidence_purged_at"] is not None and all(f["deleted"] for f in v["files"])

    # A purged violation cannot be reopened: there is nothing left to decide on, and reopened it would
    # wait in the review queue for ever. It stays rejected.
    r = client.post(f"/api/v1/violations/{rejected}/reopen", json={"note": "x"}, headers=auth("sup"))
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        f"violation {rejected}: its evidence was deleted (retention); it cannot be reviewed again"
    )
    assert client.get(f"/api/v1/violations/{rejected}", headers=auth("sup")).json()["status"] == "rejected"

    # The unreviewed one expires after 365 days; the confirmed one never does.
    later = run_retention(settings, utcnow() + timedelta(days=3650))
    assert later.violations_purged == 1 and later.blobs_deleted == 4
    # With its evidence gone it cannot be confirmed, but it can be rejected: it does not wait for ever.
    r = client.post(
        f"/api/v1/violations/{unreviewed}/decision", json={"decision": "confirm"}, headers=auth("off-a")
    )
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"violation {unreviewed}: its evidence was deleted (retention); it can only be rejected"
    )
    r = client.post(
        f"/api/v1/violations/{unreviewed}/decision",
        json={"decision": "reject", "reason": "other", "note": "quá hạn"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    session.rollback()
    assert session.get(Violation, confirmed).evidence_purged_at is None  # type: ignore[union-attr]
    assert len(stored_blobs(settings.evidence_dir)) == 4
    assert run_retention(settings, utcnow() + timedelta(days=3650)).violations_purged == 0

    session.rollback()
    purges = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "evidence.purge").order_by(AuditEntry.seq)
    ).all()
    assert [(int(a.object_id or 0), json.loads(a.detail)["reason"]) for a in purges] == [
        (rejected, "rejected"),
        (shared_rejected, "rejected"),
        (unreviewed, "unreviewed"),
    ]
    assert json.loads(purges[0].detail)["files"] == [
        "plate.jpg",
        "still_after.jpg",
        "still_at.jpg",
        "still_before.jpg",
    ]
    runs = session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.run")).all()
    assert [json.loads(a.detail)["violations"] for a in runs] == [0, 2, 1, 0]
    assert (
        session.scalar(select(EvidenceFile.id).where(EvidenceFile.deleted_at.is_(None)).limit(1)) is not None
    )


def test_a_blob_that_cannot_be_deleted_is_reported(
    client: TestClient, world: World, auth: Auth, settings: Settings, tmp_path: Path
) -> None:
    vid = ingest(client, world)
    body = {"decision": "reject", "reason": "duplicate"}
    assert (
        client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a")).status_code == 200
    )
    # A store whose root is a file: every delete fails with an OSError.
    broken = LocalStore(tmp_path / "not-a-dir")
    (tmp_path / "not-a-dir").write_bytes(b"")
    report = run_retention(settings, utcnow() + timedelta(days=400), store=broken)
    assert report.violations_purged == 1 and report.blobs_deleted == 0 and len(report.errors) == 4
