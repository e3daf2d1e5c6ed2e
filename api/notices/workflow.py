"""The notice workflow on a confirmed violation (Circular 73/2024/TT-BCA, Art. 15 and 24).

confirmed violation → owner from the registry (`read_owner`, audited) → one `Notice` with a lookup code
(only its hash is stored; the code is returned once, to the staff member or the SMS) → states:

```
awaiting_owner ─► created ─► sms_sent ─► posted ─► responded ─► closed
      │              │  └───────────────►  │  └─► escalated_20d ─┘
      └──────────────┴──────────────────────┴────────────────────► closed
```

`awaiting_owner`: the plate has no owner in the registry (or no plate was read); the notice waits,
visible in the due list, until `attach_owner` finds one. It also waits, held for a supervisor with
its `hold_reason`, when the registry's vehicle is of another class regime than the violation's
(`class_hold_reason`: a registered motorcycle detected as a car would be fined under the car article):
the owner is not established until a new decision corrects the class or the plate
(`api.notices.service.on_confirmed`) or the registry is corrected (`attach_owner`). Every transition is
checked against `TRANSITIONS` and written to the audit log in the caller's transaction.

Clocks (calendar days, as the circular counts them): the notice must be sent within `NOTICE_DAYS` (10)
of the violation; `ESCALATE_DAYS` (20) after it was posted without a response, the registration /
inspection bodies are warned. Days are counted as the Civil Code 2015 (Art. 147-148) counts a period
in days: from the day after the event, the period ending at 24:00 of its last day, on the Vietnam
calendar (`due_after`) — the time of day of the event does not move the deadline. `due_actions`
lists what supervisors must do, with the due time and whether it is overdue.

Idempotent: a violation has at most one notice (unique `violation_id`); `create_notice` twice, even
from two processes at once, returns the existing one the second time.

Each plate the lookup code goes out with (an SMS alert's text, the paper notice) is remembered with the
owner it went to (`remember_plate`, table `notice_plates`): a plate corrected later on review must not
lock the owner out of the public lookup with the plate and code they were sent (`api.web.lookup`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.db import utcnow
from api.errors import ServerError
from api.models import Notice, NoticePlate, Violation
from api.notices.catalogue import REGIME_OF_CLASS, VIETNAM_TZ
from api.notices.plate import formatted_plate
from api.notices.registry import OwnerRecord, RegistryAdapter, read_owner
from api.web.i18n import labels
from api.web.lookup import lookup_code_hash

log = logging.getLogger(__name__)

NOTICE_DAYS: Final = 10
ESCALATE_DAYS: Final = 20
OPEN_STATES: Final = ("awaiting_owner", "created", "sms_sent", "posted", "escalated_20d")

#: Allowed transitions (from → the states it may move to).
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "awaiting_owner": frozenset({"created", "closed"}),
    "created": frozenset({"sms_sent", "posted", "responded", "escalated_20d", "closed"}),
    "sms_sent": frozenset({"posted", "responded", "escalated_20d", "closed"}),
    "posted": frozenset({"responded", "escalated_20d", "closed"}),
    "escalated_20d": frozenset({"responded", "closed"}),
    "responded": frozenset({"closed"}),
    "closed": frozenset(),
}

# No 0/O, 1/I/L: the code is read off paper and typed on a phone.
_CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class NoticeError(ServerError, ValueError):
    """A notice operation is not allowed (violation not confirmed, transition not in `TRANSITIONS`)."""


def new_lookup_code() -> str:
    """A random lookup code `XXXXX-XXXXX` (10 characters of a 31-letter alphabet, ~49 bits)."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def lookup_code_key(secret: bytes) -> bytes:
    """The key of `derived_lookup_code`, derived from a server secret (HMAC with a fixed label, so the
    same secret used elsewhere gives an unrelated key)."""
    return hmac.new(secret, b"phatnguoi/notice-lookup-code/v1", hashlib.sha256).digest()


def derived_lookup_code(key: bytes, violation_id: int) -> str:
    """The lookup code of a violation's notice: `XXXXX-XXXXX` from HMAC-SHA256(key, violation id).

    Why derived rather than random: the server can show it again (violation page, penalty export, the
    SMS of a notice whose owner was found later) without storing it; the database still holds only its
    hash, and without the key (`lookup_code_key` of the server's secret) it cannot be computed. Rotating
    the secret keeps issued codes valid (their hashes are stored) but they can no longer be shown.
    """
    n = int.from_bytes(hmac.new(key, f"violation:{violation_id}".encode(), hashlib.sha256).digest(), "big")
    chars = []
    for _ in range(10):  # 256 bits, 10 digits base 31 (~50 bits): the bias is ~2^-200
        n, r = divmod(n, len(_CODE_ALPHABET))
        chars.append(_CODE_ALPHABET[r])
    return f"{''.join(chars[:5])}-{''.join(chars[5:])}"


