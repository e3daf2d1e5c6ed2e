"""`POST /api/v1/flows`: flow counts from a device."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import CurrentDevice, SessionDep, SettingsDep
from api.errors import RefusedError
from api.schemas import FlowBatchIn, FlowBatchResult, Message
from api.services.flows import ingest_flows

router = APIRouter(prefix="/api/v1", tags=["flows"])


@router.post(
    "/flows",
    response_model=FlowBatchResult,
    responses={code: {"model": Message} for code in (401, 403, 409, 413, 422)},
)
def post_flows(
    batch: FlowBatchIn, device: CurrentDevice, session: SessionDep, settings: SettingsDep
) -> FlowBatchResult:
    """Store flow counts; repeats are no-ops, differing repeats are reported as conflicts. A batch with
    an interval that overlaps a stored one (409) or another of the batch (422), or that starts more than
    `ingest_future_skew_s` ahead of the server (422: the device clock runs ahead), is refused whole."""
    try:
        return ingest_flows(session, device, batch, future_skew_s=settings.ingest_future_skew_s)
    except RefusedError as e:
        raise HTTPException(e.status, e.reason) from None
