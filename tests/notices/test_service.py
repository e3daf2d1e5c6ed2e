"""The notice side of a review decision, through the API on both databases: a confirmation makes the
notice and queues one SMS (an owner without a phone: none, visibly), a reopening cancels an unsent
alert and a new confirmation makes it due again (never two), a rejection closes the notice; staff mark
the paper notice posted; the penalty webhook's payload carries the notice; lookup codes are derived."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from api.app import create_app
from api.models import AuditEntry, Owner, PenaltyDelivery, SmsMessage, Vehicle
from api.notices import service, sms
from api.notices.registry import import_csv
from api.notices.settings import NoticeSettings
from api.notices.workflow import derived_lookup_code, lookup_code_key
from api.settings import Settings
from api.web import lookup as lookup_service
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package
from tests.notices.conftest import REGISTRY_CSV

Auth = Callable[[str], dict[str, str]]
LOOKUP_URL = "https://tracuu.csgt.hanoi.gov.vn/tra-cuu"


@pytest.fixture
def sms_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Apps with SMS alerts on (no outbox thread: the tests send with `deliver_pending` themselves)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        notice = NoticeSettings(
            sms_lookup_url=LOOKUP_URL, sms_interval_s=0, sms_quiet_start="00:00", sms_quiet_end="00:00"
        )
        c = TestClient(create_app(make_settings(**overrides), notice=notice))
        c.__enter__()
        clients.append(c)
        return c

    try:
        yield make
    finally:
        for c in clients:
            c.__exit__(None, None, None)


def ingest(client: TestClient, world: World, plate: str | None, seed: int = 1) -> int:
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", plate=plate, seed=seed)
    r = post_package(client, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def decide(client: TestClient, vid: int, auth: Auth, decision: str = "confirm", who: str = "off-a") -> None:
    body: dict[str, Any] = {"decision": decision}
    if decision == "reject":
        body["reason"] = "not_a_violation"
    r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth(who))
    assert r.status_code == 200, r.text


def reopen(client: TestClient, vid: int, auth: Auth) -> None:
    r = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": "xem lại"}, headers=auth("sup"))
    assert r.status_code == 200, r.text


def outbox(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as s:
        return [
            (m.idempotency_key, m.phone, m.status)
            for m in s.scalars(select(SmsMessage).order_by(SmsMessage.id))
        ]


def test_derived_lookup_codes_are_stable_distinct_and_keyed() -> None:
    key = lookup_code_key(b"a" * 40)
    codes = [derived_lookup_code(key, vid) for vid in range(1, 2001)]
    assert codes[0] == derived_lookup_code(lookup_code_key(b"a" * 40), 1)  # the same key: the same code
    assert len(set(codes)) == len(codes)
    assert derived_lookup_code(lookup_code_key(b"b" * 40), 1) != codes[0]
    assert all(len(c) == 11 and c[5] == "-" and not set(c) & set("01ILO") for c in codes)


def test_confirm_queues_one_alert_reopen_cancels_it_reconfirm_rearms_it(
    sms_client: Callable[..., TestClient],
    world: World,
    auth: Auth,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    client = sms_client()
    with sessions() as s:
        import_csv(s, REGISTRY_CSV, actor="user:admin")
        s.commit()
    vid = ingest(client, world, "30A12345")
    decide(client, vid, auth)
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()
    assert (notice["status"], notice["next_action"], notice["overdue"]) == ("created", "send_notice", False)
    assert [m["status"] for m in notice["sms"]] == ["pending"]
    key = f"notice-{notice['id']}-alert"
    assert outbox(sessions) == [(key, "+84912345678", "pending")]

    reopen(client, vid, auth)
    assert outbox(sessions) == [(key, "+84912345678", "cancelled")]
    decide(client, vid, auth)
    assert outbox(sessions) == [(key, "+84912345678", "pending")]  # the same row, due again

    provider = sms.FileProvider(tmp_path / "sms.jsonl")
    config = NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config()
    assert config is not None
    config = config.model_copy(update={"quiet_start": config.quiet_end})
    assert sms.deliver_pending(sessions, provider, config).sent == 1
    # Reopened after the SMS went out: nothing to cancel; confirmed again: nothing sent again.
    reopen(client, vid, auth)
    decide(client, vid, auth)
    assert sms.deliver_pending(sessions, provider, config).sent == 0
    (line,) = (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["key"] == key and notice["lookup_code"] in json.loads(line)["text"]
    again = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()
    assert (again["id"], again["status"], again["lookup_code"]) == (
        notice["id"],
        "sms_sent",
        notice["lookup_code"],
    )


def test_a_plate_corrected_after_a_reopening_gives_the_notice_to_the_right_owner(
    sms_client: Callable[..., TestClient],
    world: World,
    auth: Auth,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """Confirmed on a misread plate (an SMS went to that plate's owner), reopened, confirmed again with
    the plate corrected: the notice is now the real owner's, who gets the SMS; the first owner gets
    nothing more, and an unsent alert to them is cancelled."""
    client = sms_client()
    with sessions() as s:
        import_csv(s, REGISTRY_CSV, actor="user:admin")
        s.commit()
        first = s.scalars(select(Vehicle).where(Vehicle.plate_compact == "30A12345")).one().owner_id
        right = s.scalars(select(Vehicle).where(Vehicle.plate_compact == "29X123456")).one().owner_id
    vid = ingest(client, world, "30A12345")
    decide(client, vid, auth)
    provider = sms.FileProvider(tmp_path / "sms.jsonl")
    config = NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config()
    assert config is not None
    config = config.model_copy(update={"quiet_start": config.quiet_end})
    assert sms.deliver_pending(sessions, provider, config).sent == 1
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()
    assert notice["status"] == "sms_sent"

    reopen(client, vid, auth)
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "29-X1 234.56"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    key, x, y = f"notice-{notice['id']}-alert", "+84912345678", "+84987654321"
    assert outbox(sessions) == [(key, x, "sent"), (f"{key}-owner-{right}", y, "pending")]
    again = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()
    assert (again["id"], again["status"], again["next_action"]) == (notice["id"], "created", "send_notice")
    with sessions() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "notice.reassign"))
        detail = json.loads(entry.detail)
        assert detail["before"] == {"owner_id": first, "status": "sms_sent"} and detail["owner_id"] == right

    # Reopened before that SMS goes out (cancelled), confirmed on the misread plate again: the first owner
    # already had theirs and gets nothing more; corrected once more: the real owner's alert is due again.
    reopen(client, vid, auth)
    assert outbox(sessions) == [(key, x, "sent"), (f"{key}-owner-{right}", y, "cancelled")]
    for plate, status in (("30A-123.45", "cancelled"), ("29-X1 234.56", "pending")):
        body = {"decision": "confirm", "plate": plate}
        r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a"))
        assert r.status_code == 200, r.text
        assert outbox(sessions) == [(key, x, "sent"), (f"{key}-owner-{right}", y, status)]
        if status == "cancelled":
            reopen(client, vid, auth)
    assert sms.deliver_pending(sessions, provider, config).sent == 1
    lines = [json.loads(v) for v in (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [v["key"] for v in lines] == [key, f"{key}-owner-{right}"]
    assert "29-X1 234.56" in lines[1]["text"] and notice["lookup_code"] in lines[1]["text"]


def test_a_rejection_after_reopening_closes_the_notice_and_a_new_confirmation_revives_it(
    sms_client: Callable[..., TestClient], world: World, auth: Auth, sessions: sessionmaker[Session]
) -> None:
    client = sms_client()
    with sessions() as s:
        import_csv(s, REGISTRY_CSV, actor="user:admin")
        s.commit()
    vid = ingest(client, world, "30A12345")
    decide(client, vid, auth)
    reopen(client, vid, auth)
    decide(client, vid, auth, "reject")
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    assert notice["status"] == "closed" and notice["next_action"] is None
    assert [m["status"] for m in notice["sms"]] == ["cancelled"]
    assert client.get("/api/v1/notices/due", headers=auth("sup")).json() == []
    reopen(client, vid, auth)
    decide(client, vid, auth)
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    assert notice["status"] == "created" and [m["status"] for m in notice["sms"]] == ["pending"]
    with sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.object_type == "notice"))]
    assert actions == ["notice.create", "sms.cancel", "notice.closed", "notice.reopen", "sms.rearm"]


def test_an_owner_without_a_phone_gets_a_notice_without_sms_and_staff_mark_it_posted(
    sms_client: Callable[..., TestClient], world: World, auth: Auth, sessions: sessionmaker[Session]
) -> None:
    client = sms_client()
    with sessions() as s:  # a registry adapter may know owners without a phone (the CSV requires one)
        owner = Owner(full_name="Phạm Thị Dung", national_id=None, phone=None, address="Hà Nội")
        s.add(owner)
        s.flush()
        s.add(Vehicle(plate_compact="30A12345", vehicle_class="car", owner_id=owner.id))
        s.commit()
    vid = ingest(client, world, "30A12345")
    unread = ingest(client, world, None, seed=2)
    decide(client, vid, auth)
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()
    assert (notice["status"], notice["sms"], notice["next_action"]) == ("created", [], "send_notice")
    assert outbox(sessions) == []
    # A violation without a plate cannot be confirmed (the reviewer must give one): no notice either.
    r = client.post(
        f"/api/v1/violations/{unread}/decision", json={"decision": "confirm"}, headers=auth("off-a")
    )
    assert r.status_code == 422
    assert client.get(f"/api/v1/violations/{unread}/notice", headers=auth("off-a")).status_code == 404

    posted = f"/api/v1/violations/{vid}/notice/posted"
    assert client.post(posted, json={}, headers=auth("off-b")).status_code == 404  # another district
    r = client.post(posted, json={"note": "RR123456789VN"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "posted" and body["next_action"] == "escalate"
    assert body["escalate_due_at"] is not None and body["posted_at"] is not None
    assert client.post(posted, json={}, headers=auth("off-a")).status_code == 409  # posted already
    r = client.get("/api/v1/lookup", params={"plate": "30A-123.45", "code": notice["lookup_code"]})
    assert r.status_code == 200 and r.json()["notice_status"] == "posted"
    assert "Phạm" not in r.text


def test_the_penalty_webhook_payload_carries_the_notice(
    make_client: Callable[..., TestClient], world: World, auth: Auth, sessions: sessionmaker[Session]
) -> None:
    client = make_client(
        penalty_webhook_url="http://127.0.0.1:9/penalty",
        penalty_webhook_secret=secrets.token_urlsafe(40),
        penalty_webhook_interval_s=0,
    )
    vid = ingest(client, world, "30A12345")
    decide(client, vid, auth)
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    with sessions() as s:
        payload = json.loads(s.scalars(select(PenaltyDelivery.payload)).one())
    assert payload["notice"] == {
        "id": notice["id"],
        "status": "awaiting_owner",
        "lookup_code": notice["lookup_code"],
    }
    assert payload["violation"]["id"] == vid


def test_a_plate_corrected_to_another_vehicle_of_the_same_owner_rearms_the_alert_with_the_new_plate(
    sms_client: Callable[..., TestClient],
    world: World,
    auth: Auth,
    sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """Confirmed on a misread plate of the owner's other vehicle, reopened before the SMS went out,
    confirmed with the right plate: the one alert of the notice is due again and names the right plate."""
    client = sms_client()
    with sessions() as s:
        import_csv(
            s,
            "plate,owner_name,phone,national_id\n"
            "30A-123.45,Công ty A,0912345678,001090000001\n"
            "30A-123.46,Công ty A,0912345678,001090000001\n",
            actor="user:admin",
        )
        s.commit()
    vid = ingest(client, world, "30A12346")  # misread
    decide(client, vid, auth)
    reopen(client, vid, auth)
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "30A-123.45"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()
    key = f"notice-{notice['id']}-alert"
    assert outbox(sessions) == [(key, "+84912345678", "pending")]  # one alert, the same row
    with sessions() as s:
        body = s.scalars(select(SmsMessage.body)).one()
    assert "30A-123.45" in body and "30A-123.46" not in body and notice["lookup_code"] in body

    provider = sms.FileProvider(tmp_path / "sms.jsonl")
    config = NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config()
    assert config is not None
    config = config.model_copy(update={"quiet_start": config.quiet_end})
    assert sms.deliver_pending(sessions, provider, config).sent == 1
    (line,) = (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["key"] == key and "30A-123.45" in json.loads(line)["text"]


def test_owners_of_newer_waiting_notices_are_found_behind_a_page_of_unresolvable_ones(
    sms_client: Callable[..., TestClient],
    world: World,
    auth: Auth,
    sessions: sessionmaker[Session],
    make_settings: Callable[..., Settings],
) -> None:
    client = sms_client()
    vids = [ingest(client, world, p, seed=i + 1) for i, p in enumerate(["30A11111", "30A22222", "30A12345"])]
    for vid in vids:
        decide(client, vid, auth)
    statuses = [client.get(f"/api/v1/violations/{v}/notice", headers=auth("off-a")).json() for v in vids]
    assert [n["status"] for n in statuses] == ["awaiting_owner"] * 3
    with sessions() as s:
        report = import_csv(s, "plate,owner_name,phone\n30A-123.45,C,0912345678\n", actor="user:admin")
        s.commit()
    assert report.plates == ["30A12345"]
    config = NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config()
    wiring = service.wiring_for(make_settings(), config)
    # The two oldest waiting notices fill a page of 2 and have no owner: the third is still looked at.
    assert service.attach_waiting_owners(sessions, wiring, limit=2) == 1
    after = [client.get(f"/api/v1/violations/{v}/notice", headers=auth("off-a")).json() for v in vids]
    assert [n["status"] for n in after] == ["awaiting_owner", "awaiting_owner", "created"]
    assert [k for k, _, _ in outbox(sessions)] == [f"notice-{after[2]['id']}-alert"]


def test_waiting_notices_can_be_narrowed_to_the_imported_plates(
    sms_client: Callable[..., TestClient],
    world: World,
    auth: Auth,
    sessions: sessionmaker[Session],
    make_settings: Callable[..., Settings],
) -> None:
    client = sms_client()
    vids = [ingest(client, world, p, seed=i + 1) for i, p in enumerate(["30A11111", "30A12345"])]
    for vid in vids:
        decide(client, vid, auth)
    with sessions() as s:
        import_csv(
            s, "plate,owner_name,phone\n30A-111.11,B,0912345679\n30A-123.45,C,0912345678\n", actor="user:a"
        )
        s.commit()
    wiring = service.wiring_for(make_settings(), NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config())
    assert service.attach_waiting_owners(sessions, wiring, limit=1, plates=["30A12345", "29X123456"]) == 1
    after = [client.get(f"/api/v1/violations/{v}/notice", headers=auth("off-a")).json() for v in vids]
    assert [n["status"] for n in after] == ["awaiting_owner", "created"]  # 30A11111 not in the list
    assert service.attach_waiting_owners(sessions, wiring, limit=1, plates=[]) == 0
    assert service.catch_up(sessions, wiring).owners_found == 1


def test_the_plate_of_a_posted_paper_notice_still_finds_the_violation_after_a_correction(
    sms_client: Callable[..., TestClient], world: World, auth: Auth, sessions: sessionmaker[Session]
) -> None:
    """An owner without a phone gets the paper notice only: it names the misread plate (another of
    their vehicles) with the code. After the plate is corrected, that plate and code still open the
    violation, shown with the corrected plate; once corrected to someone else's vehicle, they answer
    that the notice was withdrawn (410) and show nothing of the violation."""
    client = sms_client()
    with sessions() as s:
        owner = Owner(full_name="Phạm Thị Dung", national_id=None, phone=None, address="Hà Nội")
        other = Owner(full_name="Lê Văn Em", national_id=None, phone=None, address="Hà Nội")
        s.add_all([owner, other])
        s.flush()
        for plate, whose in (("30A12345", owner), ("30A12346", owner), ("29X123456", other)):
            s.add(Vehicle(plate_compact=plate, vehicle_class="car", owner_id=whose.id))
        s.commit()
    vid = ingest(client, world, "30A12346")  # misread
    decide(client, vid, auth)
    code = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["lookup_code"]
    r = client.post(f"/api/v1/violations/{vid}/notice/posted", json={}, headers=auth("off-a"))
    assert r.status_code == 200, r.text

    def lookup(plate: str) -> Any:
        return client.get("/api/v1/lookup", params={"plate": plate, "code": code})

    reopen(client, vid, auth)
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "30A-123.45"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    r = lookup("30A-123.46")
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["plate"], page["corrected_from"], page["notice_status"]) == (
        "30A-123.45",
        "30A-123.46",
        "posted",
    )
    assert lookup("30A-123.45").json()["corrected_from"] is None
    assert lookup("30A-123.47").status_code == 404

    reopen(client, vid, auth)
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "29-X1 234.56"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    r = lookup("30A-123.46")
    assert r.status_code == 410 and r.json() == {"detail": lookup_service.WITHDRAWN}, r.text
    assert lookup("30A-123.45").status_code == 404  # the plate for a while, never given out
    assert lookup("29-X1 234.56").json()["corrected_from"] is None
    with sessions() as s:
        audited = [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("lookup.%")))]
    assert audited == ["lookup.view", "lookup.view", "lookup.withdrawn", "lookup.view"]
