"""The review list (filters, plate search, keyset pagination), decisions and reopening.

Object-level access: officers see and decide only violations of their own district (the district
condition is part of every query, so a foreign violation is "not found"); supervisors and admins see
all districts. Every list page, decision and reopening is written to the audit log.

Query plans (why the indexes of migrations 0001/0002 are what they are): the list is always ordered
`occurred_at DESC, id DESC` and limited, so the database walks one of the time-ordered indexes
backwards — `(district_id, occurred_at, id)` for officers, `(status, district_id, occurred_at, id)`
when they filter by status, `(occurred_at, id)` / `(status, occurred_at, id)` for everyone else —
and stops after a page. A plate condition goes through the plate index instead when it is selective:
an exact plate, and on PostgreSQL a wildcard pattern (prefix: B-tree; infix: pg_trgm), in the same
query; a distance-1 neighbourhood, and on SQLite a wildcard pattern, in a query of its own first
(`_narrowed`), whose few row ids then replace the condition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from api import audit, webhook
from api.db import is_postgresql, utcnow
from api.errors import RefusedError
from api.models import User, Violation
from api.notices import service as notices
from api.notices.catalogue import legal_basis
from api.notices.workflow import lookup_code_of
from api.pagination import Cursor
from api.plate_query import PlateQuery, glob_pattern, like_pattern, neighbours
from api.schemas import DecisionCreate, ViolationPagePublic, ViolationSummaryPublic
from api.services.violations import checked_reading, detected_class, visible_violation
from api.settings import Settings

log = logging.getLogger(__name__)

# Rows examined per page by a distance-2 fuzzy search (computing the distance row by row): the C
# function of PostgreSQL's fuzzystrmatch costs ~1 µs a row, the Python function SQLite calls ~10 µs.
FUZZY2_WINDOW = {"postgresql": 20_000, "sqlite": 5_000}


@dataclass(frozen=True, slots=True)
class ViolationFilter:
    """Conditions of the review list; None means "any"."""

    status: str | None = None
    rule: str | None = None
    camera_id: str | None = None
    district_id: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    plate: PlateQuery | None = None

    def describe(self) -> dict[str, Any]:
        """The conditions that were given, for the audit log."""
        out: dict[str, Any] = {
            k: v
            for k, v in (
                ("status", self.status),
                ("rule", self.rule),
                ("camera", self.camera_id),
                ("district", self.district_id),
                ("from", self.occurred_from.isoformat() if self.occurred_from else None),
                ("to", self.occurred_to.isoformat() if self.occurred_to else None),
            )
            if v is not None
        }
        if self.plate is not None:
            out["plate"] = self.plate.text
            if self.plate.max_distance:
                out["fuzzy"] = self.plate.max_distance
        return out


def scope_district(user: User, requested: str | None) -> str | None:
    """The district condition for `user`: an officer's own district whatever was asked.

    Raises:
        RefusedError: 403 when an officer asks for another district.
    """
    if user.role != "officer":
        return requested
    if requested is not None and requested != user.district_id:
        raise RefusedError(403, "officers see only their own district")
    return user.district_id


def _equals(column: Any, value: str, indexed: bool) -> ColumnElement[bool]:
    """`column = value`, or the same test in a form no index serves (`coalesce(column, '') = value`:
    the same rows for the non-empty values these filters take)."""
    if indexed:
        return column == value  # type: ignore[no-any-return]
    return func.coalesce(column, "") == value


def _conditions(
    f: ViolationFilter, district: str | None, *, indexed: bool = True
) -> list[ColumnElement[bool]]:
    """The filter conditions. `indexed=False` keeps PostgreSQL from using the district/status/rule/camera
    indexes for them: with a plate condition present the plate index must drive the query, but the
    planner likes to AND its bitmap with a bitmap of a whole district (~180,000 rows at a million:
    15-30 ms), or to walk a district's time index for a rare prefix (120 ms); filtered after the plate
    lookup, the same page costs 1-5 ms."""
    conds: list[ColumnElement[bool]] = []
    if district is not None:
        conds.append(_equals(Violation.district_id, district, indexed))
    if f.status is not None:
        conds.append(_equals(Violation.status, f.status, indexed))
    if f.rule is not None:
        conds.append(_equals(Violation.rule, f.rule, indexed))
    if f.camera_id is not None:
        conds.append(_equals(Violation.camera_id, f.camera_id, indexed))
    if f.occurred_from is not None:
        conds.append(Violation.occurred_at >= f.occurred_from)
    if f.occurred_to is not None:
        conds.append(Violation.occurred_at < f.occurred_to)
    return conds


def _plate_condition(q: PlateQuery, postgresql: bool) -> ColumnElement[bool]:
    if q.kind == "exact":
        return Violation.plate_key == q.text
    if q.kind == "wildcard":
        # PostgreSQL: LIKE uses the text_pattern_ops index for a prefix and pg_trgm for the rest.
        # SQLite: GLOB (case-sensitive, same wildcards) uses the plain index for the literal prefix.
        if postgresql:
            return Violation.plate_key.like(like_pattern(q))
        return Violation.plate_key.op("GLOB")(glob_pattern(q))
    if q.max_distance == 1:
        near = sorted(neighbours(q.text))
        if postgresql:  # one array parameter instead of ~700
            return Violation.plate_key == any_(bindparam("near", near, type_=ARRAY(String)))
        return Violation.plate_key.in_(near)
    raise ValueError("distance-2 queries are answered by _fuzzy2_page")


def keyset_after(cursor: Cursor, postgresql: bool, *, newest_first: bool = True) -> ColumnElement[bool]:
    """Rows after `cursor` in (occurred_at, id) order, descending or ascending."""
    t, i = cursor.occurred_at, cursor.id
    if postgresql:
        # A row comparison is an index range condition on PostgreSQL.
        row = tuple_(Violation.occurred_at, Violation.id)
        return row < tuple_(t, i) if newest_first else row > tuple_(t, i)
    # SQLite: the expanded form, whose first term bounds the index range.
    if newest_first:
        return and_(Violation.occurred_at <= t, or_(Violation.occurred_at < t, Violation.id < i))
    return and_(Violation.occurred_at >= t, or_(Violation.occurred_at > t, Violation.id > i))


def _not_older_than(t: datetime, i: int, postgresql: bool) -> ColumnElement[bool]:
    """Rows at or before (t, i) in newest-first order: (occurred_at, id) >= (t, i)."""
    if postgresql:
        return tuple_(Violation.occurred_at, Violation.id) >= tuple_(t, i)
    return and_(Violation.occurred_at >= t, or_(Violation.occurred_at > t, Violation.id >= i))


_SUMMARY = (
    Violation.id,
    Violation.event_id,
    Violation.rule,
    Violation.camera_id,
    Violation.district_id,
    Violation.occurred_at,
    Violation.vehicle_class,
    Violation.plate_key,
    Violation.plate_formatted,
    Violation.plate_confidence,
    Violation.status,
    Violation.reviewed_at,
    Violation.evidence_purged_at,
)
_NEWEST_FIRST = (Violation.occurred_at.desc(), Violation.id.desc())


def _summary(row: Any) -> ViolationSummaryPublic:
    return ViolationSummaryPublic(
        id=row.id,
        event_id=row.event_id,
        rule=row.rule,
        camera_id=row.camera_id,
        district_id=row.district_id,
        occurred_at=row.occurred_at,
        vehicle_class=row.vehicle_class,
        plate=row.plate_key,
        plate_formatted=row.plate_formatted,
        plate_confidence=row.plate_confidence,
        status=row.status,
        reviewed_at=row.reviewed_at,
        evidence_purged=row.evidence_purged_at is not None,
    )


def _page(rows: list[Any], limit: int) -> tuple[list[ViolationSummaryPublic], str | None]:
    items = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return items, Cursor(last.occurred_at, last.id).encode() if last is not None else None


def _fuzzy2_page(
    session: Session, conds: list[ColumnElement[bool]], q: PlateQuery, limit: int, postgresql: bool
) -> tuple[list[ViolationSummaryPublic], str | None]:
    """Distance-2 search over the next window of rows (newest first) that meet the other conditions.

    The window's far edge comes first, from the time index alone (an index-only walk of `window`
    entries); the distance is then computed only for rows between the cursor and that edge. The next
    cursor is after the last match when the page filled up, else the window's edge when there are rows
    beyond it, else None (nothing left).
    """
    window_rows = FUZZY2_WINDOW["postgresql" if postgresql else "sqlite"]
    edge = session.execute(
        select(Violation.occurred_at, Violation.id)
        .where(*conds)
        .order_by(*_NEWEST_FIRST)
        .offset(window_rows - 1)
        .limit(1)
    ).first()
    bounded = list(conds)
    if edge is not None:
        bounded.append(_not_older_than(edge.occurred_at, edge.id, postgresql))
    distance: ColumnElement[int]
    if postgresql:
        # levenshtein refuses strings over 255 characters; CASE makes sure it never sees one (the
        # planner may evaluate the length condition below after it).
        distance = case(
            (
                func.length(Violation.plate_key) <= 255,
                func.levenshtein_less_equal(Violation.plate_key, q.text, 2),
            ),
            else_=3,
        )
    else:
        distance = func.pn_editdist(Violation.plate_key, q.text, 2)
    rows = list(
        session.execute(
            select(*_SUMMARY)
            .where(
                *bounded,
                Violation.plate_key.is_not(None),
                # Longer or shorter by more than 2 cannot be within 2 edits.
                func.length(Violation.plate_key).between(len(q.text) - 2, len(q.text) + 2),
                distance <= 2,
            )
            .order_by(*_NEWEST_FIRST)
            .limit(limit + 1)
        ).all()
    )
    items, cursor = _page(rows, limit)
    if cursor is None and edge is not None:
        cursor = Cursor(edge.occurred_at, edge.id).encode()
    return items, cursor


# A plate condition that matches at most this many rows is looked up on its own first (see `_narrowed`).
NARROW_MAX_IDS = 2000


def _narrowed(session: Session, plate_cond: ColumnElement[bool], postgresql: bool) -> ColumnElement[bool]:
    """The plate condition as a list of row ids when it matches few rows, else unchanged.

    Why: in one query with the district, status and time conditions the planners misjudge how many rows
    a ~700-plate neighbourhood matches (PostgreSQL then ANDs a bitmap of the whole district: 10-70 ms
    at a million rows) and, on SQLite (no histograms), how many a wildcard pattern matches (it may walk
    the whole district for a rare prefix). Looked up alone through the plate index the matches cost
    ~1 ms; when there are many, the one-query plan (walk the time index, filter) is the right one
    anyway. PostgreSQL estimates patterns well enough from the finer plate statistics of migration
    0002, so it gets wildcard patterns in one query.
    """
    ids = list(session.scalars(select(Violation.id).where(plate_cond).limit(NARROW_MAX_IDS + 1)))
    if len(ids) > NARROW_MAX_IDS:
        return plate_cond
    if postgresql:
        return Violation.id == any_(bindparam("plate_ids", ids, type_=ARRAY(BigInteger)))
    return Violation.id.in_(ids)


def list_violations(
    session: Session,
    audit_session: Session,
    user: User,
    f: ViolationFilter,
    *,
    cursor: Cursor | None = None,
    limit: int = 50,
    ip: str | None = None,
) -> ViolationPagePublic:
    """One page of violations `user` may see, newest first, and its audit entry.

    Args:
        session: reads the page (a read-only session).
        audit_session: writes the audit entry (the page lists plates: a view of personal data).
        f: the filters; `f.district_id` is checked against an officer's district.
        cursor: the page starts after this position (None: the newest).
        limit: rows per page.

    Raises:
        RefusedError: 403 when an officer asks for another district.
    """
    district = scope_district(user, f.district_id)
    postgresql = is_postgresql(session)
    bounded = f.plate is not None and f.plate.max_distance == 2
    # With a plate condition on PostgreSQL the plate index drives (see `_conditions`); the bounded
    # distance-2 scan walks the time index and needs the filters indexed.
    plate_drives = postgresql and f.plate is not None and not bounded
    conds = _conditions(f, district, indexed=not plate_drives)
    if cursor is not None:
        conds.append(keyset_after(cursor, postgresql))
    if f.plate is not None and bounded:
        items, next_cursor = _fuzzy2_page(session, conds, f.plate, limit, postgresql)
    else:
        if f.plate is not None:
            plate_cond = _plate_condition(f.plate, postgresql)
            if f.plate.kind == "fuzzy" or (f.plate.kind == "wildcard" and not postgresql):
                plate_cond = _narrowed(session, plate_cond, postgresql)
            conds.append(plate_cond)
        stmt = select(*_SUMMARY).where(*conds).order_by(*_NEWEST_FIRST).limit(limit + 1)
        items, next_cursor = _page(list(session.execute(stmt).all()), limit)
    session.commit()
    audit.record(
        audit_session,
        actor=f"user:{user.username}",
        action="violation.list",
        object_type="violation",
        detail={**f.describe(), "after": cursor.encode() if cursor else None, "ids": [i.id for i in items]},
        ip=ip,
    )
    audit_session.commit()
    return ViolationPagePublic(items=items, next_cursor=next_cursor, bounded_scan=bounded)


# ---------------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------------


def _corrected_plate(text: str) -> str:
    """The compact form of a plate typed by a reviewer.

    Raises:
        RefusedError: 422 when it is not a valid Vietnamese plate, or only after repairing OCR-style
            confusions (a person typed it: ask instead of guessing).
    """
    from plates.grammar import parse_vn  # light: no OpenCV / ONNX Runtime behind it

    parsed = parse_vn(text)
    if not parsed.valid or parsed.compact is None:
        raise RefusedError(422, f"plate {text!r} is not a valid Vietnamese plate: {parsed.problem}")
    if parsed.corrections:
        raise RefusedError(422, f"plate {text!r} is not exactly a plate; did you mean {parsed.formatted}?")
    return parsed.compact


def _check_reading(v: Violation) -> None:
    """Refuse to fine the device's plate reading of `v` unless this server's grammar finds it a plate
    (`checked_reading`; the manifest's `valid` is only the device's word).

    Raises:
        RefusedError: 422 asking the reviewer to type the plate.
    """
    reading = checked_reading(v.plate_key, v.plate_formatted)
    if not reading.valid:
        shown = (v.plate_formatted or v.plate_key or "")[:32]
        raise RefusedError(
            422,
            f"the plate read by the device ({shown!r}) is not a valid Vietnamese plate: "
            f"{reading.problem}; type the plate",
        )


@dataclass(frozen=True, slots=True)
class _Reclassed:
    """A violation's facts as `legal_basis` reads them, with the class a reviewer set."""

    rule: str
    vehicle_class: str
    occurred_at: datetime
    legal_reference: str
    details: dict[str, Any]


