"""`GET /api/v1/exports/confirmed.csv`: confirmed violations for the penalty system (supervisors), with
the state and lookup code of each violation's owner notice (`api.notices.export`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import ClientIP, CurrentSupervisor, SessionDep, StateDep
from api.notices.export import with_notice_columns
from api.notices.service import code_key_for
from api.schemas import IDENT, Instant, Message
from api.services import exports

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


@router.get(
    "/confirmed.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "CSV (UTF-8 with BOM, CRLF), header row first."},
        401: {"model": Message},
        403: {"model": Message},
        422: {"model": Message},
    },
)
def confirmed_csv(
    user: CurrentSupervisor,
    session: SessionDep,
    state: StateDep,
    ip: ClientIP,
    from_: Annotated[Instant | None, Query(alias="from", description="occurred_at >= from")] = None,
    to: Annotated[Instant | None, Query(description="occurred_at < to")] = None,
    district: Annotated[str | None, Query(max_length=64, pattern=IDENT)] = None,
) -> StreamingResponse:
    """Confirmed violations that happened in [from, to), oldest first, streamed (audited); the last
    columns are the owner notice's state and lookup code."""
    rows = exports.start_export(
        session, user, occurred_from=from_, occurred_to=to, district_id=district, ip=ip
    )
    chunks = with_notice_columns(
        exports.csv_chunks(state.read_sessions, occurred_from=from_, occurred_to=to, district_id=district),
        state.read_sessions,
        code_key_for(state.settings),
    )
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="confirmed.csv"',
            "Cache-Control": "private, no-store",
            "X-Row-Count": str(rows),
        },
    )
