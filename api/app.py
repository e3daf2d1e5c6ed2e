"""The FastAPI application factory: `create_app(settings)`.

Run it with `phatnguoi serve`, or for several worker processes:
`uvicorn --factory api.app:app_from_env --workers 4` (settings from PHATNGUOI_* variables).
Building the app connects to nothing. Before a server listens, `check_startup` (run by `phatnguoi serve`
and `app_from_env`) refuses, with one line, a database that cannot be reached or is not at the code's
migration head, and an evidence store that cannot be written to (a probe blob written, read back and
deleted). At startup the app itself checks the schema again (refusing to start), probes the store for
`/healthz` (which reports an unwritable store as 503 from then on), and starts the penalty-webhook
delivery thread when a webhook URL is configured (`PHATNGUOI_PENALTY_WEBHOOK_INTERVAL_S` > 0) and the
SMS outbox thread when SMS alerts are (`PHATNGUOI_SMS_LOOKUP_URL` set, `PHATNGUOI_SMS_INTERVAL_S` > 0;
the provider, file or HTTP gateway, from `PHATNGUOI_SMS_PROVIDER`: see `api.notices.settings`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.db import make_engine, make_sessionmaker
from api.deps import AppState
from api.errors import StorageError
from api.limits import BodyLimitMiddleware
from api.migrate import check_schema
from api.notices.settings import NoticeSettings, load_notice_settings
from api.notices.sms import OutboxThread
from api.routes import auth, devices, exports, flows, health, maps, notices, stats, users, violations
from api.routes.health import StoreProbe, probe_store
from api.security import LoginLimiter
from api.settings import Settings, get_settings
from api.storage import EvidenceStore, make_store
from api.webhook import DeliveryThread

log = logging.getLogger(__name__)

API_VERSION = "1"
INGEST_PATH = "/api/v1/violations"
REGISTRY_IMPORT_PATH = "/api/v1/registry/import"
#: A registry import is one JSON body holding up to 20 MB of CSV text (`RegistryImportRequest`), with
#: room for the JSON escaping of quotes.
REGISTRY_IMPORT_MAX_BYTES = 24 * 1024 * 1024


class PrivateQueryFilter(logging.Filter):
    """Access-log lines of the public lookup without their query string: the plate and notice code in
    it open the owner's evidence page to whoever reads the log. uvicorn's access record has the
    arguments (client, method, path with query, HTTP version, status)."""

    PATHS = ("/api/v1/lookup",)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, query, _ = args[2].partition("?")
            if query and path in self.PATHS:
                record.args = (*args[:2], f"{path}?…", *args[3:])
        return True


def hide_private_queries(logger: logging.Logger | None = None) -> None:
    """Put `PrivateQueryFilter` on uvicorn's access logger (once), however the server was started."""
    logger = logger or logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PrivateQueryFilter) for f in logger.filters):
        logger.addFilter(PrivateQueryFilter())


def create_app(
    settings: Settings, *, store: EvidenceStore | None = None, notice: NoticeSettings | None = None
) -> FastAPI:
    """Build the application for `settings` (tests build their own; `store` replaces the configured one;
    `notice`: the notice and SMS settings, None reads them from the environment).

    Raises:
        SettingsError: a notice, SMS or web setting in the environment is invalid.
    """
    notice_settings = notice if notice is not None else load_notice_settings()
    engine = make_engine(settings.database_url)
    state = AppState(
        settings=settings,
        sessions=make_sessionmaker(engine),
        read_sessions=make_sessionmaker(engine, read_only=True),
        store=store if store is not None else make_store(settings),
        login_limiter=LoginLimiter(
            settings.login_max_failures,
            settings.login_window_s,
            max_failures_per_ip=settings.login_max_failures_per_ip,
        ),
    )
    store_probe = StoreProbe(state.store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hide_private_queries()  # after uvicorn has configured its loggers
        await run_in_threadpool(check_schema, engine)
        # Not a refusal here (`check_startup` refuses before listening): a store that fails later is
        # the same condition, and /healthz reports both.
        await run_in_threadpool(store_probe.check, fresh=True)
        delivery: DeliveryThread | None = None
        if settings.penalty_webhook_url and settings.penalty_webhook_interval_s > 0:
            delivery = DeliveryThread(settings, state.sessions, settings.penalty_webhook_interval_s)
            delivery.start()
        # Read at startup, not at build: tests may put their own settings on app.state in between.
        current: NoticeSettings = _app.state.notice_settings
        sms_config = current.sms_config()
        outbox: OutboxThread | None = None
        if sms_config is not None and current.sms_interval_s > 0:
            outbox = OutboxThread(state.sessions, current.provider(), sms_config, current.sms_interval_s)
            outbox.start()
            log.info("SMS outbox thread started (provider %s)", current.sms_provider)
        log.info("phatnguoi server ready (database %s)", engine.url.render_as_string(hide_password=True))
        try:
            yield
        finally:
            if outbox is not None:
                await run_in_threadpool(outbox.stop)
            if delivery is not None:
                await run_in_threadpool(delivery.stop)
            engine.dispose()

    app = FastAPI(
        title="phatnguoi",
        version=API_VERSION,
        description="Camera traffic enforcement: violation ingest from edge devices, police review.",
        lifespan=lifespan,
    )
    app.state.phatnguoi = state
    app.state.engine = engine
    app.state.store_probe = store_probe
    app.state.notice_settings = notice_settings

    def limit_for(path: str) -> int:
        path = path.rstrip("/")
        if path == INGEST_PATH:
            return settings.upload_max_bytes
        if path == REGISTRY_IMPORT_PATH:
            return REGISTRY_IMPORT_MAX_BYTES
        return settings.request_max_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for module in (health, auth, users, devices, violations, flows, stats, maps, exports, notices):
        app.include_router(module.router)
    from api.web import mount as mount_web  # the review web app (pages, static files, lookup)

    mount_web(app, settings)
    return app


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """A request FastAPI could not validate: 422 with the one-line `detail` every route declares
    (`Message`), naming the first bad field, instead of FastAPI's list of error objects."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    what = " ".join(str(first.get("msg", "invalid request")).split()).removeprefix("Value error, ")
    line = f"{where}: {what}" if where else what
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return JSONResponse(status_code=422, content={"detail": line[:500]})


def check_startup(app: FastAPI) -> None:
    """What must hold before `app` (from `create_app`) listens: the database answers and is at the code's
    migration head, and the evidence store takes a write (see `api.routes.health.probe_store`).

    Raises:
        DatabaseUnavailableError: the database cannot be opened or reached.
        SchemaVersionError: the database is behind the code (run `phatnguoi db upgrade`) or ahead of it.
        StorageError: the evidence store cannot be written, read or deleted.
    """
    engine: Engine = app.state.engine
    try:
        check_schema(engine)
    finally:
        engine.dispose()  # the server opens its own connections on its own threads
    state: AppState = app.state.phatnguoi
    try:
        probe_store(state.store)
    except StorageError as e:
        settings = state.settings
        where = (
            f"PHATNGUOI_EVIDENCE_DIR={settings.evidence_dir}"
            if settings.evidence_store == "local"
            else f"PHATNGUOI_S3_BUCKET={settings.s3_bucket}"
        )
        raise StorageError(f"the evidence store ({where}) does not work: {e}") from None


def app_from_env() -> FastAPI:
    """`create_app` with settings from the environment, checked by `check_startup` (for
    `uvicorn --factory`)."""
    app = create_app(get_settings())
    check_startup(app)
    return app
