"""Alembic, driven from Python: upgrade a database, and check it is at the code's revision.

The migration scripts live in `api/migrations` (no alembic.ini needed). To write a new migration after
changing `api/models.py`: `python -m api.migrate revision "what changed"` against a database at head,
then review the generated file (autogenerate misses some things, e.g. server-side triggers).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from api.db import make_engine
from api.errors import SchemaVersionError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config whose env.py runs on `engine` (with our SQLite pragmas)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration in the code."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(engine), revision)


def check_schema(engine: Engine) -> None:
    """Raises `SchemaVersionError` unless the database is at the code's head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = "empty" if current is None else f"at revision {current}"
        raise SchemaVersionError(f"database is {where}, this server needs {head}: run `phatnguoi db upgrade`")


def _main(argv: list[str]) -> int:  # pragma: no cover - developer tool
    from api.settings import get_settings

    if len(argv) != 2 or argv[0] != "revision":
        log.error('usage: python -m api.migrate revision "message"')
        return 2
    engine = make_engine(get_settings().database_url)
    command.revision(alembic_config(engine), message=argv[1], autogenerate=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(_main(sys.argv[1:]))
