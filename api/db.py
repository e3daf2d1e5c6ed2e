"""Database engines and sessions for SQLite (embedded default) and PostgreSQL (production).

SQLite is opened in WAL mode with foreign keys on, `synchronous=FULL` (an acknowledged violation must
survive a power cut) and every transaction started with `BEGIN IMMEDIATE` unless the session is
read-only: SQLite has one writer at a time anyway, and taking the write lock at the start means a
transaction that reads then writes (the audit chain reads its head, then appends) can never fail
half-way with SQLITE_BUSY_SNAPSHOT, nor fork the chain. The cost is that SQLite serialises writing
transactions, and a session left idle inside a transaction blocks every writer (so code commits or
closes promptly); PostgreSQL is the choice for many concurrent users.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from api.errors import SettingsError
from api.plate_query import edit_distance

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Pick the psycopg (v3) driver for `postgresql://` URLs; other URLs are returned unchanged.

    Raises:
        SettingsError: for a URL SQLAlchemy cannot parse or a database other than SQLite/PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except Exception as e:  # noqa: BLE001 - SQLAlchemy raises ArgumentError and ValueError here
        raise SettingsError(f"PHATNGUOI_DATABASE_URL is not a database URL: {e}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise SettingsError(
            f"PHATNGUOI_DATABASE_URL: unsupported database {backend!r} (sqlite or postgresql)"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook below issue BEGIN instead of the sqlite3 module's own implicit
    # transaction handling (which starts transactions late, only at the first write).
    dbapi_conn.isolation_level = None
    # The distance-2 plate search (PostgreSQL has it from fuzzystrmatch as levenshtein_less_equal).
    dbapi_conn.create_function("pn_editdist", 3, _editdist, deterministic=True)
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
    finally:
        cur.close()


def _editdist(a: str | None, b: str | None, limit: int) -> int | None:
    if a is None or b is None:
        return None
    return edit_distance(a, b, limit)


def _sqlite_on_begin(conn: Any) -> None:
    mode = "DEFERRED" if conn.get_execution_options().get("phatnguoi_read_only") else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url` with the pragmas/driver this project needs (see module docstring).

    Connects lazily: nothing touches the database until the first query.

    Raises:
        SettingsError: for an unusable URL.
    """
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (routes return them after committing).

    `read_only` sessions start SQLite transactions DEFERRED, so a long read (verifying the audit
    chain, statistics) does not hold the write lock; they must not write (a write after a concurrent
    commit fails with SQLITE_BUSY). On PostgreSQL both kinds are the same.
    """
    bind = engine.execution_options(phatnguoi_read_only=True) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False, autoflush=False)


def is_postgresql(session_or_engine: Session | Engine) -> bool:
    """Whether the database behind a session or engine is PostgreSQL."""
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are stored as naive UTC and
    marked UTC again when read. Naive datetimes are refused on the way in (they are ambiguous).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} (give a time zone)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
