"""Notice routes: registry import and owner look-up, notices on confirmed violations, their states and
due actions, and the SMS gateway's delivery-receipt callback (HMAC-signed)."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Final

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import audit
from api.deps import ClientIP, CurrentOfficer, CurrentSupervisor, SessionDep, StateDep, StoreDep
from api.models import Camera, Device, District, Notice, SmsMessage, User, Violation
from api.notices import pdf, service, sms, workflow
from api.notices import registry as reg
from api.notices import schemas as s
from api.notices.catalogue import default_catalogue, legal_basis
from api.notices.settings import NoticeSettings, load_notice_settings
from api.services.violations import visible_violation
from api.web.lookup import CODE_PATTERN, lookup_code_hash
from api.webhook import verify_signature

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["notices"])

ViolationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Violation id.")]
PlateQuery = Annotated[
    str, Query(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9ĐđÐ .·:_-]{4,32}$", description="Plate.")
]


def notice_settings(request: Request) -> NoticeSettings:
    """The app's notice settings (read from the environment once, kept on `app.state`)."""
    current: NoticeSettings | None = getattr(request.app.state, "notice_settings", None)
    if current is None:
        current = load_notice_settings()
        request.app.state.notice_settings = current
    return current


def notice_wiring(request: Request) -> service.NoticeWiring:
    """What a decision needs for the notice (lookup-code key, SMS configuration) in this app."""
    settings = request.app.state.phatnguoi.settings
    return service.wiring_for(settings, notice_settings(request).sms_config())


def notice_public(session: Session, notice: Notice, code_key: bytes | None = None) -> s.NoticePublic:
    """The notice with its SMS delivery status, clocks and the fine in force at the violation's time;
    with `code_key` (staff views) also its lookup code."""
    messages = session.scalars(
        select(SmsMessage).where(SmsMessage.notice_id == notice.id).order_by(SmsMessage.id)
    ).all()
    v = session.get(Violation, notice.violation_id)
    if v is None:  # a notice's violation is never deleted (foreign key)
        raise HTTPException(status.HTTP_404_NOT_FOUND, "violation not found")
    basis = legal_basis(v)
    entry = basis.entry
    c = workflow.clocks(notice, v.occurred_at)
    return s.NoticePublic(
        id=notice.id,
        violation_id=notice.violation_id,
        status=notice.status,
        created_at=notice.created_at,
        sent_at=notice.sent_at,
        posted_at=notice.posted_at,
        responded_at=notice.responded_at,
        escalated_at=notice.escalated_at,
        closed_at=notice.closed_at,
        sms=[
            s.SmsPublic(
                status=m.status,
                attempts=m.attempts,
                sent_at=m.sent_at,
                delivered_at=m.delivered_at,
                last_error=m.last_error,
            )
            for m in messages
        ],
        lookup_code=workflow.lookup_code_of(code_key, notice) if code_key is not None else None,
        notice_due_at=c.notice_due_at,
        escalate_due_at=c.escalate_due_at,
        next_action=c.next_action,
        overdue=c.overdue,
        hold_reason=notice.hold_reason,
        fine_min_vnd=None if entry is None else entry.fine_min_vnd,
        fine_max_vnd=None if entry is None else entry.fine_max_vnd,
        legal_reference=basis.citation,
    )


@router.post("/registry/import", response_model=s.RegistryImportReport)
def import_registry(
    body: s.RegistryImportRequest,
    user: CurrentSupervisor,
    session: SessionDep,
    state: StateDep,
    ip: ClientIP,
    request: Request,
) -> s.RegistryImportReport:
    """Import a registry CSV (admin only): good rows are imported, bad rows reported with reasons.
    Then notices waiting for an owner get the new ones (their SMS alerts are queued)."""
    if user.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    try:
        report = reg.import_csv(session, body.csv, actor=f"user:{user.username}", ip=ip)
    except reg.RegistryImportError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
    session.commit()
    caught_up = service.catch_up(
        state.sessions, notice_wiring(request), actor=f"user:{user.username}", plates=report.plates
    )
    return s.RegistryImportReport(
        created=report.created,
        updated=report.updated,
        rejected=[s.RejectedRowPublic(line=r.line, plate=r.plate, reason=r.reason) for r in report.rejected],
        notices_created=caught_up.created,
        owners_found=caught_up.owners_found,
    )


