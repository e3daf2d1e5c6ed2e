"""Notices wired into the review: what a decision does to a violation's notice, and catching up when an
owner appears in the registry later.

- `on_confirmed` (called by `api.services.review.decide` in the decision's transaction): owner lookup →
  notice with its lookup code (`derived_lookup_code`) → SMS alert in the outbox when the owner has a
  phone and SMS is configured. A notice that exists already (a violation reopened and confirmed again)
  is kept: its alert, if it was cancelled by the reopening before it went out, is made due again; an
  alert that was sent is never sent again (one outbox row per notice, `alert_key`). A notice whose
  registered vehicle is of another class regime than the violation's is held without an owner or an
  alert (`api.notices.workflow.class_hold_reason`); the new decision that corrects the class (or the
  plate) gives it its owner and queues the alert, and one that makes them disagree holds it again.
- `on_reopened`: the pending alert is cancelled (the decision is being reconsidered).
- `on_rejected`: the notice is closed and its pending alert cancelled.
- `catch_up` (after a registry import): notices for confirmed violations that have none, and owners for
  `awaiting_owner` notices, whose alerts are then queued.

The SMS outbox itself runs in `api.notices.sms.OutboxThread`, which `api.app` starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.models import Notice, SmsMessage, Violation
from api.notices.registry import DbRegistry, OwnerRecord, RegistryAdapter, read_owner
from api.notices.sms import SmsConfig, SmsTextError, alert_enqueuer, violation_alert_text
from api.notices.workflow import (
    NoticeResult,
    attach_owner,
    class_hold_reason,
    create_notice,
    create_pending_notices,
    derived_lookup_code,
    lookup_code_key,
    lookup_code_of,
    remember_plate,
    transition,
)
from api.settings import Settings

log = logging.getLogger(__name__)


def _db_registry(session: Session) -> RegistryAdapter:
    return DbRegistry(session)


@dataclass(frozen=True, slots=True)
class NoticeWiring:
    """What the notice side of a decision needs: the lookup-code key, the SMS configuration (None: no
    alerts are queued) and where owners come from."""

    code_key: bytes
    sms: SmsConfig | None = None
    registry_for: Callable[[Session], RegistryAdapter] = field(default=_db_registry)

    def code_for(self, violation_id: int) -> str:
        """The lookup code of the violation's notice."""
        return derived_lookup_code(self.code_key, violation_id)


def code_key_for(settings: Settings) -> bytes:
    """The server's lookup-code key, derived from its JWT secret (see `derived_lookup_code`)."""
    return lookup_code_key(settings.jwt_secret.get_secret_value().encode("utf-8"))


def wiring_for(settings: Settings, sms: SmsConfig | None = None) -> NoticeWiring:
    """`NoticeWiring` of a server with `settings` (the database registry)."""
    return NoticeWiring(code_key=code_key_for(settings), sms=sms)


def _alert_of(session: Session, notice: Notice) -> SmsMessage | None:
    """The notice's latest alert (a notice given to another owner has one per owner)."""
    return session.scalars(
        select(SmsMessage).where(SmsMessage.notice_id == notice.id).order_by(SmsMessage.id.desc()).limit(1)
    ).first()


