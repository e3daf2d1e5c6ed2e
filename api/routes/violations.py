"""Violations: ingest from devices; the review list, one violation and its evidence (each file, or the
whole signed package for independent verification), decisions and reopening for officers
(district-scoped) and supervisors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, Response, UploadFile, status

from api.deps import (
    ClientIP,
    CurrentDevice,
    CurrentOfficer,
    CurrentSupervisor,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from api.errors import RefusedError, StorageError
from api.pagination import MAX_CURSOR_CHARS, Cursor, CursorError
from api.plate_query import PlateQueryError, parse_plate_query
from api.routes.notices import notice_wiring
from api.schemas import (
    IDENT,
    DecisionCreate,
    IngestResult,
    Instant,
    Message,
    ReopenCreate,
    ViolationPagePublic,
    ViolationPublic,
)
from api.services import review
from api.services import violations as violation_service
from api.services.ingest import UploadedFile, ingest_violation
from api.web.evidence import confirm_problems

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/violations", tags=["violations"])

ViolationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Violation id.")]
FileName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Message} for code in (400, 401, 403, 409, 413, 415, 422, 503)
}
_REVIEW_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Message} for code in (401, 403, 404, 409, 422)
}
Status = Literal["new", "confirmed", "rejected"]


@router.get(
    "",
    response_model=ViolationPagePublic,
    responses={401: {"model": Message}, 403: {"model": Message}, 422: {"model": Message}},
)
def list_violations(
    user: CurrentOfficer,
    read_session: ReadSessionDep,
    session: SessionDep,
    ip: ClientIP,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    rule: Annotated[str | None, Query(max_length=32, pattern=IDENT)] = None,
    camera: Annotated[str | None, Query(max_length=64, pattern=IDENT)] = None,
    district: Annotated[str | None, Query(max_length=64, pattern=IDENT)] = None,
    from_: Annotated[Instant | None, Query(alias="from", description="occurred_at >= from")] = None,
    to: Annotated[Instant | None, Query(description="occurred_at < to")] = None,
    plate: Annotated[
        str | None,
        Query(
            max_length=32,
            description="Plate, any case, separators allowed; '*' any run, '?' one character.",
        ),
    ] = None,
    fuzzy: Annotated[int, Query(ge=0, le=2, description="Edit distance for plate (0: exact).")] = 0,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ViolationPagePublic:
    """Violations newest first, filtered; officers see their district only (audited: lists plates)."""
    try:
        plate_query = parse_plate_query(plate, fuzzy) if plate is not None else None
        after = Cursor.decode(cursor) if cursor is not None else None
    except (PlateQueryError, CursorError) as e:
        raise HTTPException(422, str(e)) from None
    if plate_query is None and fuzzy:
        raise HTTPException(422, "fuzzy needs a plate")
    filters = review.ViolationFilter(
        status=status_,
        rule=rule,
        camera_id=camera,
        district_id=district,
        occurred_from=from_,
        occurred_to=to,
        plate=plate_query,
    )
    try:
        return review.list_violations(read_session, session, user, filters, cursor=after, limit=limit, ip=ip)
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None


@router.post(
    "",
    response_model=IngestResult,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": IngestResult, "description": "Already stored: the stored result."},
        **_REFUSALS,
    },
)
def post_violation(
    device: CurrentDevice,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    ip: ClientIP,
    response: Response,
    manifest: Annotated[UploadFile, File(description="manifest.json: the exact bytes that were signed.")],
    signature: Annotated[str, Form(min_length=1, max_length=256, description="manifest.sig (base64).")],
    files: Annotated[
        list[UploadFile],
        File(description="Evidence files; each part's filename is its name in the manifest."),
    ],
) -> IngestResult:
    """Upload one signed evidence package (multipart). 201 when stored, 200 when already stored."""
    if len(files) > settings.upload_max_files:
        raise HTTPException(413, f"too many files: {len(files)} > {settings.upload_max_files}")
    uploaded: dict[str, UploadedFile] = {}
    for part in files:
        if not part.filename:
            raise HTTPException(400, "files: a part has no filename (it must be the name in the manifest)")
        if part.filename in uploaded:
            raise HTTPException(400, f"files: {part.filename} sent twice")
        uploaded[part.filename] = UploadedFile(part.file.read(), part.content_type)
    try:
        outcome = ingest_violation(
            session, store, settings, device, manifest.file.read(), signature, uploaded, ip=ip
        )
    except RefusedError as e:
        log.info("upload from device %s refused (%d): %s", device.id, e.status, e.reason)
        raise HTTPException(e.status, e.reason) from None
    except StorageError as e:
        log.error("upload from device %s: evidence store failed: %s", device.id, e)
        raise HTTPException(503, "evidence store unavailable; retry later") from None
    if outcome.duplicate:
        response.status_code = status.HTTP_200_OK
    v = outcome.violation
    return IngestResult(
        id=v.id,
        event_id=v.event_id,
        status=v.status,
        duplicate=outcome.duplicate,
        manifest_sha256=v.manifest_sha256,
        received_at=v.received_at,
        files=[violation_service.file_public(f) for f in v.files],
    )


@router.get(
    "/{violation_id}",
    response_model=ViolationPublic,
    responses={401: {"model": Message}, 403: {"model": Message}, 404: {"model": Message}},
)
def get_violation(
    violation_id: ViolationId, user: CurrentOfficer, session: SessionDep, ip: ClientIP
) -> ViolationPublic:
    """One violation with its evidence list (audited). 404 outside the officer's district."""
    v = violation_service.view_violation(session, user, violation_id, ip)
    if v is None:
        raise HTTPException(404, f"violation {violation_id} not found")
    return violation_service.to_public(v, violation_service.penalty_messages(session, v.id))


