"""SMS alerts for notices: the text and its segments, providers, and the durable outbox.

An SMS has no legal standing (Circular 73/2024/TT-BCA): it is a courtesy alert that points to the notice
and the lookup page. It carries the plate, the time, the type of violation, the lookup URL and code —
never the owner's name (the template has no field for it).

Text and segments: the default text is Vietnamese without diacritics, which fits GSM-7 (one 160-septet
SMS); with `accents=True` it is UCS-2 and split into 67-character parts (70 for a single part).
`segments` implements both encodings' rules (GSM-7 extension characters cost two septets and are not
split from their escape; UCS-2 counts UTF-16 units and never splits a surrogate pair).

Outbox (`sms_outbox`): `enqueue_alert` writes one row per notice (idempotency key `notice-<id>-alert`)
in the transaction that created the notice; `deliver_pending` sends due rows one transaction each
(claim with a lease, send, record), so a crash or restart loses nothing and a row is re-offered only
after its lease. Failures retry with capped exponential backoff until `max_attempts`; a gateway's 4xx
is final. Quiet hours (22:00–06:00 Vietnam time by default) and a per-number limit defer a message
without counting an attempt.

Delivery receipts (`receive_receipt`) are accepted only with a valid HMAC-SHA256 signature
(`api.webhook.sign_body` format, checked by the route). A gateway may post the receipt before it has
answered the send, so before the outbox knows the message id: such a receipt is held
(`sms_held_receipts`) and applied once the send is recorded, under the same rules (a delivered message
stays delivered); one whose message id never comes is dropped after `RECEIPT_HOLD` (24 h) by the
outbox thread. The gateway gets 200 either way, and need not retry.
"""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.db import utcnow
from api.models import HeldReceipt, Notice, SmsMessage, Violation
from api.notices.catalogue import VIETNAM_TZ
from api.notices.plate import shown_plate
from api.notices.registry import OwnerRecord
from api.notices.workflow import remember_plate, transition
from api.periodic import PeriodicThread

log = logging.getLogger(__name__)

ACTOR: Final = "system:sms"
MAX_ERROR_CHARS: Final = 500

# GSM 03.38 basic character set, and the extension table (each costs an escape + the character).
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = "^{}\\[~]|€\f"
_GSM7_BASIC_SET = frozenset(GSM7_BASIC) - {"\x1b"}
_GSM7_EXT_SET = frozenset(GSM7_EXTENSION)

VIOLATION_LABELS: Final[dict[str, str]] = {
    "red_light": "vượt đèn đỏ",
    "stop_line": "vượt vạch dừng",
    "wrong_way": "đi ngược chiều",
    "wrong_lane": "đi sai làn đường",
    "sidewalk": "đi trên vỉa hè",
    "illegal_stop": "dừng, đỗ sai quy định",
    "speeding": "chạy quá tốc độ",
}

DEFAULT_TEMPLATE: Final = (
    "CSGT thong bao: xe {plate} vi pham {violation} luc {time}. Tra cuu tai {url} voi ma {code}"
)

Encoding = Literal["gsm7", "ucs2"]


def strip_accents(text: str) -> str:
    """Vietnamese without diacritics (`Vượt đèn đỏ` → `Vuot den do`), as SMS in Vietnam usually is."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def encoding_of(text: str) -> Encoding:
    """`gsm7` when every character is in the GSM-7 basic or extension table, else `ucs2`."""
    ok = all(c in _GSM7_BASIC_SET or c in _GSM7_EXT_SET for c in text)
    return "gsm7" if ok else "ucs2"


def segments(text: str) -> list[str]:
    """Split `text` into the parts a phone reassembles (one part when it fits a single SMS).

    GSM-7: 160 septets single, 153 per part of a concatenated SMS; an extension character costs 2 and
    stays with its escape. UCS-2: 70 UTF-16 units single, 67 per part; a surrogate pair is not split.
    Empty text is one empty part.
    """
    enc = encoding_of(text)
    costs = [
        (2 if c in _GSM7_EXT_SET else 1) if enc == "gsm7" else (2 if ord(c) > 0xFFFF else 1) for c in text
    ]
    single, multi = (160, 153) if enc == "gsm7" else (70, 67)
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if used + cost > multi:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


def mask_phone(phone: str) -> str:
    """`+84912345678` → `+8491*****78`: enough to tell numbers apart in a log, not to call one."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 7) + phone[-2:]


