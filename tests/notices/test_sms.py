"""SMS alerts: text and segments, quiet hours, and the outbox against a real HTTP gateway on loopback
(accepts, fails with 500, times out, refuses with 400, sends delivery receipts) on both databases."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from api.db import make_engine, make_sessionmaker
from api.models import HeldReceipt, Notice, SmsMessage
from api.notices import sms
from api.notices.registry import DbRegistry, import_csv
from api.notices.settings import NoticeSettings
from api.notices.workflow import create_notice
from api.webhook import sign_body
from tests.api.conftest import Db
from tests.api.factories import add_violations, violation_row
from tests.notices.conftest import REGISTRY_CSV, Gateway

T = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)  # 08:30 in Hà Nội: not quiet hours
CONFIG = sms.SmsConfig(lookup_url="https://csgt.hanoi.gov.vn/tra-cuu", backoff_s=30, backoff_max_s=600)


@pytest.mark.parametrize(
    ("text", "encoding", "lengths"),
    [
        ("a" * 160, "gsm7", [160]),
        ("a" * 161, "gsm7", [153, 8]),
        ("€" * 80, "gsm7", [80]),  # 160 septets: one SMS
        ("€" * 81, "gsm7", [76, 5]),  # 2 septets each, never split from the escape: 152 + 10
        ("ư" * 70, "ucs2", [70]),
        ("ư" * 71, "ucs2", [67, 4]),
        ("a" * 66 + "😀" + "b" * 5, "ucs2", [66, 6]),  # the surrogate pair moves whole to part 2
        ("", "gsm7", [0]),
    ],
)
def test_segments(text: str, encoding: str, lengths: list[int]) -> None:
    assert sms.encoding_of(text) == encoding
    parts = sms.segments(text)
    assert [len(p) for p in parts] == lengths
    assert "".join(parts) == text


def test_alert_text_has_plate_time_type_url_and_code_in_one_gsm7_sms() -> None:
    text = sms.alert_text(CONFIG, plate="30A-123.45", occurred_at=T, rule="red_light", code="ABCDE-FGHJK")
    assert sms.encoding_of(text) == "gsm7" and len(sms.segments(text)) == 1 and len(text) <= 160
    for piece in (
        "30A-123.45",
        "08:30 02/11/2026",
        "vuot den do",
        "https://csgt.hanoi.gov.vn/tra-cuu",
        "ABCDE-FGHJK",
    ):
        assert piece in text


def test_alert_text_with_diacritics_is_ucs2_split_in_67_character_parts() -> None:
    config = CONFIG.model_copy(update={"accents": True, "max_segments": 3})
    text = sms.alert_text(config, plate="30A-123.45", occurred_at=T, rule="red_light", code="ABCDE-FGHJK")
    assert sms.encoding_of(sms.strip_accents(text)) == "gsm7"
    custom = config.model_copy(update={"template": "Xe {plate} vượt đèn đỏ lúc {time}: {url} mã {code}"})
    text = sms.alert_text(custom, plate="30A-123.45", occurred_at=T, rule="red_light", code="ABCDE-FGHJK")
    assert sms.encoding_of(text) == "ucs2"
    parts = sms.segments(text)
    assert len(text) > 70 and [len(p) for p in parts[:-1]] == [67] * (len(parts) - 1)
    with pytest.raises(KeyError):  # the owner's name is not a template field
        sms.alert_text(
            config.model_copy(update={"template": "{owner}"}), plate="x", occurred_at=T, rule="r", code="c"
        )
    with pytest.raises(sms.SmsTextError):
        sms.alert_text(
            config.model_copy(update={"max_segments": 1}), plate="x" * 200, occurred_at=T, rule="r", code="c"
        )


@pytest.mark.parametrize(
    ("utc", "quiet_until"),
    [
        (datetime(2026, 11, 2, 14, 59, tzinfo=UTC), None),  # 21:59 ICT
        (datetime(2026, 11, 2, 15, 0, tzinfo=UTC), datetime(2026, 11, 2, 23, 0, tzinfo=UTC)),  # 22:00 → 06:00
        (datetime(2026, 11, 2, 20, 0, tzinfo=UTC), datetime(2026, 11, 2, 23, 0, tzinfo=UTC)),  # 03:00
        (datetime(2026, 11, 2, 23, 0, tzinfo=UTC), None),  # 06:00 ICT
    ],
)
def test_quiet_hours_in_vietnam_time(utc: datetime, quiet_until: datetime | None) -> None:
    assert sms.in_quiet_hours(CONFIG, utc) == quiet_until


def _notices(db: Db, sessions: sessionmaker[Session], plates: list[str]) -> list[int]:
    with sessions() as s:
        import_csv(s, REGISTRY_CSV, actor="user:admin")
        s.commit()
    ids = add_violations(db.url, [violation_row(status="confirmed", plate=p, occurred_at=T) for p in plates])
    out = []
    with sessions() as s:
        for vid in ids:
            r = create_notice(
                s, vid, DbRegistry(s), actor="user:sup", on_created=sms.alert_enqueuer(s, CONFIG)
            )
            out.append(r.notice.id)
        s.commit()
    return out


def test_every_notice_gets_exactly_one_sms_through_failures_and_a_restart(
    db: Db, sessions: sessionmaker[Session], gateway: Gateway
) -> None:
    notice_ids = _notices(db, sessions, ["30A12345", "29X123456", "99Z99999"])  # the last has no owner
    provider = sms.HttpGatewayProvider(
        sms.GatewayConfig(url=gateway.url, auth_value="Bearer gw-token", timeout_s=0.5)
    )
    gateway.modes = ["500", "slow"]
    report = sms.deliver_pending(sessions, provider, CONFIG, T)
    assert (report.sent, report.retrying) == (0, 2)
    with sessions() as s:
        rows = s.scalars(select(SmsMessage).order_by(SmsMessage.id)).all()
        assert [(r.status, r.attempts, r.next_attempt_at) for r in rows] == [
            ("pending", 1, T + timedelta(seconds=30)),
            ("pending", 1, T + timedelta(seconds=30)),
        ]
        assert "HTTP 500" in (rows[0].last_error or "") and "no answer" in (rows[1].last_error or "")
    # Not due yet: nothing is sent.
    assert sms.deliver_pending(sessions, provider, CONFIG, T + timedelta(seconds=10)).sent == 0
    # A "restart": a new engine on the same database, a new provider; the outbox is all that is needed.
    engine = make_engine(db.url)
    try:
        restarted = make_sessionmaker(engine)
        provider2 = sms.HttpGatewayProvider(sms.GatewayConfig(url=gateway.url, auth_value="Bearer gw-token"))
        gateway.modes = ["500"]
        report = sms.deliver_pending(restarted, provider2, CONFIG, T + timedelta(seconds=31))
        assert (report.sent, report.retrying) == (1, 1)
        with restarted() as s:
            retry = s.scalars(select(SmsMessage).where(SmsMessage.status == "pending")).one()
            assert retry.next_attempt_at == T + timedelta(seconds=31 + 60)  # backoff doubled
        report = sms.deliver_pending(restarted, provider2, CONFIG, T + timedelta(seconds=100))
        assert report.sent == 1
        assert sms.deliver_pending(restarted, provider2, CONFIG, T + timedelta(days=1)).sent == 0
        with restarted() as s:
            notices = s.scalars(select(Notice).where(Notice.id.in_(notice_ids)).order_by(Notice.id)).all()
            assert [n.status for n in notices] == ["sms_sent", "sms_sent", "awaiting_owner"]
    finally:
        engine.dispose()
    keys = [str(m["reference"]) for m in gateway.received]
    assert sorted(keys) == sorted({f"notice-{n}-alert" for n in notice_ids[:2]})
    assert {m["to"] for m in gateway.received} == {"+84912345678", "+84987654321"}
    assert all("Nguyễn" not in str(m["text"]) and "Nguyen" not in str(m["text"]) for m in gateway.received)
    assert all(h.get("Authorization") == "Bearer gw-token" for h in gateway.headers)


def test_a_slow_round_does_not_let_a_second_worker_send_the_same_sms(
    db: Db, sessions: sessionmaker[Session]
) -> None:
    """Two server processes run the outbox. Worker A's first send takes 200 s (gateway timeouts);
    when it claims the second message, its lease must run from then, not from the round's start, or
    worker B, running meanwhile, finds the lease expired and sends that SMS too."""
    _notices(db, sessions, ["30A12345", "29X123456"])
    clock = [T]
    sent: list[str] = []

    class Worker:
        def __init__(self, name: str) -> None:
            self.name = name

        def send(self, phone: str, text: str, key: str) -> str:
            sent.append(key)
            if self.name == "A" and len(sent) == 1:
                clock[0] += timedelta(seconds=200)  # the first send is slow
            elif self.name == "A" and len(sent) == 2:
                sms.deliver_pending(sessions, Worker("B"), CONFIG, clock=lambda: clock[0])  # B meanwhile
            return f"gw-{len(sent)}"

    report = sms.deliver_pending(sessions, Worker("A"), CONFIG, clock=lambda: clock[0])
    assert report.sent == 2
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 2, sent  # each SMS once


def test_an_unexplained_gateway_error_is_retried_under_max_attempts_then_given_up(
    db: Db, sessions: sessionmaker[Session]
) -> None:
    """The gateway took the SMS but the connection died mid-answer (IncompleteRead, not an SmsSendError):
    it used to escape the round after the claim, leaving the row pending for ever, resent after every
    lease. It is now a retryable failure, counted against max_attempts."""
    import http.client

    _notices(db, sessions, ["30A12345"])
    calls: list[str] = []

    class Dropping:
        def send(self, phone: str, text: str, key: str) -> str:
            calls.append(key)
            raise http.client.IncompleteRead(b'{"id":')

    config = CONFIG.model_copy(update={"max_attempts": 2})
    for i in range(5):
        sms.deliver_pending(sessions, Dropping(), config, T + timedelta(seconds=i * 700))
    assert len(calls) == 2
    with sessions() as s:
        row = s.scalars(select(SmsMessage)).one()
        assert (row.status, row.attempts) == ("failed", 2) and "IncompleteRead" in (row.last_error or "")


def test_a_refused_message_fails_for_good_and_quiet_hours_and_rate_limit_defer(
    db: Db, sessions: sessionmaker[Session], gateway: Gateway
) -> None:
    _notices(db, sessions, ["30A12345"])
    provider = sms.HttpGatewayProvider(sms.GatewayConfig(url=gateway.url, auth_value="k"))
    night = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)  # 23:00 ICT
    assert sms.deliver_pending(sessions, provider, CONFIG, night).deferred == 1
    assert gateway.headers == []
    with sessions() as s:
        row = s.scalars(select(SmsMessage)).one()
        assert (row.attempts, row.next_attempt_at) == (0, datetime(2026, 11, 2, 23, 0, tzinfo=UTC))
        # A second message to the same number, beyond the limit of one a day.
        s.add(SmsMessage(notice_id=row.notice_id, idempotency_key="extra", phone=row.phone, body="x"))
        s.commit()
    one_a_day = CONFIG.model_copy(update={"rate_limit_count": 1})
    morning = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
    report = sms.deliver_pending(sessions, provider, one_a_day, morning)
    assert (report.sent, report.deferred) == (1, 1)
    gateway.modes = ["400"]
    later = morning + timedelta(days=1, seconds=1)
    assert sms.deliver_pending(sessions, provider, one_a_day, later).failed == 1
    with sessions() as s:
        assert [r.status for r in s.scalars(select(SmsMessage).order_by(SmsMessage.id))] == ["sent", "failed"]


def _signed(secret: bytes, body: bytes, ts: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {"X-Phatnguoi-Timestamp": str(stamp), "X-Phatnguoi-Signature": sign_body(secret, stamp, body)}


def test_delivery_receipts_need_a_valid_signature(
    db: Db,
    sessions: sessionmaker[Session],
    gateway: Gateway,
    client: TestClient,
    auth: Callable[[str], dict[str, str]],
) -> None:
    _notices(db, sessions, ["30A12345"])
    vid = 1  # the only violation of this fresh database
    provider = sms.HttpGatewayProvider(sms.GatewayConfig(url=gateway.url, auth_value="k"))
    assert sms.deliver_pending(sessions, provider, CONFIG, T).sent == 1
    secret = b"receipt-secret-for-tests-only-0123456789"
    client.app.state.notice_settings = NoticeSettings(sms_receipt_secret=secret.decode())  # type: ignore[attr-defined]
    body = json.dumps({"message_id": "gw-1", "status": "delivered"}).encode()
    forged = [
        {},
        _signed(b"wrong-secret", body),
        _signed(secret, body, ts=int(time.time()) - 3600),  # replayed an hour later
        _signed(secret, body.replace(b"delivered", b"failed")),  # signature of another body
        # header bytes that str.isdigit() or compare_digest trip over (a 500 before)
        {"X-Phatnguoi-Timestamp": b"\xb2", "X-Phatnguoi-Signature": b"sha256=00"},
        {"X-Phatnguoi-Timestamp": str(int(time.time())).encode(), "X-Phatnguoi-Signature": b"sha256=\xe9"},
    ]
    for headers in forged:
        r = client.post("/api/v1/sms/receipts", content=body, headers=headers)  # type: ignore[arg-type]
        assert r.status_code == 403, headers
    status = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["sms"][0]["status"]
    assert status == "sent"
    r = client.post("/api/v1/sms/receipts", content=body, headers=_signed(secret, body))
    assert r.status_code == 200 and r.json() == {"accepted": True, "held": False}
    sms_status = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["sms"][0]
    assert sms_status["status"] == "delivered" and sms_status["delivered_at"] is not None
    # A "failed" receipt after "delivered" (late, or replayed within the signature window) changes nothing.
    failed = body.replace(b"delivered", b"failed")
    assert client.post("/api/v1/sms/receipts", content=failed, headers=_signed(secret, failed)).json() == {
        "accepted": True,
        "held": False,
    }
    assert client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["sms"][0]["status"] == (
        "delivered"
    )
    unknown = json.dumps({"message_id": "gw-999", "status": "delivered"}).encode()
    assert client.post("/api/v1/sms/receipts", content=unknown, headers=_signed(secret, unknown)).json() == {
        "accepted": True,
        "held": True,  # kept for when a send with that id is recorded (see the next test)
    }


@pytest.mark.parametrize(
    ("receipts", "final"),
    [
        (["delivered"], "delivered"),
        (["failed"], "failed"),
        (["failed", "delivered"], "delivered"),  # an interim failure, then delivered
        (["delivered", "failed"], "delivered"),  # a delivered message stays delivered
    ],
)
def test_receipts_posted_before_the_send_is_recorded_are_applied_when_it_is_and_strays_are_dropped(
    db: Db,
    sessions: sessionmaker[Session],
    client: TestClient,
    receipts: list[str],
    final: str,
) -> None:
    """The gateway posts its receipts (through the real route, signed) while the outbox waits for the
    send's answer: no sent message has that id yet. They are held, applied in order once the send is
    recorded, and deleted; a receipt whose id never comes is dropped after a day."""
    _notices(db, sessions, ["30A12345"])
    secret = b"receipt-secret-for-tests-only-0123456789"
    client.app.state.notice_settings = NoticeSettings(sms_receipt_secret=secret.decode())  # type: ignore[attr-defined]
    answers: list[object] = []

    def post(message_id: str, status: str) -> None:
        body = json.dumps({"message_id": message_id, "status": status}).encode()
        r = client.post("/api/v1/sms/receipts", content=body, headers=_signed(secret, body))
        assert r.status_code == 200, r.text
        answers.append(r.json())

    class FastGateway:
        def send(self, phone: str, text: str, key: str) -> str:
            for status in receipts:
                post("gw-fast", status)
            return "gw-fast"

    assert sms.deliver_pending(sessions, FastGateway(), CONFIG, T).sent == 1
    assert answers == [{"accepted": True, "held": True}] * len(receipts)
    with sessions() as s:
        msg = s.scalars(select(SmsMessage)).one()
        assert (msg.status, msg.provider_message_id) == (final, "gw-fast")
        if final == "delivered":
            assert (
                msg.delivered_at is not None and msg.sent_at is not None and msg.delivered_at >= msg.sent_at
            )
        assert s.scalars(select(HeldReceipt)).all() == []

    post("gw-never", "delivered")
    assert sms.apply_held_receipts(sessions) == 0
    now = datetime.now(UTC)
    assert sms.purge_held_receipts(sessions, now + timedelta(hours=23)) == 0
    assert sms.purge_held_receipts(sessions, now + timedelta(hours=25)) == 1
    with sessions() as s:
        assert s.scalars(select(HeldReceipt)).all() == []


def test_a_receipt_racing_the_record_of_its_send_is_applied_by_whichever_side_looks_last(
    db: Db, sessions: sessionmaker[Session]
) -> None:
    """The receipt finds no sent message and is held; the outbox records the send and looks for held
    receipts before the hold is committed. The receipt's second look (after its commit) finds the
    message; and the outbox thread's round applies any held receipt whose send is recorded."""
    _notices(db, sessions, ["30A12345", "29X123456"])

    def record_send(row: int, message_id: str) -> None:
        with sessions() as s:
            msg = s.scalars(select(SmsMessage).order_by(SmsMessage.id)).all()[row]
            msg.status, msg.provider_message_id, msg.sent_at = "sent", message_id, T
            s.commit()

    opened: list[int] = []

    def racing() -> Session:
        opened.append(1)
        if len(opened) == 2:  # between the hold's commit and the second look: the send is recorded
            record_send(0, "gw-race")
        return sessions()

    racing_sessions = cast("sessionmaker[Session]", racing)
    assert sms.receive_receipt(racing_sessions, "gw-race", "delivered") == "applied"
    assert sms.receive_receipt(sessions, "gw-swept", "delivered") == "held"
    record_send(1, "gw-swept")  # by a process that stopped before looking for held receipts
    thread = sms.OutboxThread(sessions, sms.FileProvider(Path(os.devnull)), CONFIG, interval_s=60)
    thread.round()
    with sessions() as s:
        assert [m.status for m in s.scalars(select(SmsMessage).order_by(SmsMessage.id))] == ["delivered"] * 2
        assert s.scalars(select(HeldReceipt)).all() == []


