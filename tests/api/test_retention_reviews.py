"""Retention and review history: the evidence of a violation that was ever confirmed is never deleted as
"unreviewed" while it is reviewed again (a supervisor reopened it after the owner's complaint); a
violation only ever rejected, then reopened, still expires with its occurrence."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import utcnow
from api.models import AuditEntry
from api.retention import run_retention
from api.settings import Settings
from tests.api.conftest import World, stored_blobs
from tests.api.evidence import ingest

Auth = Callable[[str], dict[str, str]]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _decide(client: TestClient, auth: Auth, vid: int, body: dict[str, str]) -> None:
    r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a"))
    assert r.status_code == 200, r.text


def _reopen(client: TestClient, auth: Auth, vid: int) -> None:
    r = client.post(
        f"/api/v1/violations/{vid}/reopen", json={"note": "chủ xe khiếu nại"}, headers=auth("sup")
    )
    assert r.status_code == 200 and r.json()["status"] == "new", r.text


def test_a_confirmed_violation_reopened_for_review_keeps_its_evidence(
    client: TestClient, world: World, auth: Auth, settings: Settings, session: Session
) -> None:
    occurred = _iso(utcnow() - timedelta(days=300))
    at = {"occurred_at": occurred, "created_at": occurred}
    disputed = ingest(client, world, seed=1, overrides=at)  # fined, then the owner complained
    second_look = ingest(client, world, seed=2, overrides=at)  # rejected, then looked at again
    _decide(client, auth, disputed, {"decision": "confirm"})
    _reopen(client, auth, disputed)
    _decide(client, auth, second_look, {"decision": "reject", "reason": "not_a_violation"})
    _reopen(client, auth, second_look)

    # 370 days after the violations: both are `new` again and older than the 365 unreviewed days.
    report = run_retention(settings, utcnow() + timedelta(days=70))
    assert (report.violations_purged, report.blobs_deleted) == (1, 4), report
    v = client.get(f"/api/v1/violations/{disputed}", headers=auth("sup")).json()
    assert v["status"] == "new" and v["evidence_purged_at"] is None
    assert not any(f["deleted"] for f in v["files"])
    assert len(stored_blobs(settings.evidence_dir)) == 4  # its own four; the other's are gone
    r = client.get(f"/api/v1/violations/{disputed}/files/still_at.jpg", headers=auth("sup"))
    assert r.status_code == 200
    # Never confirmed: too old to be fined, so it expired as before.
    gone = client.get(f"/api/v1/violations/{second_look}", headers=auth("sup")).json()
    assert gone["evidence_purged_at"] is not None

    # Years later, still under review: still kept; it can be confirmed again.
    assert run_retention(settings, utcnow() + timedelta(days=3650)).violations_purged == 0
    _decide(client, auth, disputed, {"decision": "confirm"})

    session.rollback()
    purges = session.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.purge")).all()
    assert [(a.object_id, json.loads(a.detail)["reason"]) for a in purges] == [
        (str(second_look), "unreviewed")
    ]


def test_a_reopened_confirmation_rejected_on_review_expires_as_rejected(
    client: TestClient, world: World, auth: Auth, settings: Settings
) -> None:
    occurred = _iso(utcnow() - timedelta(days=300))
    vid = ingest(client, world, overrides={"occurred_at": occurred, "created_at": occurred})
    _decide(client, auth, vid, {"decision": "confirm"})
    _reopen(client, auth, vid)
    _decide(client, auth, vid, {"decision": "reject", "reason": "not_a_violation"})
    # Rejected now: kept for the 180 rejected days from this decision, whatever its age.
    assert run_retention(settings, utcnow() + timedelta(days=179)).violations_purged == 0
    report = run_retention(settings, utcnow() + timedelta(days=181))
    assert (report.violations_purged, report.blobs_deleted) == (1, 4)
    assert stored_blobs(settings.evidence_dir) == []
