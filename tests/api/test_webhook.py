"""The signed penalty webhook against a real HTTP receiver on 127.0.0.1 that checks the signature.

The receiver is what a penalty system would run: it verifies the HMAC and the timestamp on its own
(with `hmac`, not with our code), remembers accepted idempotency keys, and can be told to fail the
next N requests, to take the next N but answer as if it failed (a lost answer), or to be down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import utcnow
from api.models import AuditEntry, PenaltyDelivery
from api.settings import Settings
from api.webhook import backoff_s, deliver_pending, sign_body, verify_signature
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package
from tests.api.pg import _free_port

SECRET = secrets.token_urlsafe(40)
Auth = Callable[[str], dict[str, str]]


@dataclass
class Receiver:
    """A penalty system on 127.0.0.1: `requests` holds every request it got (with the keys it had
    answered when that one came in), `accepted` the bodies it kept (once per idempotency key). It
    takes `delay_s` to answer."""

    url: str
    fail_next: int = 0
    lose_next: int = 0
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = _free_port()
    rec = Receiver(f"http://127.0.0.1:{port}/penalty/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts = self.headers.get("X-Phatnguoi-Timestamp", "")
            sig = self.headers.get("X-Phatnguoi-Signature", "")
            expected = (
                "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            )
            fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
            valid = hmac.compare_digest(sig, expected) and fresh
            key = self.headers.get("Idempotency-Key", "")
            with rec.lock:
                rec.requests.append(
                    {
                        "path": self.path,
                        "valid": valid,
                        "key": key,
                        "body": body,
                        "answered": set(rec.answered),
                    }
                )
                failing = rec.fail_next > 0
                rec.fail_next -= failing
                if valid and not failing:
                    rec.accepted.setdefault(key, json.loads(body))
                lost = valid and not failing and rec.lose_next > 0
                rec.lose_next -= lost
            status = 401 if not valid else 503 if failing or lost else 200
            time.sleep(rec.delay_s)
            with rec.lock:
                rec.answered.add(key)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def hooked(make_client: Callable[..., TestClient], url: str, **overrides: Any) -> TestClient:
    return make_client(
        **{
            "penalty_webhook_url": url,
            "penalty_webhook_secret": SECRET,
            "penalty_webhook_interval_s": 0,
            **overrides,
        }
    )


@dataclass
class Hook:
    """A server whose penalty webhook points at the test's receiver, and its settings."""

    client: TestClient
    settings: Settings