@router.get("/registry", response_model=s.OwnerPublic)
def read_owner(
    plate: PlateQuery, user: CurrentSupervisor, session: SessionDep, ip: ClientIP
) -> s.OwnerPublic:
    """The owner of a plate (supervisors and admins; the read is audited, found or not)."""
    compact = reg.canonical_plate(plate) or plate.upper()
    record = reg.read_owner(
        session, reg.DbRegistry(session), compact, actor=f"user:{user.username}", purpose="staff view", ip=ip
    )
    session.commit()
    if record is None:
        return s.OwnerPublic(
            plate=compact,
            registered=False,
            full_name=None,
            phone=None,
            address=None,
            vehicle_class=None,
            colour=None,
        )
    return s.OwnerPublic(
        plate=compact,
        registered=True,
        full_name=record.full_name,
        phone=record.phone,
        address=record.address,
        vehicle_class=record.vehicle_class,
        colour=record.colour,
    )


@router.post("/notices", response_model=s.NoticeCreated)
def create_notice(
    body: s.NoticeCreate,
    user: CurrentSupervisor,
    session: SessionDep,
    ip: ClientIP,
    request: Request,
) -> s.NoticeCreated:
    """The notice of a confirmed violation, created (with an SMS alert queued when the owner has a
    phone) or returned when it exists (a confirmation creates it already; this is for violations
    confirmed before notices existed)."""
    wiring = notice_wiring(request)
    config = wiring.sms
    on_created = sms.alert_enqueuer(session, config) if config is not None else None
    try:
        result = workflow.create_notice(
            session,
            body.violation_id,
            reg.DbRegistry(session),
            actor=f"user:{user.username}",
            ip=ip,
            on_created=on_created,
            code=wiring.code_for(body.violation_id),
        )
    except workflow.NoticeError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    if not result.created:  # an existing notice and its lookup code: a read, audited as one
        _audit_read(session, user, "notice.view", body.violation_id, ip)
    session.commit()
    public = notice_public(session, result.notice, wiring.code_key)
    return s.NoticeCreated(notice=public, created=result.created, lookup_code=result.code)


@router.get("/notices/due", response_model=list[s.DueActionPublic])
def due(user: CurrentSupervisor, session: SessionDep, ip: ClientIP) -> list[s.DueActionPublic]:
    """What supervisors must do next about open notices (10-day and 20-day clocks), soonest first
    (audited: the list names plates)."""
    actions = workflow.due_actions(session)
    ids = [d.violation_id for d in actions]
    facts = (
        {
            r.id: r
            for r in session.execute(
                select(Violation.id, Violation.plate_key, Violation.rule, Violation.occurred_at).where(
                    Violation.id.in_(ids)
                )
            )
        }
        if ids
        else {}
    )
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="notice.due_list",
        detail={"notices": len(actions)},
        ip=ip,
    )
    session.commit()
    return [
        s.DueActionPublic(
            notice_id=d.notice_id,
            violation_id=d.violation_id,
            plate=facts[d.violation_id].plate_key if d.violation_id in facts else None,
            rule=facts[d.violation_id].rule if d.violation_id in facts else None,
            occurred_at=facts[d.violation_id].occurred_at if d.violation_id in facts else None,
            status=d.status,
            action=d.action,
            due_at=d.due_at,
            overdue=d.overdue,
            hold_reason=d.hold_reason,
        )
        for d in actions
    ]


def _notice_of(session: Session, violation_id: int) -> Notice:
    notice = session.scalars(select(Notice).where(Notice.violation_id == violation_id)).one_or_none()
    if notice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "notice not found")
    return notice


def _audit_read(session: Session, user: User, action: str, violation_id: int, ip: str) -> None:
    """Record a staff read of a violation's notice (its lookup code gives the owner's page)."""
    audit.record(
        session,
        actor=f"user:{user.username}",
        action=action,
        object_type="violation",
        object_id=violation_id,
        ip=ip,
    )