def _corrected_class(v: Violation, vehicle_class: str) -> str:
    """The class a reviewer set, when the legal catalogue fines the violation's rule for it.

    Raises:
        RefusedError: 422 when the catalogue has no single offence of the rule for that class at the
            violation's time (speeding by a bicycle; a speeding band the other class does not have): the
            notice could not state a fine, so the reviewer rejects the violation instead.
    """
    as_corrected = _Reclassed(v.rule, vehicle_class, v.occurred_at, v.legal_reference, v.details)
    if legal_basis(as_corrected).entry is None:
        raise RefusedError(
            422,
            f"vehicle class {vehicle_class!r}: the legal catalogue has no single offence of rule "
            f"{v.rule!r} for it; reject the violation instead",
        )
    return vehicle_class


def decide(
    session: Session,
    settings: Settings,
    user: User,
    violation_id: int,
    body: DecisionCreate,
    ip: str | None,
    *,
    wiring: notices.NoticeWiring | None = None,
) -> Violation | None:
    """Confirm or reject a violation (audited). A confirmation creates the owner notice and queues its
    SMS alert (`api.notices.service.on_confirmed`, with `wiring`; None: no SMS) and the penalty
    webhook, all in the decision's transaction; a rejection closes the notice of a violation that was
    confirmed before (reopened).

    A confirmation fines the plate the reviewer typed (`body.plate`), else the device's reading, which
    this server's plate grammar must find valid (`checked_reading`; the `valid` of the device's manifest
    is never trusted): an invalid or hostile reading is refused until the reviewer types the plate.
    A confirmation may correct the plate (`body.plate`) and the vehicle class (`body.vehicle_class`):
    the corrected class becomes `vehicle_class`, the class the notice, its PDF, the public lookup and
    the penalty webhook fine (`vehicle_class_corrected` keeps the correction, the signed manifest the
    detector's class). Both corrections are in the decision's audit entry.

    Returns:
        The decided violation, or None when `user` may not see it (the caller answers 404).

    Raises:
        RefusedError: 409 when it is already decided, or confirmed after its evidence was deleted;
            422 for a typed plate that is not valid, a confirmation without any plate or of a device
            reading that is not a valid plate (and none typed), or a class the catalogue cannot fine
            the violation's rule for.
    """
    v = visible_violation(session, user, violation_id)
    if v is None:
        return None
    if v.status != "new":
        raise RefusedError(409, f"violation {violation_id} is already {v.status}; a supervisor can reopen it")
    if v.evidence_purged_at is not None and body.decision == "confirm":
        # Nothing left to fine on. Rejecting stays possible: a violation reopened after its evidence
        # expired (or reopened, then expired) must not wait in the queue for ever.
        raise RefusedError(
            409, f"violation {violation_id}: its evidence was deleted (retention); it can only be rejected"
        )
    typed = _corrected_plate(body.plate) if body.plate is not None else None
    # the reviewer typing the reading confirms it: not a correction
    corrected = None if typed == v.plate_compact else typed
    plate_key = corrected or v.plate_key
    if body.decision == "confirm":
        if plate_key is None:
            raise RefusedError(422, "a violation without a plate cannot be confirmed: give the plate")
        if typed is None:
            _check_reading(v)
    class_read = detected_class(v)
    class_corrected: str | None = None  # the reviewer confirming the detector's class: no correction
    if body.vehicle_class is not None and body.vehicle_class != class_read:
        class_corrected = _corrected_class(v, body.vehicle_class)
    now = utcnow()
    status = "confirmed" if body.decision == "confirm" else "rejected"
    note = body.note.strip() if body.note and body.note.strip() else None
    undecided = [Violation.id == v.id, Violation.status == "new"]
    if status == "confirmed":
        # the retention job may delete the evidence meanwhile, leaving the status `new` (PostgreSQL,
        # read committed): the update must not confirm what can no longer be shown
        undecided.append(Violation.evidence_purged_at.is_(None))
    result = session.execute(
        update(Violation)
        .where(*undecided)
        .values(
            status=status,
            reviewed_by=user.id,
            reviewed_at=now,
            decision_reason=body.reason,
            decision_note=note,
            plate_corrected=corrected,
            plate_key=plate_key,
            vehicle_class_corrected=class_corrected,
            vehicle_class=class_corrected or class_read,
        )
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # decided (or purged) meanwhile
        session.rollback()
        raise RefusedError(409, f"violation {violation_id} was decided, or its evidence deleted, meanwhile")
    audit.record(
        session,
        actor=f"user:{user.username}",
        action=f"violation.{body.decision}",
        object_type="violation",
        object_id=v.id,
        detail={
            "reason": body.reason,
            "note": note,
            "plate_read": v.plate_compact,
            "plate_corrected": corrected,
            # the class is decided on a confirmation only (a rejection fines nothing)
            **(
                {"vehicle_class_read": class_read, "vehicle_class_corrected": class_corrected}
                if status == "confirmed"
                else {}
            ),
        },
        ip=ip,
    )
    actor = f"user:{user.username}"
    if status == "confirmed":
        wiring = wiring or notices.wiring_for(settings)
        notice = notices.on_confirmed(session, v.id, wiring, actor=actor, ip=ip, now=now).notice
        ref = webhook.NoticeRef(notice.id, notice.status, lookup_code_of(wiring.code_key, notice))
        webhook.enqueue_confirmation(session, settings, v, user, now, ref)
    else:
        notices.on_rejected(session, v.id, actor=actor, ip=ip)
    session.commit()
    log.info("violation %d %s by %s", v.id, status, user.username)
    return v


def reopen(session: Session, user: User, violation_id: int, note: str, ip: str | None) -> Violation | None:
    """Put a decided violation back to `new` (supervisors; audited with the decision it undoes).

    The decision's corrections are undone (the plate read, the detector's class come back).
    A confirmation never sent to the penalty system is cancelled; one that may have reached it
    (delivered, or sent at least once) is withdrawn: a signed `violation.withdrawn` message is queued in
    this transaction and sent before any later confirmation (`api.webhook.on_reopened`; the audit
    entry's `penalty_delivery` says "withdrawal_queued", "already_withdrawn", "cancelled" or null).
    The owner's SMS alert is cancelled when not sent yet (due again on a new confirmation), never sent
    twice.

    Returns:
        The reopened violation, or None when `user` may not see it.

    Raises:
        RefusedError: 409 when it is not decided, or its evidence was deleted (retention).
    """
    v = visible_violation(session, user, violation_id)
    if v is None:
        return None
    if v.status == "new":
        raise RefusedError(409, f"violation {violation_id} is not decided")
    if v.evidence_purged_at is not None:
        # Nothing left to decide on: reopened, it would wait in the review queue for ever.
        gone = "its evidence was deleted (retention); it cannot be reviewed again"
        raise RefusedError(409, f"violation {violation_id}: {gone}")
    now = utcnow()
    previous = {
        "status": v.status,
        "reason": v.decision_reason,
        "note": v.decision_note,
        "reviewed_by": v.reviewed_by,
        "reviewed_at": v.reviewed_at.isoformat() if v.reviewed_at else None,
        "plate_corrected": v.plate_corrected,
        "vehicle_class_corrected": v.vehicle_class_corrected,
    }
    result = session.execute(
        update(Violation)
        .where(Violation.id == v.id, Violation.status == v.status)
        .values(
            status="new",
            reviewed_by=None,
            reviewed_at=None,
            decision_reason=None,
            decision_note=None,
            plate_corrected=None,
            plate_key=Violation.plate_compact,
            vehicle_class_corrected=None,
            vehicle_class=detected_class(v),
        )
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise RefusedError(409, f"violation {violation_id} changed meanwhile; try again")
    penalty = webhook.on_reopened(session, v, user, now, note.strip())
    notices.on_reopened(session, v.id, actor=f"user:{user.username}", ip=ip)
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="violation.reopen",
        object_type="violation",
        object_id=v.id,
        detail={
            "note": note.strip(),
            "previous": previous,
            "penalty_delivery": penalty,
        },
        ip=ip,
    )
    session.commit()
    session.refresh(v)
    log.info("violation %d reopened by %s", v.id, user.username)
    return v
