"""Signed webhook to the penalty system: a durable outbox, delivered with retries and capped backoff.

When a violation is confirmed, `enqueue_confirmation` writes a `penalty_deliveries` row in the same
transaction as the decision (so a confirmation is never lost, nor announced without being stored). When
a supervisor reopens it, `on_reopened` (in the reopening's transaction) cancels a confirmation never
sent and queues a withdrawal of one that may have reached the penalty system; confirmed again (perhaps
with a corrected plate), it gets a new confirmation row. `deliver_pending(settings, now)` POSTs the due
rows; run it from the server's own thread (`DeliveryThread`, every
`PHATNGUOI_PENALTY_WEBHOOK_INTERVAL_S`) or from a CLI/cron job. Several runners may work at once: each
row is claimed with a conditional UPDATE (a lease) before it is sent. The rows of one violation go in
the order they were written: none is sent while an earlier one of the same violation is still pending
(one given up as `failed` holds nothing back).

The request (what the penalty system implements):

    POST <PHATNGUOI_PENALTY_WEBHOOK_URL>
    Content-Type: application/json
    Idempotency-Key: <one key per message, the same on every retry of it>
    X-Phatnguoi-Timestamp: <unix seconds when this attempt was sent>
    X-Phatnguoi-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

    {"type": "violation.confirmed", "idempotency_key": ..., "violation": {..., "confirmed_at": ...},
     "notice": {"id": ..., "status": "created" | "awaiting_owner" | ..., "lookup_code": "XXXXX-XXXXX"}}

    {"type": "violation.withdrawn", "idempotency_key": ...,
     "violation": {"id", "event_id", "rule", "occurred_at", "camera_id", "plate", "confirmed_at"},
     "withdrawn_at": ..., "withdrawn_by": <username>, "note": <why it was reopened>}

`legal_reference` is the catalogue's citation in force at `occurred_at` for the rule and vehicle class
(`api.notices.catalogue.legal_basis`: the one the owner's notice, its PDF, the public lookup and the
CSV export state), not necessarily the one the device wrote into its evidence.

`notice` is the owner notice made in the same transaction (`api.notices.service.on_confirmed`): its state
at confirmation and the lookup code printed on it (null when the server cannot show it); the CSV export
carries the notice's current state. A withdrawal names the confirmation it withdraws by the same
identifying fields (copied from that confirmation's body: the plate is the one the fine was issued to).

What the receiver does: a confirmation puts a fine for its `event_id` in force; a withdrawal suspends or
cancels the fine of its `event_id` (the police took the decision back; the violation may later be
rejected, or confirmed again, perhaps with a corrected plate, in a new confirmation). Of the messages of
one `event_id`, the one in force is the latest by its own time (`confirmed_at` or `withdrawn_at`), not
by arrival: they are sent in order, but a request whose answer was lost is sent again later. A
withdrawal may name a confirmation the receiver never took (one whose answer was lost, or still in
flight, when the violation was reopened): there is nothing to cancel then.

Signing the timestamp with the body lets the receiver refuse a replayed old request (`verify_signature`
with a tolerance); the body itself is frozen when the row is written, so every retry sends the same
bytes. Any 2xx answer means delivered; anything else (or no answer) is retried after `backoff_s`
(doubling from `PHATNGUOI_PENALTY_WEBHOOK_BACKOFF_S`, capped at `PHATNGUOI_PENALTY_WEBHOOK_BACKOFF_MAX_S`)
until `PHATNGUOI_PENALTY_WEBHOOK_MAX_ATTEMPTS`, then the row is `failed` (and audited) for a person to
look at.

Delivery is at least once: a runner that dies after the penalty system answered but before it recorded
`delivered` sends again after the lease. The idempotency key is what makes that harmless, so the
penalty system must keep the keys it has accepted. The key is `<confirmed|withdrawn>:<event id>:<12 hex
digits of the SHA-256 of the body without its key>`: retries of one message share it, while every new
message (a withdrawal, a confirmation made anew) gets its own, so a receiver that took an earlier body
does not drop the new one as a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from api import audit
from api.db import make_engine, make_sessionmaker, utcnow
from api.models import PenaltyDelivery, User, Violation
from api.notices.catalogue import legal_basis
from api.periodic import PeriodicThread
from api.settings import Settings

log = logging.getLogger(__name__)

EVENT_CONFIRMED = "violation.confirmed"
EVENT_WITHDRAWN = "violation.withdrawn"
# The fields of a confirmation's `violation` that a withdrawal repeats: what the penalty system needs
# to find the fine it made (the event id), and which confirmation of it is withdrawn.
WITHDRAWAL_FIELDS = ("id", "event_id", "rule", "occurred_at", "camera_id", "plate", "confirmed_at")
SIGNATURE_HEADER = "X-Phatnguoi-Signature"
TIMESTAMP_HEADER = "X-Phatnguoi-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ACTOR = "system:webhook"
# A claimed row is not offered to another runner for this long after the request's timeout.
LEASE_MARGIN_S = 60.0
MAX_ERROR_CHARS = 500


# ---------------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------------


def sign_body(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of `b"<timestamp>." + body`."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float, tolerance_s: float = 300.0
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within `tolerance_s` of `now`
    (unix seconds). Constant-time comparison; False for any malformed header."""
    # str.isdigit() accepts "²" and other digits int() refuses; compare_digest refuses non-ASCII str
    if not re.fullmatch(r"[0-9]{1,12}", timestamp, flags=re.ASCII) or not signature.isascii():
        return False
    ts = int(timestamp)
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign_body(secret, ts, body), signature)