class SmsConfig(BaseModel):
    """How alerts are written and sent (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_url: str = Field(
        min_length=1, description="Public lookup page, e.g. https://phatnguoi.city.gov.vn/lookup"
    )
    template: str = Field(DEFAULT_TEMPLATE, description="Fields: {plate} {time} {violation} {url} {code}.")
    accents: bool = Field(False, description="Keep Vietnamese diacritics (UCS-2, 70/67 characters a part).")
    max_segments: int = Field(1, ge=1, le=6, description="Refuse a text longer than this many parts.")
    max_attempts: int = Field(8, ge=1)
    backoff_s: float = Field(60.0, gt=0)
    backoff_max_s: float = Field(3600.0, gt=0)
    lease_s: float = Field(120.0, gt=0, description="A claimed row is re-offered after this long.")
    rate_limit_count: int = Field(3, ge=1, description="At most this many SMS to one number per window.")
    rate_limit_window_s: float = Field(86400.0, gt=0)
    quiet_start: time = Field(time(22, 0), description="Vietnam time; no SMS from here ...")
    quiet_end: time = Field(time(6, 0), description="... until here (equal to quiet_start: none).")


class SmsTextError(ValueError):
    """The alert text is longer than `SmsConfig.max_segments` parts."""


def alert_text(config: SmsConfig, *, plate: str, occurred_at: datetime, rule: str, code: str) -> str:
    """The alert for one notice: plate, Vietnam time, violation type, lookup URL and code.

    Raises:
        SmsTextError: the text needs more than `config.max_segments` parts.
        KeyError: the template names a field that does not exist (the owner's name is not one).
    """
    local = occurred_at.astimezone(VIETNAM_TZ)
    text = config.template.format_map(
        {
            "plate": plate,
            "time": local.strftime("%H:%M %d/%m/%Y"),
            "violation": VIOLATION_LABELS.get(rule, rule),
            "url": config.lookup_url,
            "code": code,
        }
    )
    if not config.accents:
        text = strip_accents(text)
    n = len(segments(text))
    if n > config.max_segments:
        raise SmsTextError(
            f"SMS text needs {n} parts (at most {config.max_segments}): {len(text)} characters"
        )
    return text


# ---------------------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------------------


class SmsSendError(Exception):
    """A provider could not send; `retryable` False means never try this message again."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class SmsProvider(Protocol):
    """Sends one SMS; returns the provider's message id (for delivery receipts)."""

    def send(self, phone: str, text: str, idempotency_key: str) -> str:
        """Raises:
        SmsSendError: not sent (see `retryable`).
        """
        ...


class FileProvider:
    """Development provider: appends each message as a JSON line to a file (and logs its key, the
    masked number and the length — not the text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, phone: str, text: str, idempotency_key: str) -> str:
        """Append `{"id", "to", "text", "key"}` to the file; the id is a new UUID."""
        message_id = uuid.uuid4().hex
        line = json.dumps(
            {"id": message_id, "to": phone, "text": text, "key": idempotency_key}, ensure_ascii=False
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        # Never the text: it carries the lookup code, which opens the evidence to whoever reads the log.
        log.info("SMS %s (file provider) to %s: %d characters", idempotency_key, mask_phone(phone), len(text))
        return message_id


class GatewayConfig(BaseModel):
    """A generic HTTP SMS gateway: one JSON POST per message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="Send endpoint.")
    auth_header: str = Field("Authorization", description="Header carrying the credential.")
    auth_value: str = Field(min_length=1, description="e.g. 'Bearer <token>' (a secret).")
    body_template: dict[str, str] = Field(
        default_factory=lambda: {"to": "{to}", "text": "{text}", "reference": "{key}"},
        description="JSON body; each value is formatted with {to}, {text}, {key}.",
    )
    message_id_field: str = Field("id", description="Field of the JSON answer holding the message id.")
    timeout_s: float = Field(10.0, gt=0)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend the credential somewhere else: refuse it.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpGatewayProvider:
    """`SmsProvider` for a generic HTTP gateway (`GatewayConfig`): 2xx = accepted, 5xx / timeout /
    no answer = retry, other 4xx = refused for good."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, phone: str, text: str, idempotency_key: str) -> str:
        """POST the message; the gateway's message id from the JSON answer.

        Raises:
            SmsSendError: see the class docstring.
        """
        fields = {"to": phone, "text": text, "key": idempotency_key}
        body = json.dumps({k: v.format_map(fields) for k, v in self.config.body_template.items()}).encode()
        headers = {
            "Content-Type": "application/json",
            self.config.auth_header: self.config.auth_value,
            "Idempotency-Key": idempotency_key,
        }
        request = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as response:
                status = int(response.status)
                answer = response.read(64 * 1024)
        except urllib.error.HTTPError as e:
            retryable = e.code >= 500 or e.code in (408, 429)
            raise SmsSendError(f"HTTP {e.code}", retryable=retryable) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            raise SmsSendError(f"no answer: {reason}", retryable=True) from None
        if not 200 <= status < 300:
            raise SmsSendError(f"HTTP {status}", retryable=status >= 500)
        try:
            message_id = json.loads(answer)[self.config.message_id_field]
        except (ValueError, KeyError, TypeError):
            # Accepted but unreadable: the message is probably queued; not resending avoids a duplicate.
            log.warning("SMS gateway accepted %s without a readable message id", idempotency_key)
            return ""
        return str(message_id)


# ---------------------------------------------------------------------------------------------------
# Outbox
# ---------------------------------------------------------------------------------------------------


def alert_key(notice_id: int) -> str:
    """The idempotency key of a notice's SMS alert."""
    return f"notice-{notice_id}-alert"


