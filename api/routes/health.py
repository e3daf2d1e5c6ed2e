"""`GET /healthz`: liveness, database reachability and a writable evidence store (no credentials: for
load balancers).

The evidence store is checked by writing, reading back and deleting a small probe blob
(`StoreProbe`): a store the server cannot write to refuses every upload (503), so the server is not
healthy, even though its database answers. Load balancers poll often, so the result is kept for
`StoreProbe.ttl_s` seconds; `api.app.check_startup` runs the same probe before a server listens.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ReadSessionDep
from api.errors import StorageError
from api.schemas import Health
from api.storage import EvidenceStore

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

PROBE_TTL_S = 30.0
T = TypeVar("T")


def probe_store(store: EvidenceStore) -> None:
    """Write a small probe blob to `store`, read it back and delete it.

    The blob's content is random, so probes of several server processes sharing a store never meet
    (and none can match a real evidence file).

    Raises:
        StorageError: one line saying which step failed and the store's reason ("cannot write a probe
            blob: [Errno 13] Permission denied: '/var/lib/phatnguoi'").
    """
    data = b"phatnguoi evidence store probe " + secrets.token_hex(16).encode()
    uri = _step("write", lambda: store.put(data, hashlib.sha256(data).hexdigest()))
    try:
        _step("read back", lambda: store.get(uri))  # get() checks the bytes against the address
    finally:
        _step("delete", lambda: store.delete(uri))


def _step(what: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except StorageError as e:  # the store's cause without its "evidence blob <sha256>" wording
        raise StorageError(f"cannot {what} a probe blob: {e.__cause__ or e}") from e


class StoreProbe:
    """`probe_store` with its result kept for `ttl_s` seconds (one probe at a time per process)."""

    def __init__(
        self, store: EvidenceStore, ttl_s: float = PROBE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._problem: str | None = None

    def check(self, *, fresh: bool = False) -> str | None:
        """None when the store works, else one line saying why not. Probes again when the last result
        is older than `ttl_s` (or `fresh`)."""
        with self._lock:
            now = self._clock()
            if fresh or self._checked_at is None or now - self._checked_at >= self.ttl_s:
                try:
                    probe_store(self.store)
                    problem = None
                except StorageError as e:
                    problem = str(e)
                if problem is not None and problem != self._problem:
                    log.error("evidence store is not writable: %s", problem)
                elif problem is None and self._problem is not None:
                    log.info("evidence store is writable again")
                self._problem, self._checked_at = problem, now
            return self._problem


def get_store_probe(request: Request) -> StoreProbe:
    """The application's `StoreProbe` (made by `create_app`)."""
    probe: StoreProbe = request.app.state.store_probe
    return probe


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(session: ReadSessionDep, request: Request, response: Response) -> Health:
    """200 when the database answers and the evidence store takes a write, 503 (`degraded`, saying
    which) when either does not."""
    database: Literal["ok", "unreachable"] = "ok"
    try:
        session.execute(text("SELECT 1"))
        session.commit()
    except SQLAlchemyError as e:
        log.warning("health check: database unreachable: %s", e.__class__.__name__)
        database = "unreachable"
    evidence: Literal["ok", "unwritable"] = "ok" if get_store_probe(request).check() is None else "unwritable"
    if database != "ok" or evidence != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="degraded", database=database, evidence=evidence)
    return Health(status="ok", database=database, evidence=evidence)