def test_file_provider_writes_json_lines(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "sms.jsonl"  # type: ignore[operator]
    provider = sms.FileProvider(path)
    mid = provider.send("+84912345678", "Xin chao", "k1")
    (line,) = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line) == {"id": mid, "to": "+84912345678", "text": "Xin chao", "key": "k1"}


def test_file_provider_logs_neither_the_text_nor_the_number(
    tmp_path: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    provider = sms.FileProvider(tmp_path / "sms.jsonl")  # type: ignore[operator]
    text = "CSGT thong bao: xe 30A-123.45 vi pham. Tra cuu voi ma ABCDE-FGHJK"
    with caplog.at_level(logging.DEBUG, logger="api.notices.sms"):
        provider.send("+84912345678", text, "notice-1-alert")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "notice-1-alert" in logged and "+8491*****78" in logged and str(len(text)) in logged
    for secret in ("ABCDE-FGHJK", "30A-123.45", "+84912345678", "thong bao"):
        assert secret not in logged


def test_the_outbox_thread_delivers_in_the_background(
    db: Db, sessions: sessionmaker[Session], gateway: Gateway
) -> None:
    _notices(db, sessions, ["30A12345"])
    provider = sms.HttpGatewayProvider(sms.GatewayConfig(url=gateway.url, auth_value="k"))
    # Quiet hours never: the real clock decides here.
    config = CONFIG.model_copy(update={"quiet_start": CONFIG.quiet_end})
    thread = sms.OutboxThread(sessions, provider, config, interval_s=0.05)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not gateway.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        thread.stop()
    assert len(gateway.received) == 1