def enqueue_alert(session: Session, notice: Notice, phone: str, text: str) -> SmsMessage:
    """Add the notice's alert to the outbox (in the caller's transaction); an existing one is returned.

    A notice's first alert has the key `alert_key(notice.id)`. A notice given to another owner later (its
    violation's plate was corrected: `api.notices.service.on_confirmed`) gets one more alert, keyed by
    that owner, unless this phone already has a live (not cancelled) alert of the notice.
    """
    alerts = session.scalars(
        select(SmsMessage).where(SmsMessage.notice_id == notice.id).order_by(SmsMessage.id)
    ).all()
    for a in alerts:
        if a.phone == phone and a.status != "cancelled":
            return a
    key = alert_key(notice.id) if not alerts else f"{alert_key(notice.id)}-owner-{notice.owner_id}"
    existing = session.scalars(select(SmsMessage).where(SmsMessage.idempotency_key == key)).one_or_none()
    if existing is not None:
        return existing
    row = SmsMessage(notice_id=notice.id, idempotency_key=key, phone=phone, body=text, status="pending")
    session.add(row)
    session.flush()
    return row


def violation_alert_text(config: SmsConfig, v: Violation, code: str) -> str:
    """`alert_text` for a violation as it stands (its shown plate: the correction, once there is one).

    Raises:
        SmsTextError: as `alert_text`.
    """
    return alert_text(config, plate=shown_plate(v), occurred_at=v.occurred_at, rule=v.rule, code=code)