@contextmanager
def _evidence_refusals(violation_id: int, what: str) -> Iterator[None]:
    """Stored evidence that cannot be served, as HTTP answers: 410 deleted by retention, 409 not what
    the device signed, 503 the store failing (logged; `what`: the file or package being read)."""
    try:
        yield
    except FileNotFoundError as e:
        raise HTTPException(410, str(e)) from None
    except violation_service.EvidenceIntegrityError as e:
        raise HTTPException(409, str(e)) from None
    except StorageError as e:
        log.error("violation %d: cannot read %s: %s", violation_id, what, e)
        raise HTTPException(503, "evidence store unavailable") from None


@router.get(
    "/{violation_id}/files/{name}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}}, "description": "The file."},
        401: {"model": Message},
        403: {"model": Message},
        404: {"model": Message},
        409: {"model": Message},
        410: {"model": Message},
        503: {"model": Message},
    },
)
def get_evidence_file(
    violation_id: ViolationId,
    name: FileName,
    user: CurrentOfficer,
    session: SessionDep,
    store: StoreDep,
    ip: ClientIP,
) -> Response:
    """The bytes of one evidence file (audited). 404 outside the officer's district; 409 when the stored
    file is not what the device signed (never served); `X-Content-SHA256` is the signed hash."""
    with _evidence_refusals(violation_id, name):
        found = violation_service.read_evidence(session, store, user, violation_id, name, ip)
    if found is None:
        raise HTTPException(404, f"violation {violation_id} has no file {name}")
    f, data = found
    return Response(
        content=data,
        media_type=f.media_type,
        headers={"Cache-Control": "private, no-store", "X-Content-SHA256": f.sha256},
    )


@router.get(
    "/{violation_id}/package",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {}},
            "description": "`<event_id>/` as the device wrote it (manifest.json, manifest.sig, the files) "
            "and `device_public_key.pem`: check it with `phatnguoi evidence verify`.",
        },
        401: {"model": Message},
        403: {"model": Message},
        404: {"model": Message},
        409: {"model": Message},
        410: {"model": Message},
        503: {"model": Message},
    },
)
def get_evidence_package(
    violation_id: ViolationId, user: CurrentOfficer, session: SessionDep, store: StoreDep, ip: ClientIP
) -> Response:
    """The signed evidence package, for verification without trusting this server (audited). 404
    outside the officer's district; 409 when a stored file is not what the device signed; 410 when the
    retention job deleted the evidence."""
    with _evidence_refusals(violation_id, "its evidence package"):
        package = violation_service.evidence_package(session, store, user, violation_id, ip)
    if package is None:
        raise HTTPException(404, f"violation {violation_id} not found")
    return Response(
        content=package.data,
        media_type="application/zip",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "X-Manifest-SHA256": package.manifest_sha256,
        },
    )


@router.post("/{violation_id}/decision", response_model=ViolationPublic, responses=_REVIEW_REFUSALS)
def decide(
    violation_id: ViolationId,
    body: DecisionCreate,
    user: CurrentOfficer,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    ip: ClientIP,
    request: Request,
) -> ViolationPublic:
    """Confirm or reject a new violation (audited). 409 when already decided, and for a confirmation
    when its evidence is not what the device signed (the viewer's integrity check; it can be rejected).
    A confirmation creates the owner notice and queues its SMS alert in the same transaction."""
    if body.decision == "confirm":
        problems = confirm_problems(session, store, user, violation_id)
        if problems:
            raise HTTPException(
                409,
                f"violation {violation_id}: its evidence is not what the device signed ({problems[0]}); "
                "it can only be rejected",
            )
    try:
        v = review.decide(session, settings, user, violation_id, body, ip, wiring=notice_wiring(request))
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None
    if v is None:
        raise HTTPException(404, f"violation {violation_id} not found")
    return violation_service.to_public(v, violation_service.penalty_messages(session, v.id))


@router.post("/{violation_id}/reopen", response_model=ViolationPublic, responses=_REVIEW_REFUSALS)
def reopen(
    violation_id: ViolationId, body: ReopenCreate, user: CurrentSupervisor, session: SessionDep, ip: ClientIP
) -> ViolationPublic:
    """Put a decided violation back to review (supervisors and admins; audited)."""
    try:
        v = review.reopen(session, user, violation_id, body.note, ip)
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None
    if v is None:
        raise HTTPException(404, f"violation {violation_id} not found")
    return violation_service.to_public(v, violation_service.penalty_messages(session, v.id))