def lookup_code_of(key: bytes, notice: Notice) -> str | None:
    """The notice's lookup code when it is the derived one (its hash matches), else None (a random code
    from before, or a key derived from another secret)."""
    code = derived_lookup_code(key, notice.violation_id)
    return code if hmac.compare_digest(lookup_code_hash(code), notice.lookup_code_hash) else None


def class_hold_reason(violation: Violation, owner: OwnerRecord | None) -> str | None:
    """Why the notice of `violation` must wait for a supervisor although the registry knows its plate:
    the registered vehicle (`owner.vehicle_class`) is of another regime than the class the violation is
    fined as (`violation.vehicle_class`, the reviewer's correction once there is one) — car, bus and
    truck are one regime (`REGIME_OF_CLASS`), so the fine would be another article's. In Vietnamese,
    for staff. None when the regimes agree, or the registry or the catalogue does not know a class."""
    if owner is None or owner.vehicle_class is None:
        return None
    registered = REGIME_OF_CLASS.get(owner.vehicle_class)
    detected = REGIME_OF_CLASS.get(violation.vehicle_class)
    if registered is None or detected is None or registered == detected:
        return None
    vi = labels("vi")

    def name(vehicle_class: str) -> str:
        return vi.get(f"vehicle.{vehicle_class}", vehicle_class)

    plate = formatted_plate(violation.plate_key or owner.plate)
    return (
        f"Loại xe không khớp: đăng ký xe ghi biển {plate} là {name(owner.vehicle_class)}, "
        f"vi phạm được ghi nhận là {name(violation.vehicle_class)}; mức phạt của hai loại xe khác nhau. "
        "Thông báo và tin nhắn được giữ lại: chỉ huy xem lại ảnh, mở lại vi phạm và xác nhận với loại xe "
        "(hoặc biển số) đúng."
    )


@dataclass(frozen=True, slots=True)
class NoticeResult:
    """`create_notice`'s answer. `code` is the lookup code, present only when the notice was created
    by this call (it is not stored and cannot be shown again); `owner` is what the registry said."""

    notice: Notice
    created: bool
    code: str | None
    owner: OwnerRecord | None


def create_notice(
    session: Session,
    violation_id: int,
    registry: RegistryAdapter,
    *,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
    on_created: Callable[[Notice, str, OwnerRecord], None] | None = None,
    code: str | None = None,
) -> NoticeResult:
    """The notice of a confirmed violation, created if it has none (in the caller's transaction).

    Args:
        registry: where the owner comes from; the read is audited (`owner.read`).
        on_created: called once with (notice, code, owner) when a notice was created for a reachable
            owner — the SMS outbox enqueues its alert there (`api.notices.sms.enqueue_alert`). Not
            called for a notice held because the registry's vehicle class disagrees
            (`class_hold_reason`): it is created `awaiting_owner`, without an owner, with its reason.
        code: the lookup code to give the notice (`derived_lookup_code`); None: a random one.

    Raises:
        NoticeError: no such violation, or it is not confirmed.
    """
    v = session.get(Violation, violation_id)
    if v is None:
        raise NoticeError(f"violation {violation_id} not found")
    if v.status != "confirmed":
        raise NoticeError(f"violation {violation_id} is {v.status}, not confirmed")
    existing = _notice_of(session, violation_id)
    if existing is not None:
        return NoticeResult(existing, False, None, None)
    owner = None
    if v.plate_key:
        owner = read_owner(session, registry, v.plate_key, actor=actor, purpose="notice", ip=ip)
    hold = class_hold_reason(v, owner)
    reached = owner is not None and owner.owner_id is not None and hold is None
    code = code or new_lookup_code()
    notice = Notice(
        violation_id=violation_id,
        owner_id=owner.owner_id if reached and owner is not None else None,
        lookup_code_hash=lookup_code_hash(code),
        status="created" if reached else "awaiting_owner",
        created_at=now or utcnow(),
        hold_reason=hold,
    )
    # A savepoint: a concurrent creator wins the unique violation_id, and this call returns its notice.
    try:
        with session.begin_nested():
            session.add(notice)
            session.flush()
    except IntegrityError:
        existing = _notice_of(session, violation_id)
        if existing is None:
            raise
        return NoticeResult(existing, False, None, None)
    audit.record(
        session,
        actor=actor,
        action="notice.create",
        object_type="notice",
        object_id=str(notice.id),
        detail={"violation_id": violation_id, "status": notice.status, "hold": hold},
        ip=ip,
    )
    if hold is not None:
        log.warning("notice %d of violation %d held: registry class differs", notice.id, violation_id)
    if on_created is not None and reached and owner is not None:
        on_created(notice, code, owner)
    return NoticeResult(notice, True, code, owner)