def on_confirmed(
    session: Session,
    violation_id: int,
    wiring: NoticeWiring,
    *,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> NoticeResult:
    """The notice of a just-confirmed violation (created, or the existing one made current again), in
    the caller's transaction.

    Raises:
        NoticeError: the violation does not exist or is not confirmed.
    """
    on_created = alert_enqueuer(session, wiring.sms) if wiring.sms is not None else None
    result = create_notice(
        session,
        violation_id,
        wiring.registry_for(session),
        actor=actor,
        ip=ip,
        now=now,
        on_created=on_created,
        code=wiring.code_for(violation_id),
    )
    if result.created:
        return result
    notice = result.notice
    v = session.get(Violation, violation_id)
    owner = None
    if v is not None and v.plate_key:
        registry = wiring.registry_for(session)
        owner = read_owner(session, registry, v.plate_key, actor=actor, purpose="notice", ip=ip)
    hold = None if v is None else class_hold_reason(v, owner)
    if hold is not None:
        owner = None  # not this notice's owner until the classes agree
    owner_id = None if owner is None else owner.owner_id
    if owner_id != notice.owner_id:
        _reassign(session, notice, owner, wiring, actor=actor, ip=ip, hold=hold)
        session.flush()
        return result
    if notice.status == "awaiting_owner" and notice.hold_reason != hold:
        notice.hold_reason = hold  # still held (another reason now), or no longer held but still ownerless
    if notice.status == "closed" and notice.responded_at is None:
        # Closed because the violation was rejected (`on_rejected`), now confirmed after a reopening:
        # the same notice (same code, same outbox key) carries on, so nothing can be sent twice.
        before_closed = "awaiting_owner" if notice.owner_id is None else "created"
        notice.status, notice.closed_at = before_closed, None
        notice.hold_reason = hold if before_closed == "awaiting_owner" else None
        audit.record(
            session,
            actor=actor,
            action="notice.reopen",
            object_type="notice",
            object_id=str(notice.id),
            detail={"violation_id": violation_id, "status": notice.status},
            ip=ip,
        )
    alert = _alert_of(session, notice)
    rearmed = (
        alert is not None
        and alert.status == "cancelled"
        and alert.sent_at is None
        and _rearm(session, alert, notice, wiring)
    )
    if rearmed:
        audit.record(
            session,
            actor=actor,
            action="sms.rearm",
            object_type="notice",
            object_id=str(notice.id),
            detail={"violation_id": violation_id},
            ip=ip,
        )
    session.flush()
    return result


def _rearm(session: Session, alert: SmsMessage, notice: Notice, wiring: NoticeWiring) -> bool:
    """Make a cancelled, never-sent alert due again, its text written anew: the plate may have been
    corrected since it was queued (to another vehicle of the same owner), and the old text would name
    the misread plate. The row (and so its idempotency key) is kept: a notice is never alerted twice.
    Left cancelled, and False returned, when the text cannot be written (no SMS configuration, a lookup
    code that cannot be derived again, a text too long)."""
    v = session.get(Violation, notice.violation_id)
    if v is None or wiring.sms is None:
        return False
    code = lookup_code_of(wiring.code_key, notice)
    if code is None:
        log.warning("notice %d: its code cannot be derived again; alert not re-armed", notice.id)
        return False
    try:
        text = violation_alert_text(wiring.sms, v, code)
    except SmsTextError:
        log.exception("notice %d: SMS alert not re-armed", notice.id)
        return False
    alert.body = text
    alert.status, alert.next_attempt_at, alert.last_error = "pending", None, None
    remember_plate(session, notice, v.plate_key)
    return True


def _reassign(
    session: Session,
    notice: Notice,
    owner: OwnerRecord | None,
    wiring: NoticeWiring,
    *,
    actor: str,
    ip: str | None,
    hold: str | None = None,
) -> None:
    """The violation was confirmed again with a plate of another owner (a misread corrected after a
    reopening), or its class now agrees, or no longer agrees, with the registry's (`hold`: why the
    notice is held, with no owner): the notice starts over for that owner. Alerts not yet sent to the
    previous owner are cancelled, the new owner's alert is queued, and the notice's clocks restart from
    the new owner's notice. What the previous owner was sent stays in the outbox rows and the audit
    log."""
    before = {"owner_id": notice.owner_id, "status": notice.status}
    session.execute(
        update(SmsMessage)
        .where(SmsMessage.notice_id == notice.id, SmsMessage.status == "pending")
        .values(status="cancelled", next_attempt_at=None)
        .execution_options(synchronize_session="fetch")
    )
    notice.owner_id = None if owner is None else owner.owner_id
    notice.status = "awaiting_owner" if notice.owner_id is None else "created"
    notice.hold_reason = hold if notice.owner_id is None else None
    notice.attempts, notice.next_attempt_at = 0, None
    notice.provider_message_id = notice.last_error = None
    notice.sent_at = notice.posted_at = notice.responded_at = notice.escalated_at = notice.closed_at = None
    audit.record(
        session,
        actor=actor,
        action="notice.reassign",
        object_type="notice",
        object_id=str(notice.id),
        detail={
            "violation_id": notice.violation_id,
            "before": before,
            "owner_id": notice.owner_id,
            "hold": notice.hold_reason,
        },
        ip=ip,
    )
    if owner is not None and owner.owner_id is not None and wiring.sms is not None:
        alert_enqueuer(session, wiring.sms)(notice, wiring.code_for(notice.violation_id), owner)
        theirs = session.scalars(
            select(SmsMessage)
            .where(SmsMessage.notice_id == notice.id, SmsMessage.phone == owner.phone)
            .order_by(SmsMessage.id.desc())
            .limit(1)
        ).first()
        if theirs is not None and theirs.status == "cancelled" and theirs.sent_at is None:
            # This owner's alert, cancelled by an earlier reassignment.
            _rearm(session, theirs, notice, wiring)


def _cancel_pending_alert(session: Session, notice: Notice, *, actor: str, ip: str | None) -> bool:
    result = session.execute(
        update(SmsMessage)
        .where(SmsMessage.notice_id == notice.id, SmsMessage.status == "pending")
        .values(status="cancelled", next_attempt_at=None)
        .execution_options(synchronize_session="fetch")
    )
    cancelled = bool(result.rowcount)  # type: ignore[attr-defined]
    if cancelled:
        audit.record(
            session,
            actor=actor,
            action="sms.cancel",
            object_type="notice",
            object_id=str(notice.id),
            detail={"violation_id": notice.violation_id},
            ip=ip,
        )
    return cancelled


def _notice_of(session: Session, violation_id: int) -> Notice | None:
    return session.scalars(select(Notice).where(Notice.violation_id == violation_id)).one_or_none()


def on_reopened(session: Session, violation_id: int, *, actor: str, ip: str | None = None) -> None:
    """A confirmed violation goes back to review: its notice's alert, if not sent yet, is cancelled
    (made due again by `on_confirmed`). In the caller's transaction."""
    notice = _notice_of(session, violation_id)
    if notice is not None:
        _cancel_pending_alert(session, notice, actor=actor, ip=ip)


def on_rejected(session: Session, violation_id: int, *, actor: str, ip: str | None = None) -> None:
    """A violation (reopened after a confirmation) is rejected: its notice, if any, is closed and its
    pending alert cancelled. In the caller's transaction."""
    notice = _notice_of(session, violation_id)
    if notice is None:
        return
    _cancel_pending_alert(session, notice, actor=actor, ip=ip)
    if notice.status != "closed":
        transition(session, notice, "closed", actor=actor, note="violation rejected on review", ip=ip)


def attach_waiting_owners(
    sessions: sessionmaker[Session],
    wiring: NoticeWiring,
    *,
    actor: str = "system:notices",
    limit: int = 500,
    plates: Collection[str] | None = None,
) -> int:
    """Look the owner of `awaiting_owner` notices (of confirmed violations) up again; a notice whose
    owner is found becomes `created` and its alert is queued (one transaction per notice).

    Args:
        limit: how many notices are read per page; every waiting notice is looked at, page after page
            in id order, so old notices whose owner stays unknown do not hide newer ones.
        plates: only the notices of violations with these compact plates (`plate_key`): the plates a
            registry import just wrote. None: every waiting notice.

    Returns how many found their owner.
    """
    if plates is None:
        groups: list[list[str] | None] = [None]
    else:
        wanted = sorted(set(plates))
        groups = [wanted[i : i + _PLATES_PER_QUERY] for i in range(0, len(wanted), _PLATES_PER_QUERY)]
    found = 0
    for group in groups:
        after = 0
        while True:
            query = (
                select(Notice.id)
                .join(Violation, Violation.id == Notice.violation_id)
                .where(Notice.status == "awaiting_owner", Violation.status == "confirmed", Notice.id > after)
                .order_by(Notice.id)
                .limit(limit)
            )
            if group is not None:
                query = query.where(Violation.plate_key.in_(group))
            with sessions() as session:
                ids = session.scalars(query).all()
                session.commit()
            for notice_id in ids:
                found += _attach_waiting_owner(sessions, wiring, notice_id, actor=actor)
            if len(ids) < limit:
                break
            after = ids[-1]
    return found


# Plates in one `IN (...)` (SQLite allows 32766 bound parameters, older builds 999).
_PLATES_PER_QUERY = 500


def _attach_waiting_owner(
    sessions: sessionmaker[Session], wiring: NoticeWiring, notice_id: int, *, actor: str
) -> int:
    """1 when the notice's owner was found now (its alert queued), else 0; in its own transaction."""
    with sessions() as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.status != "awaiting_owner":
            return 0
        owner = attach_owner(session, notice, wiring.registry_for(session), actor=actor)
        if owner is None:
            session.commit()
            return 0
        if wiring.sms is not None:
            code = lookup_code_of(wiring.code_key, notice)
            if code is not None:
                alert_enqueuer(session, wiring.sms)(notice, code, owner)
            else:
                log.warning("notice %d: its code cannot be derived again; no SMS", notice.id)
        session.commit()
        return 1


@dataclass(frozen=True, slots=True)
class CatchUpReport:
    """What `catch_up` did."""

    created: int
    owners_found: int


def catch_up(
    sessions: sessionmaker[Session],
    wiring: NoticeWiring,
    *,
    actor: str = "system:notices",
    plates: Collection[str] | None = None,
) -> CatchUpReport:
    """Notices for confirmed violations that have none, then owners for the waiting ones (run after a
    registry import, or by a deployment's job when its registry adapter changes). `plates` (the
    import's `ImportReport.plates`) narrows the owner search to those plates; None: every waiting
    notice."""

    sms = wiring.sms

    def on_created_for(session: Session) -> Callable[[Notice, str, OwnerRecord], None]:
        assert sms is not None  # only passed when there is an SMS configuration
        return alert_enqueuer(session, sms)

    created = create_pending_notices(
        sessions,
        wiring.registry_for,
        actor=actor,
        on_created_for=on_created_for if sms is not None else None,
        code_for=wiring.code_for,
    )
    found = attach_waiting_owners(sessions, wiring, actor=actor, plates=plates)
    if created or found:
        log.info("notices caught up: %d created, %d owners found", created, found)
    return CatchUpReport(created, found)
