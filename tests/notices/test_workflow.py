"""Notice workflow on both databases: one notice per confirmed violation, a lookup code shown once
and usable on the public lookup, owners missing or unreachable, audited transitions, 10/20-day clocks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from api.models import AuditEntry, Notice, SmsMessage
from api.notices import sms
from api.notices.catalogue import VIETNAM_TZ
from api.notices.registry import DbRegistry, OwnerRecord, import_csv
from api.notices.workflow import (
    LAST_DUE,
    TRANSITIONS,
    NoticeError,
    attach_owner,
    clocks,
    create_notice,
    create_pending_notices,
    due_actions,
    due_after,
    transition,
)
from api.web.lookup import find_violation, lookup_code_hash
from tests.api.conftest import Db
from tests.api.factories import add_violations, violation_row
from tests.notices.conftest import REGISTRY_CSV

T = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)  # 08:30 in Hà Nội
CONFIG = sms.SmsConfig(lookup_url="https://csgt.example.vn/lookup")


def _registry(sessions: sessionmaker[Session], csv: str = REGISTRY_CSV) -> None:
    with sessions() as s:
        import_csv(s, csv, actor="user:admin")
        s.commit()


def test_one_notice_per_violation_with_a_code_shown_once(db: Db, sessions: sessionmaker[Session]) -> None:
    _registry(sessions)
    (vid,) = add_violations(db.url, [violation_row(status="confirmed", plate="30A12345", occurred_at=T)])
    with sessions() as s:
        first = create_notice(
            s, vid, DbRegistry(s), actor="user:sup", on_created=sms.alert_enqueuer(s, CONFIG)
        )
        s.commit()
        assert first.created and first.code is not None and first.notice.status == "created"
        assert first.notice.lookup_code_hash == lookup_code_hash(first.code)
        again = create_notice(
            s, vid, DbRegistry(s), actor="user:sup", on_created=sms.alert_enqueuer(s, CONFIG)
        )
        s.commit()
        assert (again.created, again.code, again.notice.id) == (False, None, first.notice.id)
        assert s.scalar(select(func.count()).select_from(Notice)) == 1
        assert s.scalar(select(func.count()).select_from(SmsMessage)) == 1
        # The code works on the public lookup with the plate, in any spelling.
        found = find_violation(s, "30a-123.45", first.code.lower())
        assert found is not None and (found.violation.id, found.corrected_from, found.withdrawn) == (
            vid,
            None,
            False,
        )
        # Nothing in the audit log holds the code or the owner's name.
        details = " ".join(e.detail for e in s.scalars(select(AuditEntry)).all())
        assert first.code not in details and "Nguyễn Văn An" not in details


def test_unconfirmed_violations_get_no_notice(db: Db, sessions: sessionmaker[Session]) -> None:
    (vid,) = add_violations(db.url, [violation_row(status="new")])
    with sessions() as s, pytest.raises(NoticeError, match="not confirmed"):
        create_notice(s, vid, DbRegistry(s), actor="user:sup")


def test_a_plate_without_owner_waits_visibly_until_the_registry_has_one(
    db: Db, sessions: sessionmaker[Session]
) -> None:
    (vid, no_plate) = add_violations(
        db.url,
        [
            violation_row(status="confirmed", plate="30A12345", occurred_at=T),
            violation_row(status="confirmed", plate=None, occurred_at=T),
        ],
    )
    with sessions() as s:
        waiting = create_notice(s, vid, DbRegistry(s), actor="system:notices").notice
        unread = create_notice(s, no_plate, DbRegistry(s), actor="system:notices").notice
        s.commit()
        assert (waiting.status, unread.status) == ("awaiting_owner", "awaiting_owner")
        due = due_actions(s, now=T + timedelta(days=11))
        assert {(d.notice_id, d.action, d.overdue) for d in due} == {
            (waiting.id, "find_owner", True),
            (unread.id, "find_owner", True),
        }
        assert attach_owner(s, waiting, DbRegistry(s), actor="user:sup") is None
        assert waiting.status == "awaiting_owner"
    _registry(sessions)
    with sessions() as s:
        notice = s.get(Notice, waiting.id)
        assert notice is not None
        owner = attach_owner(s, notice, DbRegistry(s), actor="user:sup")
        s.commit()
        assert owner is not None and notice.status == "created" and notice.owner_id == owner.owner_id


def test_an_owner_without_phone_gets_a_notice_but_no_sms(db: Db, sessions: sessionmaker[Session]) -> None:
    _registry(sessions)
    with sessions() as s:  # the registry of another source may lack a phone
        from api.models import Owner, Vehicle

        owner = Owner(full_name="Không Điện Thoại")
        s.add(owner)
        s.flush()
        s.add(Vehicle(plate_compact="51G12345", owner_id=owner.id))
        s.commit()
    (vid,) = add_violations(db.url, [violation_row(status="confirmed", plate="51G12345", occurred_at=T)])
    with sessions() as s:
        result = create_notice(
            s, vid, DbRegistry(s), actor="user:sup", on_created=sms.alert_enqueuer(s, CONFIG)
        )
        s.commit()
        assert result.notice.status == "created"
        assert s.scalar(select(func.count()).select_from(SmsMessage)) == 0
        assert [d.action for d in due_actions(s, now=T)] == ["send_notice"]


@pytest.mark.parametrize(("start", "to"), [(a, b) for a, bs in TRANSITIONS.items() for b in bs])
def test_allowed_transitions_are_stamped_and_audited(
    db: Db, sessions: sessionmaker[Session], start: str, to: str
) -> None:
    (vid,) = add_violations(db.url, [violation_row(status="confirmed", occurred_at=T)])
    with sessions() as s:
        notice = create_notice(s, vid, DbRegistry(s), actor="user:sup").notice
        notice.status = start
        transition(s, notice, to, actor="user:sup", note="n")
        s.commit()
        assert notice.status == to
        last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        assert (last.action, last.object_id) == (f"notice.{to}", str(notice.id))


@pytest.mark.parametrize(
    ("start", "to"), [("closed", "posted"), ("responded", "sms_sent"), ("posted", "created")]
)
def test_forbidden_transitions_are_refused(
    db: Db, sessions: sessionmaker[Session], start: str, to: str
) -> None:
    (vid,) = add_violations(db.url, [violation_row(status="confirmed", occurred_at=T)])
    with sessions() as s:
        notice = create_notice(s, vid, DbRegistry(s), actor="user:sup").notice
        notice.status = start
        with pytest.raises(NoticeError, match="not allowed"):
            transition(s, notice, to, actor="user:sup")


def test_clocks_ten_and_twenty_days(db: Db, sessions: sessionmaker[Session]) -> None:
    _registry(sessions)
    (vid,) = add_violations(db.url, [violation_row(status="confirmed", plate="30A12345", occurred_at=T)])
    with sessions() as s:
        notice = create_notice(s, vid, DbRegistry(s), actor="user:sup").notice
        s.commit()
        # Violation on 02/11 (08:30 Hà Nội): due at the end of 12/11, i.e. 00:00 on 13/11 Hà Nội time.
        send_due = datetime(2026, 11, 13, tzinfo=VIETNAM_TZ)
        (d,) = due_actions(s, now=send_due - timedelta(microseconds=1))
        assert (d.action, d.due_at, d.overdue) == ("send_notice", send_due, False)
        assert due_actions(s, now=send_due)[0].overdue
        transition(s, notice, "posted", actor="user:sup", now=T + timedelta(days=3))
        s.commit()
        # Posted on 05/11: the registration bodies are warned after the end of 25/11.
        escalate_due = datetime(2026, 11, 26, tzinfo=VIETNAM_TZ)
        (d,) = due_actions(s, now=escalate_due - timedelta(microseconds=1))
        assert (d.action, d.due_at, d.overdue) == ("escalate", escalate_due, False)
        (d,) = due_actions(s, now=escalate_due)
        assert d.overdue
        transition(s, notice, "escalated_20d", actor="user:sup")
        s.commit()
        assert due_actions(s, now=T + timedelta(days=30)) == []


@pytest.mark.parametrize(
    ("event", "days", "due"),
    [
        # 08:00 and 23:30 on 1 June (Hà Nội) are the same day: both are due at the end of 11 June.
        (datetime(2025, 6, 1, 8, 0, tzinfo=VIETNAM_TZ), 10, datetime(2025, 6, 12, tzinfo=VIETNAM_TZ)),
        (datetime(2025, 6, 1, 23, 30, tzinfo=VIETNAM_TZ), 10, datetime(2025, 6, 12, tzinfo=VIETNAM_TZ)),
        # 23:30 UTC on 31 May is 06:30 on 1 June in Hà Nội: the Vietnam calendar decides.
        (datetime(2025, 5, 31, 23, 30, tzinfo=UTC), 10, datetime(2025, 6, 12, tzinfo=VIETNAM_TZ)),
        (datetime(2025, 6, 1, 0, 0, tzinfo=VIETNAM_TZ), 20, datetime(2025, 6, 22, tzinfo=VIETNAM_TZ)),
        (datetime(9999, 12, 30, tzinfo=UTC), 10, LAST_DUE),  # past year 9999: clamped, no OverflowError
    ],
)
def test_deadlines_end_at_midnight_vietnam_time(event: datetime, days: int, due: datetime) -> None:
    assert due_after(event, days) == due
    assert due_after(event, days).tzinfo is not None


def test_clocks_do_not_depend_on_the_time_of_day() -> None:
    morning, night = (datetime(2025, 6, 1, h, m, tzinfo=VIETNAM_TZ) for h, m in ((8, 0), (23, 30)))
    now = datetime(2025, 6, 11, 23, 59, tzinfo=VIETNAM_TZ)  # the last minute of the 10th day
    for occurred in (morning, night):
        c = clocks(Notice(status="created", posted_at=None, created_at=occurred), occurred, now=now)
        assert (c.notice_due_at, c.overdue) == (datetime(2025, 6, 12, tzinfo=VIETNAM_TZ), False)
    with pytest.raises(ValueError, match="timezone"):
        due_after(datetime(2025, 6, 1), 10)


def test_notice_routes(
    db: Db, client: TestClient, auth: Callable[[str], dict[str, str]], sessions: sessionmaker[Session]
) -> None:
    _registry(sessions)
    (vid, new) = add_violations(
        db.url,
        [violation_row(status="confirmed", plate="30A12345", occurred_at=T), violation_row(status="new")],
    )
    assert (
        client.post("/api/v1/notices", json={"violation_id": vid}, headers=auth("off-a")).status_code == 403
    )
    r = client.post("/api/v1/notices", json={"violation_id": vid}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] and body["lookup_code"]
    assert body["notice"]["fine_min_vnd"] == 18_000_000
    assert body["notice"]["legal_reference"] == "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"
    again = client.post("/api/v1/notices", json={"violation_id": vid}, headers=auth("sup")).json()
    assert (again["created"], again["lookup_code"]) == (False, None)
    # Staff see the code again (derived from the server's secret, never stored): the one first given.
    assert again["notice"]["lookup_code"] == body["lookup_code"] == body["notice"]["lookup_code"]
    assert client.post("/api/v1/notices", json={"violation_id": new}, headers=auth("sup")).status_code == 409
    nid = body["notice"]["id"]
    move = f"/api/v1/violations/{vid}/notice/transition"
    r = client.post(move, json={"to": "posted"}, headers=auth("sup"))
    assert r.status_code == 200 and r.json()["status"] == "posted"
    r = client.post(
        f"/api/v1/violations/{vid}/notice/transition", json={"to": "created"}, headers=auth("sup")
    )
    assert r.status_code == 409
    due = client.get("/api/v1/notices/due", headers=auth("sup")).json()
    assert [(d["notice_id"], d["action"]) for d in due] == [(nid, "escalate")]
    assert client.get(f"/api/v1/violations/{new}/notice", headers=auth("sup")).status_code == 404
    assert client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["posted_at"] is not None


def test_the_pending_notices_job_creates_each_notice_once(db: Db, sessions: sessionmaker[Session]) -> None:
    _registry(sessions)
    add_violations(
        db.url,
        [
            violation_row(status="confirmed", plate="30A12345", occurred_at=T),
            violation_row(status="confirmed", plate="29X123456", occurred_at=T),
            violation_row(status="rejected", plate="30A12345", occurred_at=T),
            violation_row(status="new", plate="30A12345", occurred_at=T),
        ],
    )

    def enqueuer(s: Session) -> Callable[[Notice, str, OwnerRecord], None]:
        return sms.alert_enqueuer(s, CONFIG)

    assert create_pending_notices(sessions, DbRegistry, on_created_for=enqueuer) == 2
    assert create_pending_notices(sessions, DbRegistry, on_created_for=enqueuer) == 0
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 2
        assert s.scalar(select(func.count()).select_from(SmsMessage)) == 2