@pytest.fixture
def hook(
    receiver: Receiver, make_client: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> Hook:
    settings = make_settings(penalty_webhook_url=receiver.url, penalty_webhook_secret=SECRET)
    return Hook(hooked(make_client, receiver.url), settings)


def confirm_one(client: TestClient, world: World, auth: Auth, **package: Any) -> int:
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", **package)
    vid = int(post_package(client, pkg, dev.key).json()["id"])
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    assert r.json()["penalty_delivery"] == "pending"
    return vid


def deliveries(session: Session) -> list[PenaltyDelivery]:
    session.rollback()
    return list(session.scalars(select(PenaltyDelivery).order_by(PenaltyDelivery.id)))


def reopen(client: TestClient, auth: Auth, vid: int, note: str = "biển số đọc sai") -> dict[str, Any]:
    r = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": note}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def decide(client: TestClient, auth: Auth, vid: int, **body: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("sup"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    """What the receiver got, in the order it got it (every request had a valid signature)."""
    assert all(r["valid"] for r in receiver.requests)
    return [json.loads(r["body"]) for r in receiver.requests]


def reopen_audits(session: Session, vid: int) -> list[Any]:
    """The `penalty_delivery` of each reopening of `vid`, in order."""
    session.rollback()
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "violation.reopen", AuditEntry.object_id == str(vid))
        .order_by(AuditEntry.seq)
    )
    return [json.loads(a.detail)["penalty_delivery"] for a in entries]


def expected_key(body: dict[str, Any]) -> str:
    """The idempotency key as the module docstring defines it, computed here on its own."""
    unkeyed = {k: v for k, v in body.items() if k != "idempotency_key"}
    canonical = json.dumps(unkeyed, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    kind = body["type"].removeprefix("violation.")
    return f"{kind}:{body['violation']['event_id']}:{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def test_a_confirmation_is_delivered_signed_and_only_once(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client, settings = hook.client, hook.settings
    vid = confirm_one(client, world, auth)

    report = deliver_pending(settings)
    assert (report.attempted, report.delivered) == (1, 1)
    assert len(receiver.requests) == 1 and receiver.requests[0]["valid"]
    assert receiver.requests[0]["path"] == "/penalty/hook"
    body = receiver.accepted[receiver.requests[0]["key"]]
    assert body["type"] == "violation.confirmed" and body["idempotency_key"] == receiver.requests[0]["key"]
    assert body["idempotency_key"] == expected_key(body)
    assert body["violation"]["id"] == vid and body["violation"]["plate"] == "30A12345"
    assert body["violation"]["confirmed_by"] == "off-a" and len(body["violation"]["evidence"]) == 4

    # Nothing is due any more: another round, even much later, sends nothing.
    assert deliver_pending(settings, utcnow() + timedelta(days=30)).attempted == 0
    assert len(receiver.requests) == 1
    rows = deliveries(session)
    assert [(d.violation_id, d.kind, d.status, d.attempts, d.last_status_code) for d in rows] == [
        (vid, "confirmed", "delivered", 1, 200)
    ]
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "penalty.delivered")).all()
    assert [(a.object_id, a.actor) for a in audited] == [(str(vid), "system:webhook")]
    assert json.loads(audited[0].detail)["kind"] == "confirmed"


def test_a_confirmation_reopened_before_it_was_sent_is_cancelled_and_nothing_is_withdrawn(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client, settings = hook.client, hook.settings
    vid = confirm_one(client, world, auth)
    assert reopen(client, auth, vid)["penalty_delivery"] == "cancelled"
    assert reopen_audits(session, vid) == ["cancelled"]
    assert deliver_pending(settings, utcnow() + timedelta(days=1)).attempted == 0
    assert receiver.requests == []

    # Rejected now: the penalty system never heard of it, and hears nothing.
    decide(client, auth, vid, decision="reject", reason="duplicate")
    assert deliver_pending(settings, utcnow() + timedelta(days=2)).attempted == 0
    assert receiver.requests == []
    assert [(d.kind, d.status, d.attempts) for d in deliveries(session)] == [("confirmed", "cancelled", 0)]


def withdrawn_after_delivery(
    client: TestClient, settings: Settings, receiver: Receiver, world: World, auth: Auth
) -> tuple[int, dict[str, Any]]:
    """A violation confirmed, delivered and reopened; returns its id and the confirmation's body."""
    vid = confirm_one(client, world, auth)
    assert deliver_pending(settings).delivered == 1
    [confirmed] = bodies(receiver)
    # The reopening queues the withdrawal: the latest message to the penalty system is pending.
    assert reopen(client, auth, vid, "nhầm xe")["penalty_delivery"] == "pending"
    return vid, confirmed


def test_a_delivered_confirmation_is_withdrawn_when_the_violation_is_reopened(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client, settings = hook.client, hook.settings
    vid, confirmed = withdrawn_after_delivery(client, settings, receiver, world, auth)
    assert reopen_audits(session, vid) == ["withdrawal_queued"]

    assert deliver_pending(settings).delivered == 1
    assert len(receiver.requests) == 2 and receiver.requests[1]["valid"]
    withdrawn = bodies(receiver)[1]
    key = receiver.requests[1]["key"]
    assert withdrawn["type"] == "violation.withdrawn" and withdrawn["idempotency_key"] == key
    assert key == expected_key(withdrawn) and key != confirmed["idempotency_key"]
    assert key.startswith(f"withdrawn:{confirmed['violation']['event_id']}:")
    assert withdrawn["violation"] == {
        k: confirmed["violation"][k]
        for k in ("id", "event_id", "rule", "occurred_at", "camera_id", "plate", "confirmed_at")
    }
    assert withdrawn["violation"]["plate"] == "30A12345"
    assert (withdrawn["withdrawn_by"], withdrawn["note"]) == ("sup", "nhầm xe")
    assert withdrawn["withdrawn_at"] > confirmed["violation"]["confirmed_at"]
    assert receiver.accepted[key] == withdrawn

    # Sent once: nothing more is due, even much later.
    assert deliver_pending(settings, utcnow() + timedelta(days=30)).attempted == 0
    rows = deliveries(session)
    assert [(d.kind, d.status, d.attempts) for d in rows] == [
        ("confirmed", "delivered", 1),
        ("withdrawn", "delivered", 1),
    ]
    assert rows[1].idempotency_key == key
    audited = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "penalty.delivered").order_by(AuditEntry.seq)
    ).all()
    assert [(a.object_id, json.loads(a.detail)["kind"]) for a in audited] == [
        (str(vid), "confirmed"),
        (str(vid), "withdrawn"),
    ]


