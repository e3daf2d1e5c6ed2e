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
    """A penalty system on 127.0.0.1: `requests` holds every request it got, `accepted` the bodies it
    kept (once per idempotency key)."""

    url: str
    fail_next: int = 0
    lose_next: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
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
                rec.requests.append({"path": self.path, "valid": valid, "key": key, "body": body})
                failing = rec.fail_next > 0
                rec.fail_next -= failing
                if valid and not failing:
                    rec.accepted.setdefault(key, json.loads(body))
                lost = valid and not failing and rec.lose_next > 0
                rec.lose_next -= lost
            status = 401 if not valid else 503 if failing or lost else 200
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


def test_a_confirmation_is_delivered_signed_and_only_once(
    receiver: Receiver,
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    client = hooked(make_client, receiver.url)
    settings = make_settings(penalty_webhook_url=receiver.url, penalty_webhook_secret=SECRET)
    vid = confirm_one(client, world, auth)
    rejected = confirm_one(client, world, auth, seed=2)
    # Reopened before delivery: cancelled, never sent.
    assert (
        client.post(f"/api/v1/violations/{rejected}/reopen", json={"note": "x"}, headers=auth("sup")).json()[
            "penalty_delivery"
        ]
        == "cancelled"
    )

    report = deliver_pending(settings)
    assert (report.attempted, report.delivered) == (1, 1)
    assert len(receiver.requests) == 1 and receiver.requests[0]["valid"]
    assert receiver.requests[0]["path"] == "/penalty/hook"
    body = receiver.accepted[receiver.requests[0]["key"]]
    assert body["type"] == "violation.confirmed"
    assert body["violation"]["id"] == vid and body["violation"]["plate"] == "30A12345"
    assert body["violation"]["confirmed_by"] == "off-a" and len(body["violation"]["evidence"]) == 4

    # Nothing is due any more: another round, even much later, sends nothing.
    assert deliver_pending(settings, utcnow() + timedelta(days=30)).attempted == 0
    # Reopened after delivery and confirmed again: the penalty system already has it.
    assert (
        client.post(f"/api/v1/violations/{vid}/reopen", json={"note": "x"}, headers=auth("sup")).json()[
            "penalty_delivery"
        ]
        == "delivered"
    )
    again = client.post(
        f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("sup")
    )
    assert again.json()["penalty_delivery"] == "delivered"
    assert deliver_pending(settings).attempted == 0
    assert len(receiver.requests) == 1

    rows = deliveries(session)
    assert [(d.violation_id, d.status, d.attempts, d.last_status_code) for d in rows] == [
        (vid, "delivered", 1, 200),
        (rejected, "cancelled", 0, None),
    ]
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "penalty.delivered")).all()
    assert [(a.object_id, a.actor) for a in audited] == [(str(vid), "system:webhook")]


def test_a_confirmation_made_anew_is_not_dropped_as_a_repeat_of_the_first(
    receiver: Receiver,
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    """The penalty system took the first confirmation but its answer was lost; the violation was then
    reopened and confirmed with a corrected plate. The new body went out under the first one's key
    (`confirmed:<event id>`), and the receiver dropped it as a repeat: it kept the wrong plate."""
    client = hooked(make_client, receiver.url)
    settings = make_settings(penalty_webhook_url=receiver.url, penalty_webhook_secret=SECRET)
    vid = confirm_one(client, world, auth)
    receiver.lose_next = 1
    t = utcnow()
    assert deliver_pending(settings, t).retrying == 1
    [first_key] = receiver.accepted
    assert receiver.accepted[first_key]["violation"]["plate"] == "30A12345"

    r = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": "plate misread"}, headers=auth("sup"))
    assert r.json()["penalty_delivery"] == "cancelled", r.text
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "30A-123.46"},
        headers=auth("sup"),
    )
    assert r.json()["penalty_delivery"] == "pending", r.text
    [row] = deliveries(session)
    assert row.attempts == 0 and row.idempotency_key != first_key
    assert json.loads(row.payload)["idempotency_key"] == row.idempotency_key

    receiver.fail_next = 1  # and a retry of the new confirmation keeps its key
    later = t + timedelta(hours=1)
    assert deliver_pending(settings, later).retrying == 1
    assert deliver_pending(settings, later + timedelta(hours=1)).delivered == 1
    new_keys = [r["key"] for r in receiver.requests[1:]]
    assert new_keys == [row.idempotency_key] * 2
    assert receiver.requests[1]["body"] == receiver.requests[2]["body"]  # the same bytes on the retry
    kept = receiver.accepted[row.idempotency_key]
    assert kept["violation"]["plate"] == "30A12346" and kept["violation"]["plate_corrected"] is True
    assert kept["violation"]["event_id"] == receiver.accepted[first_key]["violation"]["event_id"]
    assert kept["violation"]["confirmed_at"] > receiver.accepted[first_key]["violation"]["confirmed_at"]
    [row] = deliveries(session)
    assert (row.status, row.attempts) == ("delivered", 2)


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