def _visible_notice(session: Session, user: User, violation_id: int) -> Notice:
    """The notice of a violation `user` may see (an officer: their district), else 404."""
    if visible_violation(session, user, violation_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "notice not found")
    return _notice_of(session, violation_id)


@router.get("/violations/{violation_id}/notice", response_model=s.NoticePublic)
def get_notice(
    violation_id: ViolationId, user: CurrentOfficer, session: SessionDep, ip: ClientIP, request: Request
) -> s.NoticePublic:
    """The notice of a violation with its state, lookup code, clocks, SMS delivery status and fine
    (officers: their district's; audited, like a view of the violation: it shows the lookup code)."""
    notice = _visible_notice(session, user, violation_id)
    public = notice_public(session, notice, notice_wiring(request).code_key)
    _audit_read(session, user, "notice.view", violation_id, ip)
    session.commit()
    return public


_UNDER_REVIEW = "its violation is back under review; the notice waits for the new decision"

#: The notice states its paper notice is printed in: the owner is known, and the notice is to be posted
#: or was posted (a copy). Not `awaiting_owner`: there is no one to send it to (nor can it be marked
#: posted); not `closed`: withdrawn with its rejected violation, or done with.
PRINTABLE_STATES: Final = frozenset({"created", "sms_sent", "posted", "escalated_20d", "responded"})


def _staff_transition(
    session: Session, notice: Notice, to: str, user: User, note: str | None, ip: str
) -> None:
    """A staff member moves `notice` to `to` (audited). 409 when the state cannot follow, or when its
    violation was reopened and waits for a new decision (the fine is withdrawn meanwhile: the notice
    must not go out by post or be escalated; closing it stays possible)."""
    if to != "closed":
        decided = session.scalar(select(Violation.status).where(Violation.id == notice.violation_id))
        if decided != "confirmed":
            raise HTTPException(status.HTTP_409_CONFLICT, f"notice {notice.id}: {_UNDER_REVIEW}")
    try:
        workflow.transition(session, notice, to, actor=f"user:{user.username}", note=note, ip=ip)
    except workflow.NoticeError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None


@router.post("/violations/{violation_id}/notice/posted", response_model=s.NoticePublic)
def mark_posted(
    violation_id: ViolationId,
    body: s.PostedRequest,
    user: CurrentOfficer,
    session: SessionDep,
    ip: ClientIP,
    request: Request,
) -> s.NoticePublic:
    """Staff mark the paper notice as sent by post (officers: their district's; audited). 409 when the
    notice is not in a state that can be posted (waiting for its owner, already posted, closed), or its
    violation was reopened for review."""
    notice = _visible_notice(session, user, violation_id)
    _staff_transition(session, notice, "posted", user, body.note, ip)
    session.commit()
    return notice_public(session, notice, notice_wiring(request).code_key)


def _check_printable(session: Session, notice: Notice) -> None:
    """409 with the reason when `notice` is not to be printed (see `notice_pdf`)."""
    decided = session.scalar(select(Violation.status).where(Violation.id == notice.violation_id))
    if decided == "rejected":
        reason = f"notice {notice.id}: its violation was rejected; there is no fine to print"
    elif decided != "confirmed":
        reason = f"notice {notice.id}: {_UNDER_REVIEW}"
    elif notice.status == "awaiting_owner":
        reason = f"notice {notice.id} waits for its owner; it is printed once it has one"
    elif notice.status not in PRINTABLE_STATES:
        reason = f"notice {notice.id} is {notice.status}; it is not printed"
    else:
        return
    raise HTTPException(status.HTTP_409_CONFLICT, reason)


