"""`GET /healthz`: liveness and database reachability (no credentials: for load balancers)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ReadSessionDep
from api.schemas import Health

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(session: ReadSessionDep, response: Response) -> Health:
    """200 when the database answers, 503 when it does not."""
    try:
        session.execute(text("SELECT 1"))
        session.commit()
    except SQLAlchemyError as e:
        log.warning("health check: database unreachable: %s", e.__class__.__name__)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="degraded", database="unreachable")
    return Health(status="ok", database="ok")