def alert_enqueuer(session: Session, config: SmsConfig) -> Callable[[Notice, str, OwnerRecord], None]:
    """An `on_created` callback for `api.notices.workflow.create_notice` that enqueues the alert when
    the owner has a phone (an owner without one gets the paper notice only)."""

    def on_created(notice: Notice, code: str, owner: OwnerRecord) -> None:
        if not owner.phone:
            log.info("notice %s: owner has no phone, no SMS", notice.id)
            return
        v = session.get(Violation, notice.violation_id)
        if v is None:
            return
        try:
            text = violation_alert_text(config, v, code)
        except SmsTextError:
            # A configuration problem (template or URL too long): the notice stands, the alert is lost
            # loudly rather than sent in pieces the owner may not get.
            log.exception("notice %s: SMS alert not queued", notice.id)
            return
        enqueue_alert(session, notice, owner.phone, text)
        remember_plate(session, notice, v.plate_key)

    return on_created


def in_quiet_hours(config: SmsConfig, now: datetime) -> datetime | None:
    """When quiet hours are on at `now`, the (UTC-aware) time they end; else None."""
    local = now.astimezone(VIETNAM_TZ)
    t = local.time()
    start, end = config.quiet_start, config.quiet_end
    quiet = (t >= start or t < end) if start > end else (start <= t < end)
    if not quiet:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=VIETNAM_TZ)


def backoff_s(config: SmsConfig, attempts: int) -> float:
    """Delay after `attempts` failed attempts: backoff_s·2^(attempts-1), capped at backoff_max_s."""
    return float(min(config.backoff_s * 2.0 ** min(max(attempts - 1, 0), 32), config.backoff_max_s))


