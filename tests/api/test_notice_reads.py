"""Staff reads of owner notices: each is audited like a view of the violation (the notice shows the
lookup code, the PDF prints it, the due list names plates), and the PDF is drawn outside any
transaction (on SQLite a transaction holds the database's write lock)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.app import create_app
from api.models import AuditEntry
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import Db, World
from tests.api.evidence import ingest, register_owner

Auth = Callable[[str], dict[str, str]]


def confirmed_violation(client: TestClient, world: World, auth: Auth) -> int:
    """An ingested violation of cam-a1 confirmed by off-a (which creates its notice)."""
    vid = ingest(client, world)
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    return vid


def notice_reads(session: Session) -> list[tuple[str, str, str | None]]:
    session.rollback()
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.action.startswith("notice.")).order_by(AuditEntry.seq)
    ).all()
    return [(a.action, a.actor, a.object_id) for a in rows if a.action in _READS]


_READS = ("notice.view", "notice.pdf", "notice.due_list")


def test_reading_a_notice_its_pdf_and_the_due_list_is_audited(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    pytest.importorskip("fpdf", reason="fpdf2 not installed (pip install fpdf2)")
    register_owner(client, auth)  # a notice with no one to go to is not printed
    vid = confirmed_violation(client, world, auth)
    assert notice_reads(session) == []

    r = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a"))
    assert r.status_code == 200 and r.json()["lookup_code"], r.text
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text
    r = client.get("/api/v1/notices/due", headers=auth("sup"))
    assert r.status_code == 200, r.text

    assert notice_reads(session) == [
        ("notice.view", "user:off-a", str(vid)),
        ("notice.pdf", "user:sup", str(vid)),
        ("notice.due_list", "user:sup", None),
    ]


def test_asking_to_create_a_notice_that_exists_is_an_audited_read(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    """The answer carries the lookup code of the existing notice: a read like any other."""
    vid = confirmed_violation(client, world, auth)
    r = client.post("/api/v1/notices", json={"violation_id": vid}, headers=auth("sup"))
    assert r.status_code == 200 and r.json()["created"] is False and r.json()["notice"]["lookup_code"], r.text
    assert notice_reads(session) == [("notice.view", "user:sup", str(vid))]


def test_a_notice_waits_while_its_violation_is_back_under_review(
    client: TestClient, world: World, auth: Auth
) -> None:
    """Reopened, the fine is withdrawn: its paper notice must not be posted or escalated until the
    violation is confirmed again."""
    vid = confirmed_violation(client, world, auth)
    r = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": "biển số sai"}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    notice_id = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["id"]
    waits = f"notice {notice_id}: its violation is back under review; the notice waits for the new decision"
    r = client.post(f"/api/v1/violations/{vid}/notice/posted", json={}, headers=auth("off-a"))
    assert (r.status_code, r.json()["detail"]) == (409, waits)
    r = client.post(
        f"/api/v1/violations/{vid}/notice/transition", json={"to": "escalated_20d"}, headers=auth("sup")
    )
    assert (r.status_code, r.json()["detail"]) == (409, waits)
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    # Confirmed again: only the notice's own state decides (no owner is registered here).
    r = client.post(f"/api/v1/violations/{vid}/notice/posted", json={}, headers=auth("off-a"))
    assert (r.status_code, r.json()["detail"]) == (
        409,
        f"notice {notice_id}: awaiting_owner → posted is not allowed",
    )


def test_refused_notice_reads_are_not_audited(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    vid = confirmed_violation(client, world, auth)
    assert client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-b")).status_code == 404
    assert client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("off-a")).status_code == 403
    assert notice_reads(session) == []


class WriterCheckingStore(LocalStore):
    """A local store that, on every read, checks that another connection can start writing to the
    SQLite database at once (the read happens while the notice PDF is being made)."""

    def __init__(self, root: Path, database: Path) -> None:
        super().__init__(root)
        self.database = database
        self.reads_while_locked = 0
        self.reads = 0

    def get(self, uri: str) -> bytes:
        self.reads += 1
        conn = sqlite3.connect(self.database, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            self.reads_while_locked += 1
        finally:
            conn.close()
        return super().get(uri)


def test_the_notice_pdf_is_made_without_holding_the_write_lock(
    db: Db, world: World, auth: Auth, make_settings: Callable[..., Settings]
) -> None:
    """The PDF read the evidence and drew the pages inside the request's transaction: on SQLite that
    held the write lock, and every ingest and decision waited for the rendering."""
    pytest.importorskip("fpdf", reason="fpdf2 not installed (pip install fpdf2)")
    if db.kind != "sqlite":
        pytest.skip("only SQLite locks the whole database for a writing transaction")
    settings = make_settings()
    store = WriterCheckingStore(settings.evidence_dir, Path(db.url.removeprefix("sqlite:///")))
    with TestClient(create_app(settings, store=store)) as client:
        register_owner(client, auth)
        vid = confirmed_violation(client, world, auth)
        store.reads = store.reads_while_locked = 0
        r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
    assert r.status_code == 200, r.text
    assert store.reads > 0
    assert store.reads_while_locked == 0
