"""`GET /api/v1/map/violations.geojson` and `/api/v1/map/cameras.geojson`: the map's layers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from api.db import utcnow
from api.deps import CurrentOfficer, ReadSessionDep, SettingsDep
from api.errors import RefusedError
from api.schemas import IDENT, CameraFeatureCollection, Instant, Message, ViolationFeatureCollection
from api.services import geo

router = APIRouter(prefix="/api/v1/map", tags=["map"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Message} for code in (401, 403, 422)}
District = Annotated[str | None, Query(max_length=64, pattern=IDENT)]


class GeoJSONResponse(JSONResponse):
    """JSON with the GeoJSON media type (RFC 7946)."""

    media_type = "application/geo+json"


@router.get(
    "/violations.geojson",
    response_model=ViolationFeatureCollection,
    response_class=GeoJSONResponse,
    responses=_ERRORS,
)
def violations_geojson(
    user: CurrentOfficer,
    session: ReadSessionDep,
    from_: Annotated[Instant | None, Query(alias="from", description="occurred_at >= from")] = None,
    to: Annotated[Instant | None, Query(description="occurred_at < to")] = None,
    status: Annotated[Literal["new", "confirmed", "rejected"] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=32, pattern=IDENT)] = None,
    district: District = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> ViolationFeatureCollection:
    """The newest violations as points at their camera (officers: own district; no plates)."""
    try:
        return geo.violation_features(
            session,
            user,
            occurred_from=from_,
            occurred_to=to,
            status=status,
            rule=rule,
            district_id=district,
            limit=limit,
        )
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None


@router.get(
    "/cameras.geojson",
    response_model=CameraFeatureCollection,
    response_class=GeoJSONResponse,
    responses=_ERRORS,
)
def cameras_geojson(
    user: CurrentOfficer, session: ReadSessionDep, settings: SettingsDep, district: District = None
) -> CameraFeatureCollection:
    """Cameras with a position, and whether each is online, stale or never heard from."""
    try:
        return geo.camera_features(
            session, user, now=utcnow(), stale_after_s=settings.camera_stale_after_s, district_id=district
        )
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None
