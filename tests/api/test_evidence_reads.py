"""Evidence bytes are served only when they match the device's signed hash (SQLite and PostgreSQL).

A blob replaced in the store (another valid JPEG), a file row pointed at another blob, or a stored
manifest that no longer verifies: the file route refuses (409, naming the file), logs an error and
writes an `evidence.mismatch` audit entry, instead of answering 200 under a header that claims the
signed hash. The store itself checks every blob it reads against its address, and does not take a
blob of the right size for a stored copy without checking its hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import make_engine, make_sessionmaker
from api.models import AuditEntry, Violation
from api.settings import Settings
from api.storage import ContentMismatchError, LocalStore
from tests.api.conftest import Db, World
from tests.api.evidence import ingest, jpeg, point_file_at

Auth = Callable[[str], dict[str, str]]


def _files(client: TestClient, auth: Auth, vid: int) -> dict[str, str]:
    body = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()
    return {f["name"]: f["sha256"] for f in body["files"]}


def _mismatches(session: Session, vid: int) -> list[tuple[str, dict[str, str]]]:
    session.rollback()
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "evidence.mismatch", AuditEntry.object_id == str(vid))
    ).all()
    return [(a.actor, json.loads(a.detail)) for a in rows]


def test_a_blob_replaced_in_the_store_is_refused_not_served_as_signed(
    client: TestClient,
    world: World,
    auth: Auth,
    settings: Settings,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    vid = ingest(client, world)
    signed = _files(client, auth, vid)
    r = client.get(f"/api/v1/violations/{vid}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == r.headers["x-content-sha256"] == signed["still_at.jpg"]

    # Another valid JPEG (another car, another moment) written over the stored blob.
    LocalStore(settings.evidence_dir).path_for(signed["still_at.jpg"]).write_bytes(jpeg(99))
    with caplog.at_level(logging.ERROR, logger="api.services.violations"):
        r = client.get(f"/api/v1/violations/{vid}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 409, r.text
    assert "still_at.jpg" in r.json()["detail"] and "does not match its signed hash" in r.json()["detail"]
    assert any("still_at.jpg" in m and "signed hash" in m for m in caplog.messages), caplog.messages
    assert [(actor, d["file"]) for actor, d in _mismatches(session, vid)] == [("user:off-a", "still_at.jpg")]

    # The other files are untouched and still served.
    r = client.get(f"/api/v1/violations/{vid}/files/still_before.jpg", headers=auth("off-a"))
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == r.headers["x-content-sha256"]


def test_a_file_row_pointed_at_another_blob_is_refused(
    client: TestClient, world: World, db: Db, auth: Auth, session: Session
) -> None:
    """The database edited instead of the store: the row names another stored photo (its hash and
    address consistent), which is not the one the device signed."""
    vid = ingest(client, world, seed=1)
    other = ingest(client, world, seed=2)
    point_file_at(db.url, vid, "still_at.jpg", _files(client, auth, other)["still_at.jpg"])
    r = client.get(f"/api/v1/violations/{vid}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 409, r.text
    assert "still_at.jpg" in r.json()["detail"]
    assert [d["file"] for _, d in _mismatches(session, vid)] == ["still_at.jpg"]


def test_no_file_is_served_when_the_stored_manifest_no_longer_verifies(
    client: TestClient, world: World, db: Db, auth: Auth
) -> None:
    vid = ingest(client, world)
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine)() as s:
            v = s.get(Violation, vid)
            assert v is not None
            s.execute(update(Violation).where(Violation.id == vid).values(signature="A" * 86 + "=="))
            s.commit()
    finally:
        engine.dispose()
    r = client.get(f"/api/v1/violations/{vid}/files/still_before.jpg", headers=auth("off-a"))
    assert r.status_code == 409, r.text
    assert "signature" in r.json()["detail"]


def test_the_store_checks_what_it_reads_and_what_it_takes_for_stored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    data = jpeg(3)
    sha = hashlib.sha256(data).hexdigest()
    uri = store.put(data, sha)
    path = store.path_for(sha)

    twin = bytearray(data)
    twin[len(twin) // 2] ^= 0x01  # same size, other bytes
    path.write_bytes(bytes(twin))
    with pytest.raises(ContentMismatchError, match=sha):
        store.get(uri)

    # The same evidence uploaded again: the blob of the right size is not taken for a stored copy.
    assert store.put(data, sha) == uri
    assert path.read_bytes() == data and store.get(uri) == data


def test_a_violation_whose_evidence_is_not_as_signed_cannot_be_confirmed(
    client: TestClient, world: World, auth: Auth, settings: Settings, session: Session
) -> None:
    """A fine must not rest on a photo that is not the one signed (or on a forged column): confirming
    is refused with the first problem the integrity check finds; rejecting stays possible."""
    vid = ingest(client, world, seed=4)
    forged = ingest(client, world, seed=5)
    LocalStore(settings.evidence_dir).path_for(_files(client, auth, vid)["still_at.jpg"]).write_bytes(
        jpeg(98)
    )
    session.execute(update(Violation).where(Violation.id == forged).values(rule="speeding"))
    session.commit()
    for target, needle in ((vid, "still_at.jpg"), (forged, "rule")):
        r = client.post(
            f"/api/v1/violations/{target}/decision", json={"decision": "confirm"}, headers=auth("off-a")
        )
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"violation {target}: its evidence is not what the device signed (")
        assert needle in detail and detail.endswith("; it can only be rejected")
        assert client.get(f"/api/v1/violations/{target}", headers=auth("off-a")).json()["status"] == "new"
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "reject", "reason": "other", "note": "ảnh không khớp chữ ký"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
