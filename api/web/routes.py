"""JSON routes of the web app: the public lookup, and two helpers of the evidence viewer.

| route | who | what |
|---|---|---|
| `GET /api/v1/lookup?plate=&code=` | anyone (rate limited per IP) | `LookupResult`, 404, or 410 (withdrawn) |
| `GET /web/api/violations/{id}/evidence` | officers (own district), supervisors, admins | `EvidenceExtras` |
| `GET /web/api/plate-check?text=` | officers, supervisors, admins | `PlateCheck` (the decision's rule) |
| `GET /web/api/districts` | officers (their own), supervisors, admins | `DistrictPublic` list |
| `GET /web/api/cameras` | officers (their district's), supervisors, admins | `CameraOption` list |
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from sqlalchemy import select

from api.deps import ClientIP, CurrentOfficer, ReadSessionDep, SessionDep, StoreDep
from api.models import Camera, District
from api.schemas import Message
from api.security import LoginLimiter
from api.web import evidence as evidence_service
from api.web import lookup as lookup_service
from api.web.schemas import CameraOption, DistrictPublic, EvidenceExtras, LookupResult, PlateCheck

log = logging.getLogger(__name__)
router = APIRouter(tags=["web"])

ViolationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Violation id.")]
_LIMITER_KEY = "lookup"


def lookup_limiter(request: Request) -> LoginLimiter:
    """The lookup rate limiter `api.web.mount` made for this app."""
    limiter: LoginLimiter = request.app.state.phatnguoi_web.lookup_limiter
    return limiter


@router.get(
    "/api/v1/lookup",
    response_model=LookupResult,
    responses={
        404: {"model": Message},
        410: {"model": Message, "description": "The notice for this plate was withdrawn (plate corrected)."},
        422: {"model": Message},
        429: {"model": Message},
    },
)
def lookup(
    request: Request,
    response: Response,
    session: SessionDep,
    store: StoreDep,
    ip: ClientIP,
    plate: Annotated[str, Query(min_length=4, max_length=32, pattern=lookup_service.PLATE_PATTERN)],
    code: Annotated[str, Query(min_length=4, max_length=64, pattern=lookup_service.CODE_PATTERN)],
) -> LookupResult:
    """One violation by plate and notice code (no login; no owner data). 404 when they do not match;
    410 when they are those of a notice withdrawn from this plate (corrected to another owner's)."""
    limiter = lookup_limiter(request)
    # Every lookup counts, found or not: the limit is on guessing codes, and a guesser's hits count too.
    wait = limiter.acquire(_LIMITER_KEY, ip)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many lookups; try again in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    try:
        result = lookup_service.lookup(session, store, plate, code, ip)
    except lookup_service.NoticeWithdrawnError as e:
        raise HTTPException(e.status, e.reason, headers={"Cache-Control": "private, no-store"}) from None
    if result is None:
        raise HTTPException(404, "no violation with this plate and lookup code")
    response.headers["Cache-Control"] = "private, no-store"
    return result


@router.get(
    "/web/api/violations/{violation_id}/evidence",
    response_model=EvidenceExtras,
    responses={401: {"model": Message}, 403: {"model": Message}, 404: {"model": Message}},
)
def violation_evidence(
    violation_id: ViolationId, user: CurrentOfficer, session: SessionDep, store: StoreDep, ip: ClientIP
) -> EvidenceExtras:
    """Integrity check (again, now), alternative plate readings, box, camera and district names."""
    extras = evidence_service.evidence_extras(session, store, user, violation_id, ip)
    if extras is None:
        raise HTTPException(404, f"violation {violation_id} not found")
    return extras


@router.get("/web/api/plate-check", response_model=PlateCheck, responses={401: {"model": Message}})
def plate_check(
    _user: CurrentOfficer, text: Annotated[str, Query(min_length=1, max_length=32)]
) -> PlateCheck:
    """Judge a typed plate as the decision route will: valid, and without guessed corrections."""
    from plates.grammar import parse_vn  # pure Python; no OpenCV or ONNX Runtime behind it

    parsed = parse_vn(text)
    if not parsed.valid or parsed.compact is None:
        return PlateCheck(valid=False, compact=None, formatted=None, problem=parsed.problem)
    if parsed.corrections:
        return PlateCheck(
            valid=False,
            compact=None,
            formatted=parsed.formatted,
            problem=f"not a valid Vietnamese plate as typed; did you mean {parsed.formatted}?",
        )
    return PlateCheck(valid=True, compact=parsed.compact, formatted=parsed.formatted, problem=None)


@router.get("/web/api/districts", response_model=list[DistrictPublic], responses={401: {"model": Message}})
def districts(user: CurrentOfficer, session: ReadSessionDep) -> list[DistrictPublic]:
    """Districts for the filter lists, by name; an officer gets only their own."""
    stmt = select(District.id, District.name).order_by(District.name)
    if user.role == "officer":
        stmt = stmt.where(District.id == user.district_id)
    rows = session.execute(stmt).all()
    session.commit()
    return [DistrictPublic(id=r.id, name=r.name) for r in rows]


@router.get("/web/api/cameras", response_model=list[CameraOption], responses={401: {"model": Message}})
def cameras(user: CurrentOfficer, session: ReadSessionDep) -> list[CameraOption]:
    """Cameras for the filter lists, by id, with or without a position (the map's layer has only
    those with one); an officer gets their district's."""
    stmt = select(Camera.id, Camera.name, Camera.district_id).order_by(Camera.id)
    if user.role == "officer":
        stmt = stmt.where(Camera.district_id == user.district_id)
    rows = session.execute(stmt).all()
    session.commit()
    return [CameraOption(id=r.id, name=r.name, district_id=r.district_id) for r in rows]