def create_pending_notices(
    sessions: sessionmaker[Session],
    registry_for: Callable[[Session], RegistryAdapter],
    *,
    actor: str = "system:notices",
    on_created_for: Callable[[Session], Callable[[Notice, str, OwnerRecord], None]] | None = None,
    limit: int = 500,
    code_for: Callable[[int], str] | None = None,
) -> int:
    """Create the notice of every confirmed violation that has none (a periodic job; one transaction
    per violation, so one failure does not hold the others back). Returns how many were created.

    `code_for(violation_id)` gives each notice its code (`derived_lookup_code`, so staff can show it
    again); without it the codes are random and shown to no one but the SMS.
    """
    with sessions() as session:
        ids = session.scalars(
            select(Violation.id)
            .outerjoin(Notice, Notice.violation_id == Violation.id)
            .where(Violation.status == "confirmed", Notice.id.is_(None))
            .order_by(Violation.id)
            .limit(limit)
        ).all()
    created = 0
    for vid in ids:
        with sessions() as session:
            on_created = on_created_for(session) if on_created_for is not None else None
            result = create_notice(
                session,
                vid,
                registry_for(session),
                actor=actor,
                on_created=on_created,
                code=code_for(vid) if code_for is not None else None,
            )
            session.commit()
            created += int(result.created)
    return created


def _notice_of(session: Session, violation_id: int) -> Notice | None:
    return session.scalars(select(Notice).where(Notice.violation_id == violation_id)).one_or_none()


def transition(
    session: Session,
    notice: Notice,
    to: str,
    *,
    actor: str,
    note: str | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> Notice:
    """Move a notice to state `to`, stamp its time and audit it (in the caller's transaction).

    Raises:
        NoticeError: `to` is not reachable from the notice's state (see `TRANSITIONS`).
    """
    allowed = TRANSITIONS.get(notice.status, frozenset())
    if to not in allowed:
        raise NoticeError(f"notice {notice.id}: {notice.status} → {to} is not allowed")
    at = now or utcnow()
    before = notice.status
    notice.status = to
    notice.hold_reason = None  # only an `awaiting_owner` notice is held, and no transition leads there
    if to == "sms_sent":
        notice.sent_at = notice.sent_at or at
    elif to == "posted":
        notice.posted_at = at
        v = session.get(Violation, notice.violation_id)
        remember_plate(session, notice, None if v is None else v.plate_key, now=at)
    elif to == "responded":
        notice.responded_at = at
    elif to == "escalated_20d":
        notice.escalated_at = at
    elif to == "closed":
        notice.closed_at = at
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"notice.{to}",
        object_type="notice",
        object_id=str(notice.id),
        detail={"from": before, "to": to, "note": note},
        ip=ip,
    )
    return notice


def remember_plate(
    session: Session, notice: Notice, plate_key: str | None, *, now: datetime | None = None
) -> None:
    """Remember that the notice's lookup code was given out with `plate_key` (compact) to its current
    owner (in the caller's transaction; once per notice, plate and owner). Nothing without an owner or
    a plate."""
    if notice.owner_id is None or not plate_key:
        return
    key = plate_key.upper()
    known = session.scalar(
        select(NoticePlate.id).where(
            NoticePlate.notice_id == notice.id,
            NoticePlate.plate_key == key,
            NoticePlate.owner_id == notice.owner_id,
        )
    )
    if known is not None:
        return
    try:
        with session.begin_nested():  # a concurrent transaction may remember the same one first
            session.add(
                NoticePlate(
                    notice_id=notice.id, plate_key=key, owner_id=notice.owner_id, issued_at=now or utcnow()
                )
            )
            session.flush()
    except IntegrityError:
        pass


def attach_owner(
    session: Session,
    notice: Notice,
    registry: RegistryAdapter,
    *,
    actor: str,
    ip: str | None = None,
) -> OwnerRecord | None:
    """Look the owner of an `awaiting_owner` notice up again; when found, the notice becomes `created`.

    Returns the owner found, None when the registry still has none (the notice keeps waiting), or has
    one whose vehicle class disagrees with the violation's (`class_hold_reason`: the notice keeps
    waiting, with that reason, for a supervisor's new decision or a corrected registry).
    The caller sends the alert: this notice's code was shown once and is not stored, so a new code is
    not made here — the paper notice carries the one staff recorded.

    Raises:
        NoticeError: the notice is not waiting for an owner.
    """
    if notice.status != "awaiting_owner":
        raise NoticeError(f"notice {notice.id} is {notice.status}, not awaiting_owner")
    v = session.get(Violation, notice.violation_id)
    if v is None or not v.plate_key:
        return None
    owner = read_owner(session, registry, v.plate_key, actor=actor, purpose="notice", ip=ip)
    if owner is None or owner.owner_id is None:
        return None
    notice.hold_reason = class_hold_reason(v, owner)
    if notice.hold_reason is not None:
        return None
    notice.owner_id = owner.owner_id
    transition(session, notice, "created", actor=actor, note="owner found", ip=ip)
    return owner