@dataclass(frozen=True, slots=True)
class OutboxReport:
    """What one `deliver_pending` round did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0


def deliver_pending(
    sessions: sessionmaker[Session],
    provider: SmsProvider,
    config: SmsConfig,
    now: datetime | None = None,
    *,
    limit: int = 100,
    clock: Callable[[], datetime] | None = None,
) -> OutboxReport:
    """Send every due SMS (at most `limit`), one transaction per message, and record the outcomes.

    The time (`now` fixed, else `clock`, else the system clock) is read again for every message:
    sends can take seconds each, and a round that began before 22:00, or whose first claims have
    expired by the time it reaches the next message, must not act on its start time (another server
    process would find that message's lease run out and send it too). No transaction is open while
    the gateway answers (on SQLite one would hold the database's write lock).
    """
    read = clock if clock is not None else ((lambda: now) if now is not None else utcnow)
    at = read()
    sent = retrying = failed = deferred = 0
    with sessions() as session:
        due = session.execute(
            select(SmsMessage.id, SmsMessage.next_attempt_at)
            .where(
                SmsMessage.status == "pending",
                (SmsMessage.next_attempt_at.is_(None)) | (SmsMessage.next_attempt_at <= at),
            )
            .order_by(SmsMessage.id)
            .limit(limit)
        ).all()
        session.commit()
    for row_id, seen_next in due:
        t = read()
        with sessions() as session:
            quiet_until = in_quiet_hours(config, t)
            if quiet_until is not None:
                _defer(session, row_id, quiet_until)
                deferred += 1
                continue
            msg = session.get(SmsMessage, row_id)
            if msg is None or msg.status != "pending":
                session.commit()
                continue
            if msg.attempts >= config.max_attempts:
                # Claimed that often without an outcome (an error the gateway's answer did not
                # explain, a crash after sending): it may have gone out; never try it again.
                msg.status, msg.next_attempt_at = "failed", None
                msg.last_error = (msg.last_error or "no outcome recorded")[:MAX_ERROR_CHARS]
                session.commit()
                failed += 1
                log.warning(
                    "SMS %s given up after %d attempts without an outcome", msg.idempotency_key, msg.attempts
                )
                continue
            window_start = t - timedelta(seconds=config.rate_limit_window_s)
            recent = session.scalar(
                select(func.count())
                .select_from(SmsMessage)
                .where(SmsMessage.phone == msg.phone, SmsMessage.sent_at > window_start)
            )
            if int(recent or 0) >= config.rate_limit_count:
                oldest = session.scalar(
                    select(func.min(SmsMessage.sent_at)).where(
                        SmsMessage.phone == msg.phone, SmsMessage.sent_at > window_start
                    )
                )
                _defer(session, row_id, (oldest or t) + timedelta(seconds=config.rate_limit_window_s))
                deferred += 1
                continue
            phone, body, key = msg.phone, msg.body, msg.idempotency_key
            if not _claim(session, row_id, seen_next, t, config.lease_s):
                continue
            # The claim committed: no transaction is open while the gateway answers.
            error: SmsSendError | None = None
            try:
                message_id = provider.send(phone, body, key)
            except SmsSendError as e:
                error = e
            except Exception as e:  # noqa: BLE001 - an outcome the gateway did not explain: retried
                # under max_attempts like a retryable failure (the same idempotency key goes again).
                error = SmsSendError(f"{type(e).__name__}: {e}", retryable=True)
            t = read()
            msg = session.get(SmsMessage, row_id, populate_existing=True)
            assert msg is not None  # claimed just now, rows are never deleted
            if error is not None:
                msg.last_error = str(error)[:MAX_ERROR_CHARS]
                if not error.retryable or msg.attempts >= config.max_attempts:
                    msg.status = "failed"
                    msg.next_attempt_at = None
                    failed += 1
                    log.warning("SMS %s failed for good: %s", msg.idempotency_key, error)
                else:
                    msg.next_attempt_at = t + timedelta(seconds=backoff_s(config, msg.attempts))
                    retrying += 1
                    log.info("SMS %s: %s, retry at %s", msg.idempotency_key, error, msg.next_attempt_at)
                session.commit()
                continue
            msg.status = "sent"
            msg.sent_at = t
            msg.next_attempt_at = None
            msg.last_error = None
            msg.provider_message_id = message_id or None
            notice = session.get(Notice, msg.notice_id)
            if notice is not None:
                if notice.status == "created":
                    transition(session, notice, "sms_sent", actor=ACTOR, now=t)
                elif notice.sent_at is None:
                    notice.sent_at = t
            session.commit()
            sent += 1
        if message_id:
            # The gateway may have posted this message's receipt before the send was recorded (held):
            # looked for after the commit above, see `receive_receipt`.
            apply_held_receipts(sessions, message_id)
    return OutboxReport(sent, retrying, failed, deferred)


def _defer(session: Session, row_id: int, until: datetime) -> None:
    session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == row_id, SmsMessage.status == "pending")
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _claim(session: Session, row_id: int, seen_next: datetime | None, now: datetime, lease_s: float) -> bool:
    """Take the row for this runner (False when another runner took it first)."""
    previous = (
        SmsMessage.next_attempt_at.is_(None) if seen_next is None else SmsMessage.next_attempt_at == seen_next
    )
    result = session.execute(
        update(SmsMessage)
        .where(SmsMessage.id == row_id, SmsMessage.status == "pending", previous)
        .values(next_attempt_at=now + timedelta(seconds=lease_s), attempts=SmsMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


ReceiptStatus = Literal["delivered", "failed"]

#: How long a receipt for a message id not (yet) recorded is kept (`purge_held_receipts`).
RECEIPT_HOLD: Final = timedelta(hours=24)
_RECORDED: Final = ("sent", "delivered", "failed")


def apply_receipt(
    session: Session, provider_message_id: str, status: ReceiptStatus, *, now: datetime | None = None
) -> bool:
    """Record a (signature-checked) delivery receipt received at `now`; False when no sent message has
    that id. A delivered message stays delivered."""
    msg = session.scalars(
        select(SmsMessage).where(SmsMessage.provider_message_id == provider_message_id)
    ).one_or_none()
    if msg is None or msg.status not in _RECORDED:
        return False
    if msg.status == "delivered" and status == "failed":
        # The phone has it: a "failed" receipt now is an interim report arriving late, or a replay.
        log.info("SMS %s: 'failed' receipt after 'delivered' ignored", msg.idempotency_key)
        return True
    msg.status = status
    if status == "delivered":
        at = now or utcnow()
        # A receipt held from before the send was recorded: not shown as delivered before it was sent.
        msg.delivered_at = max(at, msg.sent_at) if msg.sent_at is not None else at
    session.flush()
    return True


def receive_receipt(
    sessions: sessionmaker[Session],
    provider_message_id: str,
    status: ReceiptStatus,
    *,
    now: datetime | None = None,
) -> Literal["applied", "held"]:
    """Apply a (signature-checked) delivery receipt, or hold it when no sent message has its id yet.

    A held receipt is applied when the outbox records the send. Both sides write, commit, then look
    for the other's write: the outbox records the message id and then looks for held receipts
    (`apply_held_receipts`); this function holds the receipt and then looks for the message again. Of
    the two, the one that looks last sees the other's commit, so a receipt racing its send is applied
    (perhaps twice, which changes nothing).
    """
    at = now or utcnow()
    with sessions() as session:
        if apply_receipt(session, provider_message_id, status, now=at):
            session.commit()
            return "applied"
        session.add(HeldReceipt(provider_message_id=provider_message_id, status=status, received_at=at))
        session.commit()
    if apply_held_receipts(sessions, provider_message_id):
        return "applied"
    log.info("SMS receipt for message id %s held: no sent message has it yet", provider_message_id)
    return "held"


def apply_held_receipts(
    sessions: sessionmaker[Session], provider_message_id: str | None = None, *, limit: int = 500
) -> int:
    """Apply the held receipts whose message is now recorded as sent (those of `provider_message_id`;
    None: any), in the order they came, each with its own time, and delete them. Returns how many."""
    recorded = select(SmsMessage.provider_message_id).where(SmsMessage.status.in_(_RECORDED))
    if provider_message_id is not None:
        recorded = recorded.where(SmsMessage.provider_message_id == provider_message_id)
    with sessions() as session:
        held = session.scalars(
            select(HeldReceipt)
            .where(HeldReceipt.provider_message_id.in_(recorded))
            .order_by(HeldReceipt.id)
            .limit(limit)
        ).all()
        for h in held:
            status: ReceiptStatus = "delivered" if h.status == "delivered" else "failed"
            apply_receipt(session, h.provider_message_id, status, now=h.received_at)
        if held:
            session.execute(delete(HeldReceipt).where(HeldReceipt.id.in_([h.id for h in held])))
        session.commit()
    return len(held)


def purge_held_receipts(sessions: sessionmaker[Session], now: datetime | None = None) -> int:
    """Delete receipts held longer than `RECEIPT_HOLD` (their message id never became a sent message's:
    a gateway answer without a readable id, or a stray receipt). Returns how many."""
    before = (now or utcnow()) - RECEIPT_HOLD
    with sessions() as session:
        result = session.execute(delete(HeldReceipt).where(HeldReceipt.received_at < before))
        session.commit()
    n = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if n:
        log.warning("%d SMS receipts dropped: no sent message had their id after %s", n, RECEIPT_HOLD)
    return n


class OutboxThread(PeriodicThread):
    """Runs `deliver_pending` every `interval_s` in a daemon thread until `stop()` (`api.app` starts
    one next to the penalty-webhook thread when SMS alerts are configured), then applies the receipts
    held for a send not recorded yet that now is, and drops those held too long."""

    name = "sms-outbox"

    def __init__(
        self, sessions: sessionmaker[Session], provider: SmsProvider, config: SmsConfig, interval_s: float
    ) -> None:
        self.sessions = sessions
        self.provider = provider
        self.config = config
        super().__init__(interval_s)

    def round(self) -> None:
        """Send what is due; settle held receipts."""
        deliver_pending(self.sessions, self.provider, self.config)
        apply_held_receipts(self.sessions)
        purge_held_receipts(self.sessions)