# ---------------------------------------------------------------------------------------------------
# Enqueueing (in the decision's transaction)
# ---------------------------------------------------------------------------------------------------


def idempotency_key(event_id: str, body: dict[str, Any]) -> str:
    """One key per message: its kind (`confirmed` or `withdrawn`, from the body's type), the violation's
    event id (a UUID the device chose) and a short hash of the body without its key (which holds
    `confirmed_at` or `withdrawn_at`, so a later message about the same violation never shares a key
    with an earlier one). At most 59 characters."""
    kind = str(body["type"]).removeprefix("violation.")
    unkeyed = {k: v for k, v in body.items() if k != "idempotency_key"}
    return f"{kind}:{event_id}:{hashlib.sha256(_canonical(unkeyed)).hexdigest()[:12]}"


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _keyed(body: dict[str, Any], event_id: str) -> tuple[bytes, str]:
    key = body["idempotency_key"] = idempotency_key(event_id, body)
    return _canonical(body), key


@dataclass(frozen=True, slots=True)
class NoticeRef:
    """The owner notice of a confirmed violation, as the penalty system is told about it."""

    id: int
    status: str
    lookup_code: str | None


def payload_for(
    v: Violation, reviewer: User, confirmed_at: datetime, notice: NoticeRef | None = None
) -> tuple[bytes, str]:
    """The JSON body announcing a confirmed violation (canonical: sorted keys, no spaces, UTF-8), with
    its `idempotency_key`, and that key."""
    body: dict[str, Any] = {
        "type": EVENT_CONFIRMED,
        "violation": {
            "id": v.id,
            "event_id": v.event_id,
            "rule": v.rule,
            "legal_reference": legal_basis(v).citation,
            "occurred_at": v.occurred_at.isoformat(),
            "camera_id": v.camera_id,
            "district_id": v.district_id,
            "lat": v.lat,
            "lon": v.lon,
            "plate": v.plate_key,
            "plate_corrected": v.plate_corrected is not None,
            "vehicle_class": v.vehicle_class,
            "speed_kmh": v.speed_kmh,
            "speed_limit_kmh": v.speed_limit_kmh,
            "signal_state": v.signal_state,
            "confirmed_at": confirmed_at.isoformat(),
            "confirmed_by": reviewer.username,
            "manifest_sha256": v.manifest_sha256,
            "evidence": [
                {"name": f.name, "kind": f.kind, "sha256": f.sha256, "size": f.size} for f in v.files
            ],
        },
        "notice": None
        if notice is None
        else {"id": notice.id, "status": notice.status, "lookup_code": notice.lookup_code},
    }
    return _keyed(body, v.event_id)