@dataclass(frozen=True, slots=True)
class Clocks:
    """A notice's legal clocks: send the notice by `notice_due_at`; warn the registration bodies at
    `escalate_due_at` (None until posted). `next_action` is what is due next (None: nothing)."""

    notice_due_at: datetime
    escalate_due_at: datetime | None
    next_action: str | None
    due_at: datetime | None
    overdue: bool


#: The latest due moment `due_after` answers (a later one cannot be represented in every time zone).
LAST_DUE: Final = datetime(9999, 12, 31, tzinfo=VIETNAM_TZ).astimezone(UTC)


def due_after(event: datetime, days: int) -> datetime:
    """The end of a period of `days` days that starts with `event` (UTC): 24:00 of the `days`-th day
    after the Vietnam calendar day of `event`, i.e. 00:00 (UTC+7) of the day after that.

    An event at 08:00 or at 23:30 on 1 June, 10 days: due at 00:00 on 12 June, Vietnam time.
    A period that would end after year 9999 ends at `LAST_DUE` (no `OverflowError`).

    Raises:
        ValueError: `event` is naive.
    """
    if event.tzinfo is None:
        raise ValueError("event must be timezone-aware")
    try:
        day = event.astimezone(VIETNAM_TZ).date() + timedelta(days=days + 1)
        return datetime.combine(day, time(0), tzinfo=VIETNAM_TZ).astimezone(UTC)
    except OverflowError:
        return LAST_DUE if days >= 0 else datetime.min.replace(tzinfo=UTC)


def clocks(notice: Notice, occurred_at: datetime, now: datetime | None = None) -> Clocks:
    """The clocks of `notice` (of a violation at `occurred_at`), with the rules of `due_actions`."""
    at = now or utcnow()
    notice_due = due_after(occurred_at, NOTICE_DAYS)
    escalate_due = due_after(notice.posted_at, ESCALATE_DAYS) if notice.posted_at else None
    action: str | None = None
    due: datetime | None = None
    if notice.status == "awaiting_owner":
        action, due = "find_owner", notice_due
    elif notice.status in ("created", "sms_sent"):
        action, due = "send_notice", notice_due
    elif notice.status == "posted":
        action = "escalate"
        due = escalate_due or due_after(notice.created_at, ESCALATE_DAYS)
    return Clocks(notice_due, escalate_due, action, due, due is not None and due <= at)


@dataclass(frozen=True, slots=True)
class DueAction:
    """Something a supervisor must do about a notice, and by when."""

    notice_id: int
    violation_id: int
    status: str
    action: str  # "find_owner" | "send_notice" | "escalate"
    due_at: datetime
    overdue: bool
    hold_reason: str | None = None


def due_actions(session: Session, now: datetime | None = None) -> list[DueAction]:
    """The next action of every open notice, soonest due first.

    - `awaiting_owner`: find the owner — due at the end of the 10th day after the violation (a notice
      held because the registry's vehicle class disagrees carries its `hold_reason`);
    - `created` / `sms_sent` (not yet posted): send the notice — due at the end of the 10th day after
      the violation (an SMS alert is not the legal notice);
    - `posted` without response: warn the registration bodies — due at the end of the 20th day after
      posting (days on the Vietnam calendar, `due_after`).
    """
    at = now or utcnow()
    rows = session.execute(
        select(Notice, Violation.occurred_at)
        .join(Violation, Violation.id == Notice.violation_id)
        .where(
            Notice.status.in_(("awaiting_owner", "created", "sms_sent", "posted")),
            # A notice of a violation back under review (reopened) waits for the new decision.
            Violation.status == "confirmed",
        )
    ).all()
    out: list[DueAction] = []
    for notice, occurred_at in rows:
        c = clocks(notice, occurred_at, at)
        assert c.next_action is not None and c.due_at is not None  # open states only
        out.append(
            DueAction(
                notice.id,
                notice.violation_id,
                notice.status,
                c.next_action,
                c.due_at,
                c.overdue,
                notice.hold_reason,
            )
        )
    out.sort(key=lambda d: (d.due_at, d.notice_id))
    return out
