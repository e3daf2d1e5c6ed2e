"""The paper notice is printed only while its fine stands: the violation confirmed and the notice with an
owner and not closed. A violation reopened for review or rejected (its fine withdrawn towards the
penalty system) gets a 409 with the reason, not a PDF with the fine and the lookup code."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import AuditEntry
from api.web import i18n
from tests.api.conftest import World
from tests.api.evidence import ingest, register_owner

pytest.importorskip("fpdf", reason="fpdf2 not installed (pip install fpdf2)")

Auth = Callable[[str], dict[str, str]]


def pdf(client: TestClient, auth: Auth, vid: int) -> tuple[int, str]:
    """The PDF route's answer: (status, "%PDF" or the refusal's reason)."""
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
    if r.status_code == 200:
        assert r.headers["content-type"] == "application/pdf"
        return 200, r.content[:4].decode()
    return r.status_code, str(r.json()["detail"])


def decide(client: TestClient, auth: Auth, vid: int, decision: str) -> None:
    body = {"decision": decision} | ({"reason": "not_a_violation"} if decision == "reject" else {})
    r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a"))
    assert r.status_code == 200, r.text


def reopen(client: TestClient, auth: Auth, vid: int) -> None:
    r = client.post(
        f"/api/v1/violations/{vid}/reopen", json={"note": "chủ xe khiếu nại"}, headers=auth("sup")
    )
    assert r.status_code == 200, r.text


def notice_status(client: TestClient, auth: Auth, vid: int) -> tuple[int, str]:
    n = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    return int(n["id"]), str(n["status"])


def printed(session: Session, vid: int) -> int:
    session.rollback()
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "notice.pdf", AuditEntry.object_id == str(vid))
    )
    return len(rows.all())


def test_the_notice_is_printed_only_while_its_violation_stays_confirmed(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    register_owner(client, auth)
    vid = ingest(client, world)
    decide(client, auth, vid, "confirm")
    nid, state = notice_status(client, auth, vid)
    assert state == "created"
    assert pdf(client, auth, vid) == (200, "%PDF")

    # Reopened (the penalty system is told the fine is withdrawn): no paper notice of it, with or without
    # the lookup code, and the refusal is not a read of the notice.
    reopen(client, auth, vid)
    waits = f"notice {nid}: its violation is back under review; the notice waits for the new decision"
    assert pdf(client, auth, vid) == (409, waits)
    code = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["lookup_code"]
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", params={"code": code}, headers=auth("sup"))
    assert (r.status_code, r.json()["detail"]) == (409, waits)
    assert printed(session, vid) == 1

    # Confirmed again: printable again.
    decide(client, auth, vid, "confirm")
    assert pdf(client, auth, vid) == (200, "%PDF")

    # Reopened and rejected: the notice is closed, and nothing is printed.
    reopen(client, auth, vid)
    decide(client, auth, vid, "reject")
    assert notice_status(client, auth, vid) == (nid, "closed")
    rejected = f"notice {nid}: its violation was rejected; there is no fine to print"
    assert pdf(client, auth, vid) == (409, rejected)
    assert printed(session, vid) == 2
    assert i18n.translate_error(rejected, "vi") == (
        f"Thông báo #{nid}: vi phạm đã bị loại bỏ; không có quyết định phạt để in"
    )
    assert i18n.translate_error(waits, "vi").startswith(f"Thông báo #{nid}: vi phạm đang được duyệt lại")


def test_a_notice_with_no_owner_yet_is_printed_once_the_registry_has_one(
    client: TestClient, world: World, auth: Auth
) -> None:
    """`awaiting_owner`: there is no one to post it to (it cannot be marked posted either)."""
    vid = ingest(client, world)
    decide(client, auth, vid, "confirm")
    nid, state = notice_status(client, auth, vid)
    assert state == "awaiting_owner"
    no_owner = f"notice {nid} waits for its owner; it is printed once it has one"
    assert pdf(client, auth, vid) == (409, no_owner)
    assert i18n.translate_error(no_owner, "vi") != no_owner
    register_owner(client, auth)  # the import gives the waiting notice its owner
    assert notice_status(client, auth, vid) == (nid, "created")
    assert pdf(client, auth, vid) == (200, "%PDF")


def test_a_closed_notice_is_not_printed(client: TestClient, world: World, auth: Auth) -> None:
    register_owner(client, auth)
    vid = ingest(client, world)
    decide(client, auth, vid, "confirm")
    nid, _ = notice_status(client, auth, vid)
    r = client.post(f"/api/v1/violations/{vid}/notice/transition", json={"to": "closed"}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    closed = f"notice {nid} is closed; it is not printed"
    assert pdf(client, auth, vid) == (409, closed)
    assert i18n.translate_error(closed, "vi") == f"Thông báo #{nid} đã đóng; không in thông báo này"