def withdrawal_payload_for(
    confirmation: dict[str, Any], supervisor: User, withdrawn_at: datetime, note: str
) -> tuple[bytes, str]:
    """The JSON body withdrawing `confirmation` (the body of an earlier confirmation, parsed), with its
    `idempotency_key`, and that key. The violation is named by the confirmation's identifying fields
    (`WITHDRAWAL_FIELDS`), so the plate is the one the penalty system was told, not a later correction.
    """
    violation = confirmation["violation"]
    body: dict[str, Any] = {
        "type": EVENT_WITHDRAWN,
        "violation": {k: violation[k] for k in WITHDRAWAL_FIELDS},
        "withdrawn_at": withdrawn_at.isoformat(),
        "withdrawn_by": supervisor.username,
        "note": note,
    }
    return _keyed(body, str(violation["event_id"]))


def _row(violation_id: int, kind: str, payload: bytes, key: str, now: datetime) -> PenaltyDelivery:
    return PenaltyDelivery(
        violation_id=violation_id,
        kind=kind,
        idempotency_key=key,
        payload=payload.decode("utf-8"),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def enqueue_confirmation(
    session: Session,
    settings: Settings,
    v: Violation,
    reviewer: User,
    now: datetime,
    notice: NoticeRef | None = None,
) -> str | None:
    """Put the confirmation of `v` in the outbox (flushed, not committed: the caller commits it with
    the decision). Returns the delivery's status afterwards ("pending"), or None when no webhook is
    configured.

    Every confirmation is a new row with its own body and idempotency key, also when the violation was
    confirmed before and reopened (an earlier body may have reached the penalty system: the same key
    would make it drop the new one as a repeat). It is sent after the violation's earlier rows, so after
    the withdrawal `on_reopened` queued for an earlier confirmation.
    """
    if not settings.penalty_webhook_url:
        return None
    payload, key = payload_for(v, reviewer, now, notice)
    row = _row(v.id, "confirmed", payload, key, now)
    session.add(row)
    session.flush()
    return row.status


def _may_have_reached(row: PenaltyDelivery) -> bool:
    """Whether the penalty system may have this message: delivered, or sent at least once (an answer
    lost, or a request in flight, is no proof that it was not taken)."""
    return row.status == "delivered" or row.attempts > 0


def on_reopened(session: Session, v: Violation, supervisor: User, now: datetime, note: str) -> str | None:
    """Undo, towards the penalty system, the confirmation of `v`, which `supervisor` reopened with
    `note` (flushed, not committed: the caller commits it with the reopening).

    Confirmations still pending or failed are cancelled. When the latest confirmation that may have
    reached the penalty system (delivered, or sent at least once) is not already followed by a pending
    or delivered withdrawal, a withdrawal of it is queued, whatever the settings (the penalty system
    has it even if the webhook was switched off since). Pending withdrawals stay: they go before any
    new confirmation.

    Returns:
        What happened, for the audit log: "withdrawal_queued"; "already_withdrawn" (a withdrawal of
        the latest confirmation that may have reached it is pending or delivered); "cancelled" (no
        confirmation reached it); None when the violation never had a delivery.
    """
    rows = list(
        session.scalars(
            select(PenaltyDelivery)
            .where(PenaltyDelivery.violation_id == v.id)
            .order_by(PenaltyDelivery.id)
            # PostgreSQL: wait for a runner's claim to commit, so that `attempts` says whether it is
            # being sent (SQLite: the reopening's UPDATE already holds the database's write lock).
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if not rows:
        return None
    for row in rows:
        if row.kind == "confirmed" and row.status in ("pending", "failed"):
            row.status = "cancelled"
    reached = [r for r in rows if r.kind == "confirmed" and _may_have_reached(r)]
    if not reached:
        session.flush()
        return "cancelled"
    last = reached[-1]
    if any(r.kind == "withdrawn" and r.id > last.id and r.status in ("pending", "delivered") for r in rows):
        session.flush()
        return "already_withdrawn"
    payload, key = withdrawal_payload_for(json.loads(last.payload), supervisor, now, note)
    session.add(_row(v.id, "withdrawn", payload, key, now))
    session.flush()
    log.info("violation %d reopened: withdrawal of its confirmation queued for the penalty system", v.id)
    return "withdrawal_queued"


# ---------------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------------


class DeliveryError(Exception):
    """The penalty system did not take the request: no answer, or a non-2xx status."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class Sender(Protocol):
    """Sends one request; returns the HTTP status of a 2xx answer, raises `DeliveryError` otherwise."""

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET or send the signed body somewhere else: refuse it.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http_sender(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """The default `Sender`: one HTTP(S) POST with the standard library (no redirects followed)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            status = int(response.status)
            response.read(64 * 1024)
    except urllib.error.HTTPError as e:
        raise DeliveryError(f"HTTP {e.code} {e.reason}", e.code) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise DeliveryError(f"no answer: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}", status)
    return status


def backoff_s(settings: Settings, attempts: int) -> float:
    """Delay before the next attempt after `attempts` failed ones: base·2^(attempts-1), capped."""
    exponent = min(max(attempts - 1, 0), 32)
    delay = settings.penalty_webhook_backoff_s * 2.0**exponent
    return float(min(delay, settings.penalty_webhook_backoff_max_s))


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one `deliver_pending` round did."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0


def _due(session: Session, now: datetime, limit: int) -> list[tuple[int, datetime | None]]:
    """Ids (and `next_attempt_at`) of the pending rows due at `now`, oldest first, leaving out any row of
    a violation whose earlier row is still pending: the penalty system must get a violation's messages
    in order (a withdrawal before the confirmation made anew). Rows never become pending again and a
    new row comes after the violation's existing ones, so a row selected here stays free to go."""
    earlier = aliased(PenaltyDelivery)
    waiting = (
        select(earlier.id)
        .where(
            earlier.violation_id == PenaltyDelivery.violation_id,
            earlier.id < PenaltyDelivery.id,
            earlier.status == "pending",
        )
        .exists()
    )
    rows = session.execute(
        select(PenaltyDelivery.id, PenaltyDelivery.next_attempt_at)
        .where(
            PenaltyDelivery.status == "pending",
            or_(PenaltyDelivery.next_attempt_at.is_(None), PenaltyDelivery.next_attempt_at <= now),
            ~waiting,
        )
        .order_by(PenaltyDelivery.next_attempt_at, PenaltyDelivery.id)
        .limit(limit)
    ).all()
    session.commit()
    return [(row_id, seen_next) for row_id, seen_next in rows]


def _claim(session: Session, row_id: int, seen_next: datetime | None, now: datetime, lease_s: float) -> bool:
    """Take the row for this runner (False when another runner took it first)."""
    previous = (
        PenaltyDelivery.next_attempt_at.is_(None)
        if seen_next is None
        else PenaltyDelivery.next_attempt_at == seen_next
    )
    result = session.execute(
        update(PenaltyDelivery)
        .where(PenaltyDelivery.id == row_id, PenaltyDelivery.status == "pending", previous)
        .values(next_attempt_at=now + timedelta(seconds=lease_s), attempts=PenaltyDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def deliver_pending(
    settings: Settings,
    now: datetime | None = None,
    *,
    sessions: sessionmaker[Session] | None = None,
    sender: Sender | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Send every due delivery (at most `limit`), one request each, and record the outcomes.

    Args:
        settings: the webhook URL, secret, timeout, backoff and attempt limit.
        now: the time that decides what is due and when a failure is retried (default: the clock).
            The signature's timestamp is always the real clock: the receiver compares it with its own.
        sessions: sessions on the server's database; by default an engine is opened from
            `settings.database_url` for this call.
        sender: what sends a request (default `http_sender`).
        limit: most deliveries attempted in this call (a violation's next message goes in the same call
            once the one before it is delivered).

    Returns:
        Counts of what was attempted, delivered, scheduled for retry, and given up.
    """
    if not settings.penalty_webhook_url or settings.penalty_webhook_secret is None:
        return DeliveryReport()
    if sessions is None:
        engine = make_engine(settings.database_url)
        try:
            return deliver_pending(
                settings, now, sessions=make_sessionmaker(engine), sender=sender, limit=limit
            )
        finally:
            engine.dispose()
    now = now or utcnow()
    send = sender or http_sender
    secret = settings.penalty_webhook_secret.get_secret_value().encode("utf-8")
    url = settings.penalty_webhook_url
    lease_s = settings.penalty_webhook_timeout_s + LEASE_MARGIN_S
    attempted = delivered = retrying = gave_up = 0
    with sessions() as session:
        # A delivery may let the next message of its violation go: look again while rounds deliver.
        while attempted < limit:
            due = _due(session, now, limit - attempted)
            delivered_before = delivered
            for row_id, seen_next in due:
                if not _claim(session, row_id, seen_next, now, lease_s):
                    continue
                row = session.get(PenaltyDelivery, row_id, populate_existing=True)
                session.commit()  # no transaction (SQLite: no write lock) while waiting for the answer
                if row is None:
                    continue
                attempted += 1
                body = row.payload.encode("utf-8")
                ts = int(time.time())
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": "phatnguoi-webhook/1",
                    IDEMPOTENCY_HEADER: row.idempotency_key,
                    TIMESTAMP_HEADER: str(ts),
                    SIGNATURE_HEADER: sign_body(secret, ts, body),
                }
                try:
                    status = send(url, body, headers, settings.penalty_webhook_timeout_s)
                except DeliveryError as e:
                    outcome = _record_failure(session, settings, row, str(e), e.status, now)
                    retrying += outcome == "pending"
                    gave_up += outcome == "failed"
                    continue
                _record_success(session, row, status, now)
                delivered += 1
            if delivered == delivered_before:
                break
    report = DeliveryReport(attempted, delivered, retrying, gave_up)
    if attempted:
        log.info("penalty webhook: %s", report)
    return report


def _record_success(session: Session, row: PenaltyDelivery, status: int, now: datetime) -> None:
    # Unconditional: the penalty system has it now, even if the violation was reopened meanwhile (a
    # confirmation sent at least once is withdrawn then: see `on_reopened`).
    session.execute(
        update(PenaltyDelivery)
        .where(PenaltyDelivery.id == row.id)
        .values(status="delivered", delivered_at=now, last_status_code=status, last_error=None)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=ACTOR,
        action="penalty.delivered",
        object_type="violation",
        object_id=row.violation_id,
        detail={
            "kind": row.kind,
            "attempts": row.attempts,
            "status": status,
            "idempotency_key": row.idempotency_key,
        },
    )
    session.commit()
    log.info(
        "violation %d: %s message delivered to the penalty system (attempt %d)",
        row.violation_id,
        row.kind,
        row.attempts,
    )


def _record_failure(
    session: Session, settings: Settings, row: PenaltyDelivery, error: str, status: int | None, now: datetime
) -> str:
    give_up = row.attempts >= settings.penalty_webhook_max_attempts
    values: dict[str, Any] = {"last_error": error[:MAX_ERROR_CHARS], "last_status_code": status}
    if give_up:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = now + timedelta(seconds=backoff_s(settings, row.attempts))
    # Conditional: a confirmation cancelled meanwhile (violation reopened) stays cancelled.
    result = session.execute(
        update(PenaltyDelivery)
        .where(PenaltyDelivery.id == row.id, PenaltyDelivery.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if give_up and result.rowcount == 1:  # type: ignore[attr-defined]
        audit.record(
            session,
            actor=ACTOR,
            action="penalty.gave_up",
            object_type="violation",
            object_id=row.violation_id,
            detail={
                "kind": row.kind,
                "attempts": row.attempts,
                "error": error[:MAX_ERROR_CHARS],
                "idempotency_key": row.idempotency_key,
            },
        )
    session.commit()
    log.warning(
        "violation %d: penalty webhook attempt %d failed (%s)%s",
        row.violation_id,
        row.attempts,
        error,
        "; giving up" if give_up else "",
    )
    return "failed" if give_up else "pending"


class DeliveryThread(PeriodicThread):
    """Runs `deliver_pending` every `interval_s` in a daemon thread until `stop()`."""

    name = "penalty-webhook"

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        interval_s: float,
        sender: Sender | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sender = sender
        super().__init__(interval_s)

    def round(self) -> None:
        """Deliver what is due."""
        deliver_pending(self.settings, sessions=self.sessions, sender=self.sender)
