"""Reading violations with object-level access checks (officers see only their own district)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit
from api.models import EvidenceFile, PenaltyDelivery, User, Violation
from api.schemas import EvidenceFilePublic, PenaltyMessagePublic, PlatePublic, ViolationPublic
from api.storage import EvidenceStore

log = logging.getLogger(__name__)


def visible_violation(session: Session, user: User, violation_id: int) -> Violation | None:
    """The violation if `user` may see it, else None (the caller answers 404 either way, so an
    officer cannot even learn that another district's violation exists)."""
    stmt = select(Violation).where(Violation.id == violation_id)
    if user.role == "officer":
        stmt = stmt.where(Violation.district_id == user.district_id)
    return session.scalars(stmt).one_or_none()


def view_violation(session: Session, user: User, violation_id: int, ip: str) -> Violation | None:
    """`visible_violation`, recording the view in the audit log (committed)."""
    v = visible_violation(session, user, violation_id)
    if v is not None:
        audit.record(
            session,
            actor=f"user:{user.username}",
            action="violation.view",
            object_type="violation",
            object_id=v.id,
            ip=ip,
        )
        session.commit()
    return v


def read_evidence(
    session: Session, store: EvidenceStore, user: User, violation_id: int, name: str, ip: str
) -> tuple[EvidenceFile, bytes] | None:
    """One evidence file's row and bytes if `user` may see the violation (audited), else None.

    Raises:
        FileNotFoundError: the file was deleted by the retention job.
        StorageError: the store could not read it.
    """
    v = visible_violation(session, user, violation_id)
    f = next((f for f in v.files if f.name == name), None) if v is not None else None
    if f is None:
        return None
    if f.deleted_at is not None:
        raise FileNotFoundError(f"{name} was deleted on {f.deleted_at.date().isoformat()} (retention)")
    session.commit()  # not holding a transaction (SQLite: the write lock) while the store reads
    data = store.get(f.storage_uri)
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="evidence.view",
        object_type="violation",
        object_id=violation_id,
        detail={"file": name},
        ip=ip,
    )
    session.commit()
    return f, data


def penalty_messages(session: Session, violation_id: int) -> list[PenaltyMessagePublic]:
    """The violation's messages to the penalty system (its confirmations, and the withdrawals of them
    when reopened), oldest first; empty when there is none."""
    rows = session.execute(
        select(
            PenaltyDelivery.kind,
            PenaltyDelivery.status,
            PenaltyDelivery.attempts,
            PenaltyDelivery.created_at,
            PenaltyDelivery.delivered_at,
            PenaltyDelivery.next_attempt_at,
            PenaltyDelivery.last_status_code,
            PenaltyDelivery.last_error,
        )
        .where(PenaltyDelivery.violation_id == violation_id)
        .order_by(PenaltyDelivery.id)
    ).all()
    return [PenaltyMessagePublic.model_validate(row._asdict()) for row in rows]


def to_public(v: Violation, penalty: Sequence[PenaltyMessagePublic] = ()) -> ViolationPublic:
    """The API view of a violation (`penalty`: its messages to the penalty system, see
    `penalty_messages`)."""
    plate = None
    if v.plate_text is not None or v.plate_compact is not None or v.plate_corrected is not None:
        plate = PlatePublic(
            text=v.plate_text,
            compact=v.plate_compact,
            formatted=v.plate_formatted,
            confidence=v.plate_confidence,
            valid=v.plate_valid,
            lines=v.plate_lines,
            colour=v.plate_colour,
            corrected=v.plate_corrected,
            key=v.plate_key,
        )
    return ViolationPublic(
        id=v.id,
        event_id=v.event_id,
        rule=v.rule,
        legal_reference=v.legal_reference,
        camera_id=v.camera_id,
        district_id=v.district_id,
        device_id=v.device_id,
        occurred_at=v.occurred_at,
        received_at=v.received_at,
        vehicle_class=v.vehicle_class,
        lat=v.lat,
        lon=v.lon,
        plate=plate,
        speed_kmh=v.speed_kmh,
        speed_limit_kmh=v.speed_limit_kmh,
        signal_state=v.signal_state,
        red_for_s=v.red_for_s,
        details=v.details,
        status=v.status,
        reviewed_by=v.reviewed_by,
        reviewed_at=v.reviewed_at,
        decision_reason=v.decision_reason,
        decision_note=v.decision_note,
        evidence_purged_at=v.evidence_purged_at,
        penalty_delivery=penalty[-1].status if penalty else None,
        penalty_messages=list(penalty),
        manifest_sha256=v.manifest_sha256,
        files=[file_public(f) for f in v.files],
    )


def file_public(f: EvidenceFile) -> EvidenceFilePublic:
    """The API view of an evidence file."""
    return EvidenceFilePublic(
        name=f.name,
        kind=f.kind,
        sha256=f.sha256,
        size=f.size,
        media_type=f.media_type,
        deleted=f.deleted_at is not None,
    )
