"""Retention deletes the purged evidence's blobs for good: a deletion the store failed, or a process that
died after the purge was committed, is finished by the next run; blobs that no live evidence row
references (an ingest refused after storing its files, a purge before this queue existed) are swept
once they are older than the grace period."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from api.db import make_engine, utcnow
from api.models import EvidenceFile, Violation
from api.retention import run_retention
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import Db, World, stored_blobs
from tests.api.evidence import ingest, jpeg

Auth = Callable[[str], dict[str, str]]
LATER = timedelta(days=200)  # past the 180 rejected days


def _rejected(client: TestClient, world: World, auth: Auth, seed: int = 1) -> int:
    vid = ingest(client, world, seed=seed)
    body = {"decision": "reject", "reason": "duplicate"}
    r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    return vid


def _broken_store(tmp_path: Path) -> LocalStore:
    """A real local store whose root is a file: every delete fails (OSError → StorageError)."""
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"")
    return LocalStore(root)


class DyingStore(LocalStore):
    """The process is killed (OOM, a deploy restart) at the first blob delete after the purge's commit."""

    def delete(self, uri: str) -> None:
        raise SystemExit("killed")


def test_a_failed_blob_delete_is_done_by_the_next_run(
    client: TestClient, world: World, auth: Auth, settings: Settings, tmp_path: Path
) -> None:
    vid = _rejected(client, world, auth)
    assert len(stored_blobs(settings.evidence_dir)) == 4

    first = run_retention(settings, utcnow() + LATER, store=_broken_store(tmp_path))
    assert (first.violations_purged, first.blobs_deleted, len(first.errors)) == (1, 0, 4)
    assert len(stored_blobs(settings.evidence_dir)) == 4  # the store refused: the bytes are still there

    second = run_retention(settings, utcnow() + LATER)
    assert (second.violations_purged, second.blobs_deleted, second.errors) == (0, 4, [])
    assert stored_blobs(settings.evidence_dir) == []
    assert (first.blobs_pending, second.blobs_pending) == (4, 0)
    assert run_retention(settings, utcnow() + LATER).blobs_deleted == 0
    v = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()
    assert v["evidence_purged_at"] is not None and all(f["deleted"] for f in v["files"])


def test_a_run_killed_after_its_commit_is_finished_by_the_next_run(
    client: TestClient, world: World, auth: Auth, settings: Settings
) -> None:
    _rejected(client, world, auth)
    with pytest.raises(SystemExit):
        run_retention(settings, utcnow() + LATER, store=DyingStore(settings.evidence_dir))
    assert len(stored_blobs(settings.evidence_dir)) == 4

    report = run_retention(settings, utcnow() + LATER)
    assert (report.violations_purged, report.blobs_deleted) == (0, 4)
    assert stored_blobs(settings.evidence_dir) == []


def test_a_queued_blob_that_a_new_violation_uses_again_is_kept(
    client: TestClient, world: World, auth: Auth, settings: Settings, tmp_path: Path
) -> None:
    _rejected(client, world, auth, seed=1)
    run_retention(settings, utcnow() + LATER, store=_broken_store(tmp_path))
    # Meanwhile a new package with byte-identical files arrives (same seed, another event).
    again = ingest(client, world, seed=1)

    report = run_retention(settings, utcnow() + LATER)
    assert (report.blobs_deleted, report.blobs_pending) == (0, 0)
    assert len(stored_blobs(settings.evidence_dir)) == 4
    r = client.get(f"/api/v1/violations/{again}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 200


def test_unreferenced_blobs_are_swept_after_the_grace_period(
    client: TestClient, world: World, auth: Auth, settings: Settings, db: Db
) -> None:
    live = ingest(client, world, seed=1)
    legacy = _rejected(client, world, auth, seed=2)
    store = LocalStore(settings.evidence_dir)
    # What an ingest refused after storing its files leaves: a blob no row points at.
    orphan = jpeg(99)
    orphan_uri = store.put(orphan, hashlib.sha256(orphan).hexdigest())
    # A write that died before its rename.
    partial = store.path_for(hashlib.sha256(orphan).hexdigest()).parent / ".tmp-abc123"
    partial.write_bytes(b"half a jpeg")
    # A purge committed before the queue existed, whose blob deletes never happened.
    engine = make_engine(db.url)
    try:
        with engine.begin() as conn:
            purged_at = utcnow()
            conn.execute(update(Violation).where(Violation.id == legacy).values(evidence_purged_at=purged_at))
            conn.execute(
                update(EvidenceFile).where(EvidenceFile.violation_id == legacy).values(deleted_at=purged_at)
            )
    finally:
        engine.dispose()
    assert len(stored_blobs(settings.evidence_dir)) == 4 + 4 + 1 + 1

    run_retention(settings)  # everything was written just now: an ingest may be under way
    assert len(stored_blobs(settings.evidence_dir)) == 10

    def age(hours: float) -> None:
        t = time.time() - hours * 3600
        for p in stored_blobs(settings.evidence_dir):
            os.utime(p, (t, t))

    age(23)  # within the day of grace: kept
    run_retention(settings)
    assert len(stored_blobs(settings.evidence_dir)) == 10
    age(25)  # past it: every blob no live row references goes
    report = run_retention(settings)
    assert not store.exists(orphan_uri) and not partial.exists()
    assert len(stored_blobs(settings.evidence_dir)) == 4
    assert (report.violations_purged, report.orphans_deleted) == (0, 4 + 1 + 1), report
    r = client.get(f"/api/v1/violations/{live}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 200
