"""`GET /api/v1/stats/violations` and `/api/v1/stats/flows`: grouped counts (officers: own district)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.deps import CurrentOfficer, ReadSessionDep
from api.errors import RefusedError
from api.schemas import IDENT, FlowStatsPublic, Instant, Message, ViolationStatsPublic
from api.services import stats
from api.services.stats import MAX_DAYS, VN_UTC_OFFSET_MINUTES, FlowGroup, ViolationGroup

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Message} for code in (401, 403, 422)}
Offset = Annotated[
    int,
    Query(ge=-12 * 60, le=14 * 60, description="Local time for hour/day groups (Vietnam: 420)."),
]
District = Annotated[str | None, Query(max_length=64, pattern=IDENT)]


@router.get("/violations", response_model=ViolationStatsPublic, responses=_ERRORS)
def violation_stats(
    user: CurrentOfficer,
    session: ReadSessionDep,
    group_by: Annotated[
        ViolationGroup,
        Query(
            description="rule, camera, district, hour (of day) or day: every local day of [from, to), "
            f"zeros included, at most the last {MAX_DAYS} (the answer's `from`: the first day's start)."
        ),
    ],
    from_: Annotated[Instant | None, Query(alias="from", description="occurred_at >= from")] = None,
    to: Annotated[Instant | None, Query(description="occurred_at < to")] = None,
    district: District = None,
    utc_offset_minutes: Offset = VN_UTC_OFFSET_MINUTES,
) -> ViolationStatsPublic:
    """Violation counts per group and status, confirmation rate and plate read rate (422: `from` after
    `to`)."""
    try:
        return stats.violation_stats(
            session,
            user,
            group_by,
            occurred_from=from_,
            occurred_to=to,
            district_id=district,
            utc_offset_minutes=utc_offset_minutes,
        )
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None


@router.get("/flows", response_model=FlowStatsPublic, responses=_ERRORS)
def flow_stats(
    user: CurrentOfficer,
    session: ReadSessionDep,
    group_by: Annotated[FlowGroup, Query(description="class, camera or hour (of day).")],
    from_: Annotated[Instant | None, Query(alias="from", description="interval_start >= from")] = None,
    to: Annotated[Instant | None, Query(description="interval_start < to")] = None,
    district: District = None,
    utc_offset_minutes: Offset = VN_UTC_OFFSET_MINUTES,
) -> FlowStatsPublic:
    """Vehicles counted per group (422: `from` after `to`)."""
    try:
        return stats.flow_stats(
            session,
            user,
            group_by,
            interval_from=from_,
            interval_to=to,
            district_id=district,
            utc_offset_minutes=utc_offset_minutes,
        )
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None
