"""The notice workflow on a confirmed violation (Circular 73/2024/TT-BCA, Art. 15 and 24).

confirmed violation → owner from the registry (`read_owner`, audited) → one `Notice` with a lookup code
(only its hash is stored; the code is returned once, to the staff member or the SMS) → states:

```
awaiting_owner ─► created ─► sms_sent ─► posted ─► responded ─► closed
      │              │  └───────────────►  │  └─► escalated_20d ─┘
      └──────────────┴──────────────────────┴────────────────────► closed
```

`awaiting_owner`: the plate has no owner in the registry (or no plate was read); the notice waits,
visible in the due list, until `attach_owner` finds one. Every transition is checked against
`TRANSITIONS` and written to the audit log in the caller's transaction.

Clocks (calendar days, as the circular counts them): the notice must be sent within `NOTICE_DAYS` (10)
of the violation; `ESCALATE_DAYS` (20) after it was sent (posted or SMS, whichever was first) without a
response, the registration / inspection bodies are warned. `due_actions` lists what supervisors must
do, with the due time and whether it is overdue.

Idempotent: a violation has at most one notice (unique `violation_id`); `create_notice` twice, even
from two processes at once, returns the existing one the second time.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.db import utcnow
from api.errors import ServerError
from api.models import Notice, Violation
from api.notices.registry import OwnerRecord, RegistryAdapter, read_owner
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
) -> NoticeResult:
    """The notice of a confirmed violation, created if it has none (in the caller's transaction).

    Args:
        registry: where the owner comes from; the read is audited (`owner.read`).
        on_created: called once with (notice, code, owner) when a notice was created for a reachable
            owner — the SMS outbox enqueues its alert there (`api.notices.sms.enqueue_alert`).

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
    code = new_lookup_code()
    notice = Notice(
        violation_id=violation_id,
        owner_id=None if owner is None else owner.owner_id,
        lookup_code_hash=lookup_code_hash(code),
        status="created" if owner is not None and owner.owner_id is not None else "awaiting_owner",
        created_at=now or utcnow(),
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
        detail={"violation_id": violation_id, "status": notice.status},
        ip=ip,
    )
    if on_created is not None and owner is not None and owner.owner_id is not None:
        on_created(notice, code, owner)
    return NoticeResult(notice, True, code, owner)


def create_pending_notices(
    sessions: sessionmaker[Session],
    registry_for: Callable[[Session], RegistryAdapter],
    *,
    actor: str = "system:notices",
    on_created_for: Callable[[Session], Callable[[Notice, str, OwnerRecord], None]] | None = None,
    limit: int = 500,
) -> int:
    """Create the notice of every confirmed violation that has none (a periodic job; one transaction
    per violation, so one failure does not hold the others back). Returns how many were created.

    The lookup codes of notices made here are not shown to anyone but the SMS; staff print the paper
    notice without a code or re-issue one (a code cannot be recovered from its hash).
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
            result = create_notice(session, vid, registry_for(session), actor=actor, on_created=on_created)
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
    if to == "sms_sent":
        notice.sent_at = notice.sent_at or at
    elif to == "posted":
        notice.posted_at = at
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


def attach_owner(
    session: Session,
    notice: Notice,
    registry: RegistryAdapter,
    *,
    actor: str,
    ip: str | None = None,
) -> OwnerRecord | None:
    """Look the owner of an `awaiting_owner` notice up again; when found, the notice becomes `created`.

    Returns the owner found, None when the registry still has none (the notice keeps waiting).
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
    notice.owner_id = owner.owner_id
    transition(session, notice, "created", actor=actor, note="owner found", ip=ip)
    return owner


@dataclass(frozen=True, slots=True)
class DueAction:
    """Something a supervisor must do about a notice, and by when."""

    notice_id: int
    violation_id: int
    status: str
    action: str  # "find_owner" | "send_notice" | "escalate"
    due_at: datetime
    overdue: bool


def due_actions(session: Session, now: datetime | None = None) -> list[DueAction]:
    """The next action of every open notice, soonest due first.

    - `awaiting_owner`: find the owner — due 10 days after the violation;
    - `created` / `sms_sent` (not yet posted): send the notice — due 10 days after the violation
      (an SMS alert is not the legal notice);
    - `posted` without response: warn the registration bodies — due 20 days after posting.
    """
    at = now or utcnow()
    rows = session.execute(
        select(Notice, Violation.occurred_at)
        .join(Violation, Violation.id == Notice.violation_id)
        .where(Notice.status.in_(("awaiting_owner", "created", "sms_sent", "posted")))
    ).all()
    out: list[DueAction] = []
    for notice, occurred_at in rows:
        if notice.status == "awaiting_owner":
            action, due = "find_owner", occurred_at + timedelta(days=NOTICE_DAYS)
        elif notice.status in ("created", "sms_sent"):
            action, due = "send_notice", occurred_at + timedelta(days=NOTICE_DAYS)
        else:
            sent = notice.posted_at or notice.created_at
            action, due = "escalate", sent + timedelta(days=ESCALATE_DAYS)
        out.append(DueAction(notice.id, notice.violation_id, notice.status, action, due, due <= at))
    out.sort(key=lambda d: (d.due_at, d.notice_id))
    return out