@router.get(
    "/violations/{violation_id}/notice.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The printable notice."}},
)
def notice_pdf(
    violation_id: ViolationId,
    user: CurrentSupervisor,
    session: SessionDep,
    store: StoreDep,
    ip: ClientIP,
    request: Request,
    code: Annotated[
        str | None, Query(pattern=CODE_PATTERN, description="The lookup code, printed when it matches.")
    ] = None,
) -> Response:
    """The printable notice (PDF, Vietnamese) with the photo sheet and the lookup code (the server's
    own, see `derived_lookup_code`; for an older notice whose code cannot be derived, pass the one
    shown at creation — a code that does not match is refused with 422). Audited.

    Everything the document needs is loaded, the request audited and the transaction ended before the
    evidence is read and the PDF drawn: on SQLite the transaction holds the write lock, which would
    stall every ingest and decision for the length of the rendering.

    409 unless the violation is confirmed and the notice in `PRINTABLE_STATES`: a paper notice of a
    fine that was withdrawn (violation reopened or rejected) or that has no one to go to is not made."""
    notice = _notice_of(session, violation_id)
    _check_printable(session, notice)
    if code is not None and lookup_code_hash(code) != notice.lookup_code_hash:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "code does not match this notice")
    if code is None:
        code = workflow.lookup_code_of(notice_wiring(request).code_key, notice)
    v = session.get(Violation, violation_id)
    if v is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "violation not found")
    # Loaded (and held: the identity map's references are weak) so that `document_for` finds them
    # without a query, which would begin a new transaction.
    loaded = (
        session.get(Camera, v.camera_id),
        session.get(District, v.district_id) if v.district_id is not None else None,
        session.get(Device, v.device_id),  # the signature the photos are checked against
        list(v.files),
    )
    _audit_read(session, user, "notice.pdf", violation_id, ip)
    # The document names this plate with the code: its owner may look the violation up with it later.
    workflow.remember_plate(session, notice, v.plate_key)
    session.commit()
    doc = pdf.document_for(
        session,
        store,
        v,
        default_catalogue(),
        notice_number=f"{notice.id}/TB-CSGT",
        lookup_url=notice_settings(request).sms_lookup_url or "/lookup",
        lookup_code=code.upper() if code else None,
    )
    session.commit()  # ends a transaction a lazy load may have begun (none expected)
    del loaded
    try:
        body = pdf.render_pdf(doc)
    except pdf.NoticePdfError as e:
        log.error("notice PDF of violation %s: %s", violation_id, e)
        raise HTTPException(status.HTTP_409_CONFLICT, f"notice PDF unavailable: {e}") from None
    return Response(body, media_type="application/pdf")


@router.post("/violations/{violation_id}/notice/transition", response_model=s.NoticePublic)
def move_notice(
    violation_id: ViolationId,
    body: s.TransitionRequest,
    user: CurrentSupervisor,
    session: SessionDep,
    ip: ClientIP,
) -> s.NoticePublic:
    """Move a violation's notice to another state (posted, responded, escalated_20d, closed…); audited."""
    notice = _notice_of(session, violation_id)
    _staff_transition(session, notice, body.to, user, body.note, ip)
    session.commit()
    return notice_public(session, notice)


@router.post("/sms/receipts", response_model=s.ReceiptResult)
async def sms_receipt(
    request: Request,
    state: StateDep,
    x_phatnguoi_timestamp: Annotated[str, Header(max_length=20)] = "",
    x_phatnguoi_signature: Annotated[str, Header(max_length=200)] = "",
) -> s.ReceiptResult:
    """Delivery receipt from the SMS gateway: JSON `{"message_id", "status": "delivered"|"failed"}`,
    signed like the penalty webhook (`X-Phatnguoi-Timestamp`, `X-Phatnguoi-Signature: sha256=<hex
    HMAC-SHA256 of "<timestamp>." + body>`). A bad or missing signature is refused with 403.

    A signed receipt is always kept (`{"accepted": true}`): applied, or, when no sent message has its
    id yet (the gateway posted it before answering the send), held until the send is recorded
    (`"held": true`; dropped after 24 h if that never happens). The gateway need not retry it."""
    secret = notice_settings(request).sms_receipt_secret
    body = await request.body()
    if secret is None or not verify_signature(
        secret.get_secret_value().encode(),
        x_phatnguoi_timestamp,
        x_phatnguoi_signature,
        body,
        now=time.time(),
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "bad receipt signature")
    try:
        data = json.loads(body)
        message_id, outcome = str(data["message_id"]), data["status"]
    except (ValueError, KeyError, TypeError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad receipt body") from None
    if outcome not in ("delivered", "failed") or not 0 < len(message_id) <= 128:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad receipt body")

    done = await run_in_threadpool(sms.receive_receipt, state.sessions, message_id, outcome)
    return s.ReceiptResult(accepted=True, held=done == "held")