def test_a_violation_confirmed_again_after_its_withdrawal_sends_the_corrected_plate(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client, settings = hook.client, hook.settings
    vid, confirmed = withdrawn_after_delivery(client, settings, receiver, world, auth)
    assert deliver_pending(settings).delivered == 1  # the withdrawal

    again = decide(client, auth, vid, decision="confirm", plate="30A-123.46")
    assert again["penalty_delivery"] == "pending"
    assert deliver_pending(settings).delivered == 1
    first, withdrawn, reconfirmed = bodies(receiver)
    assert (first, withdrawn["type"]) == (confirmed, "violation.withdrawn")
    assert reconfirmed["type"] == "violation.confirmed"
    assert reconfirmed["violation"]["plate"] == "30A12346" and reconfirmed["violation"]["plate_corrected"]
    assert reconfirmed["violation"]["event_id"] == confirmed["violation"]["event_id"]
    # The receiver takes the latest message of an event id by its time: the new confirmation.
    assert reconfirmed["violation"]["confirmed_at"] > withdrawn["withdrawn_at"]
    keys = [r["key"] for r in receiver.requests]
    assert len(set(keys)) == 3 and keys[2] == expected_key(reconfirmed)
    assert len(receiver.accepted) == 3  # none dropped as a repeat

    # Reopened once more: this time the corrected confirmation is withdrawn, by its own plate.
    reopen(client, auth, vid, "lần nữa")
    assert deliver_pending(settings).delivered == 1
    last = bodies(receiver)[3]
    assert last["type"] == "violation.withdrawn" and last["violation"]["plate"] == "30A12346"
    assert last["violation"]["confirmed_at"] == reconfirmed["violation"]["confirmed_at"]
    assert reopen_audits(session, vid) == ["withdrawal_queued", "withdrawal_queued"]
    assert [(d.kind, d.status) for d in deliveries(session)] == [
        ("confirmed", "delivered"),
        ("withdrawn", "delivered"),
        ("confirmed", "delivered"),
        ("withdrawn", "delivered"),
    ]


def test_a_withdrawal_goes_before_the_confirmation_made_anew(
    receiver: Receiver,
    hook: Hook,
    make_settings: Callable[..., Settings],
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    """With the penalty system down, the violation is reopened and confirmed again with a corrected
    plate: the confirmation made anew waits for the withdrawal, and the receiver, back up, gets them in
    that order."""
    client, settings = hook.client, hook.settings
    down = make_settings(
        penalty_webhook_url=f"http://127.0.0.1:{_free_port()}/hook", penalty_webhook_secret=SECRET
    )
    vid, _ = withdrawn_after_delivery(client, settings, receiver, world, auth)
    t = utcnow()
    assert deliver_pending(down, t).retrying == 1  # the withdrawal, not taken
    decide(client, auth, vid, decision="confirm", plate="30A-123.46")
    # Both due much later; only the withdrawal is tried while it is pending.
    report = deliver_pending(down, t + timedelta(hours=1))
    assert (report.attempted, report.retrying) == (1, 1)
    rows = deliveries(session)
    assert [(d.kind, d.status, d.attempts) for d in rows] == [
        ("confirmed", "delivered", 1),
        ("withdrawn", "pending", 2),
        ("confirmed", "pending", 0),
    ]

    report = deliver_pending(settings, t + timedelta(hours=2))
    assert (report.attempted, report.delivered) == (2, 2)  # in one call, one after the other
    assert [(b["type"], b["violation"]["plate"]) for b in bodies(receiver)] == [
        ("violation.confirmed", "30A12345"),
        ("violation.withdrawn", "30A12345"),
        ("violation.confirmed", "30A12346"),
    ]
    assert [d.status for d in deliveries(session)] == ["delivered"] * 3


def test_a_violation_rejected_after_its_withdrawal_sends_nothing_more(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client, settings = hook.client, hook.settings
    vid, _ = withdrawn_after_delivery(client, settings, receiver, world, auth)
    rejected = decide(client, auth, vid, decision="reject", reason="duplicate")
    assert rejected["status"] == "rejected" and rejected["penalty_delivery"] == "pending"
    assert deliver_pending(settings).delivered == 1
    # Reopened and rejected again: the withdrawal already went, nothing is queued.
    assert reopen(client, auth, vid)["penalty_delivery"] == "delivered"
    decide(client, auth, vid, decision="reject", reason="duplicate")
    assert deliver_pending(settings, utcnow() + timedelta(days=30)).attempted == 0
    assert [b["type"] for b in bodies(receiver)] == ["violation.confirmed", "violation.withdrawn"]
    assert reopen_audits(session, vid) == ["withdrawal_queued", "already_withdrawn"]
    assert [(d.kind, d.status) for d in deliveries(session)] == [
        ("confirmed", "delivered"),
        ("withdrawn", "delivered"),
    ]


def test_a_confirmation_whose_answer_was_lost_is_withdrawn_and_made_anew_under_its_own_key(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    """The penalty system took the first confirmation but its answer was lost; the violation was then
    reopened and confirmed with a corrected plate. The server cannot know that the first body arrived,
    so it withdraws it; the new body goes under a key of its own (under the first one's, the receiver
    would drop it as a repeat and keep the wrong plate)."""
    client, settings = hook.client, hook.settings
    vid = confirm_one(client, world, auth)
    receiver.lose_next = 1
    t = utcnow()
    assert deliver_pending(settings, t).retrying == 1
    [first_key] = receiver.accepted
    assert receiver.accepted[first_key]["violation"]["plate"] == "30A12345"

    assert reopen(client, auth, vid, "plate misread")["penalty_delivery"] == "pending"
    assert reopen_audits(session, vid) == ["withdrawal_queued"]
    assert decide(client, auth, vid, decision="confirm", plate="30A-123.46")["penalty_delivery"] == "pending"
    first, withdrawal, row = deliveries(session)
    assert (first.kind, first.status, first.attempts) == ("confirmed", "cancelled", 1)
    assert (withdrawal.kind, withdrawal.status) == ("withdrawn", "pending")
    assert (row.kind, row.attempts) == ("confirmed", 0) and row.idempotency_key != first_key
    assert json.loads(row.payload)["idempotency_key"] == row.idempotency_key

    receiver.fail_next = 1  # the withdrawal fails once; the new confirmation waits, then both go
    later = t + timedelta(hours=1)
    assert deliver_pending(settings, later).retrying == 1
    assert deliver_pending(settings, later + timedelta(hours=1)).delivered == 2
    keys = [r["key"] for r in receiver.requests[1:]]
    assert keys == [withdrawal.idempotency_key] * 2 + [row.idempotency_key]
    assert receiver.requests[1]["body"] == receiver.requests[2]["body"]  # the same bytes on the retry
    withdrawn = receiver.accepted[withdrawal.idempotency_key]
    assert withdrawn["violation"]["plate"] == "30A12345" and withdrawn["note"] == "plate misread"
    kept = receiver.accepted[row.idempotency_key]
    assert kept["violation"]["plate"] == "30A12346" and kept["violation"]["plate_corrected"] is True
    assert kept["violation"]["event_id"] == receiver.accepted[first_key]["violation"]["event_id"]
    assert kept["violation"]["confirmed_at"] > receiver.accepted[first_key]["violation"]["confirmed_at"]

    # The violation's view lists the three messages, oldest first (the web app's viewer shows them).
    shown = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()
    messages = shown["penalty_messages"]
    assert [(m["kind"], m["status"], m["attempts"]) for m in messages] == [
        ("confirmed", "cancelled", 1),
        ("withdrawn", "delivered", 2),
        ("confirmed", "delivered", 1),
    ]
    assert messages[0]["last_error"].startswith("HTTP 503") and messages[1]["last_error"] is None
    assert messages[1]["delivered_at"] is not None and shown["penalty_delivery"] == "delivered"
    assert not {"payload", "idempotency_key"} & messages[0].keys()
    assert [(d.status, d.attempts) for d in deliveries(session)] == [
        ("cancelled", 1),
        ("delivered", 2),
        ("delivered", 1),
    ]


def test_several_runners_send_each_message_once_and_in_order(
    receiver: Receiver,
    hook: Hook,
    world: World,
    auth: Auth,
) -> None:
    """Withdrawals and confirmations made anew of several violations, delivered by runners working at
    the same time to a slow receiver: each message is sent once, and no confirmation made anew before
    the receiver has answered its violation's withdrawal."""
    client, settings = hook.client, hook.settings
    vids = [confirm_one(client, world, auth, seed=seed) for seed in range(1, 5)]
    assert deliver_pending(settings).delivered == len(vids)
    for vid in vids:
        reopen(client, auth, vid)
        decide(client, auth, vid, decision="confirm", plate="30A-123.46")
    receiver.delay_s = 0.1
    start = threading.Barrier(3)
    reports = []

    def runner() -> None:
        start.wait()
        reports.append(deliver_pending(settings, limit=3))

    runners = [threading.Thread(target=runner) for _ in range(3)]
    for t in runners:
        t.start()
    for t in runners:
        t.join(30)
    while (more := deliver_pending(settings)).attempted:  # what the limits left over
        reports.append(more)

    assert sum(r.delivered for r in reports) == sum(r.attempted for r in reports) == 2 * len(vids)
    keys = [r["key"] for r in receiver.requests]
    assert len(keys) == len(set(keys)) == 3 * len(vids)
    for vid in vids:
        got = zip(receiver.requests, bodies(receiver), strict=True)
        mine = [(r, b) for r, b in got if b["violation"]["id"] == vid]
        assert [(b["type"], b["violation"]["plate"]) for _, b in mine] == [
            ("violation.confirmed", "30A12345"),
            ("violation.withdrawn", "30A12345"),
            ("violation.confirmed", "30A12346"),
        ]
        withdrawal, reconfirmation = mine[1][0], mine[2][0]
        assert withdrawal["key"] in reconfirmation["answered"]


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(
    receiver: Receiver,
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client = hooked(make_client, receiver.url)
    settings = make_settings(
        penalty_webhook_url=receiver.url, penalty_webhook_secret=SECRET, penalty_webhook_backoff_s=30
    )
    confirm_one(client, world, auth)
    receiver.fail_next = 2
    t0 = utcnow()
    first = deliver_pending(settings, t0)
    assert (first.attempted, first.delivered, first.retrying) == (1, 0, 1)
    [row] = deliveries(session)
    assert row.status == "pending" and row.attempts == 1 and row.last_status_code == 503
    assert row.next_attempt_at == t0 + timedelta(seconds=30)

    assert deliver_pending(settings, t0 + timedelta(seconds=29)).attempted == 0  # not due yet
    assert deliver_pending(settings, t0 + timedelta(seconds=31)).retrying == 1  # fails again
    [row] = deliveries(session)
    assert row.next_attempt_at == t0 + timedelta(seconds=31 + 60)  # doubled
    assert deliver_pending(settings, t0 + timedelta(seconds=91)).delivered == 1  # recovered

    assert len(receiver.requests) == 3
    assert len({r["body"] for r in receiver.requests}) == 1  # the same bytes every time
    assert len({r["key"] for r in receiver.requests}) == 1
    assert all(r["valid"] for r in receiver.requests) and len(receiver.accepted) == 1
    [row] = deliveries(session)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)


def test_a_receiver_that_is_down_then_a_wrong_secret_then_giving_up(
    receiver: Receiver,
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    down = f"http://127.0.0.1:{_free_port()}/hook"
    client = hooked(make_client, down)
    confirm_one(client, world, auth)
    t = utcnow()
    settings = make_settings(
        penalty_webhook_url=down, penalty_webhook_secret=SECRET, penalty_webhook_max_attempts=3
    )
    assert deliver_pending(settings, t).retrying == 1
    [row] = deliveries(session)
    assert row.last_error is not None and row.last_error.startswith("no answer")

    wrong = make_settings(
        penalty_webhook_url=receiver.url,
        penalty_webhook_secret=secrets.token_urlsafe(40),
        penalty_webhook_max_attempts=3,
    )
    assert deliver_pending(wrong, t + timedelta(hours=1)).retrying == 1
    assert receiver.requests[-1]["valid"] is False and not receiver.accepted
    assert deliver_pending(wrong, t + timedelta(hours=2)).gave_up == 1
    [row] = deliveries(session)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 3, 401)
    assert deliver_pending(settings, t + timedelta(days=9)).attempted == 0
    gave_up = session.scalars(select(AuditEntry).where(AuditEntry.action == "penalty.gave_up")).all()
    assert len(gave_up) == 1


def test_the_server_thread_delivers(
    receiver: Receiver, make_client: Callable[..., TestClient], world: World, auth: Auth
) -> None:
    client = hooked(make_client, receiver.url, penalty_webhook_interval_s=0.05)
    confirm_one(client, world, auth)
    deadline = time.monotonic() + 10
    while not receiver.accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(receiver.accepted) == 1 and all(r["valid"] for r in receiver.requests)


@pytest.mark.parametrize(
    ("shift_s", "tamper", "ok"),
    [(0, False, True), (299, False, True), (-299, False, True), (301, False, False), (0, True, False)],
)
def test_verify_signature(shift_s: int, tamper: bool, ok: bool) -> None:
    key, body, ts = b"k" * 32, b'{"a":1}', 1_700_000_000
    sig = sign_body(key, ts, body)
    assert sig == "sha256=" + hmac.new(key, b"1700000000." + body, hashlib.sha256).hexdigest()
    sent = body + b" " if tamper else body
    assert verify_signature(key, str(ts), sig, sent, now=ts + shift_s) is ok


@pytest.mark.parametrize(
    ("timestamp", "signature"), [("²", "sha256=00"), ("1700000000", "sha256=é"), ("", "")]
)
def test_verify_signature_refuses_odd_headers(timestamp: str, signature: str) -> None:
    assert verify_signature(b"k" * 32, timestamp, signature, b"{}", now=1_700_000_000) is False


@pytest.mark.parametrize(
    ("attempts", "delay"), [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (400, 3600)]
)
def test_backoff_doubles_and_is_capped(
    attempts: int, delay: float, make_settings: Callable[..., Settings]
) -> None:
    assert backoff_s(make_settings(), attempts) == delay
