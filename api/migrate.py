"""Alembic, driven from Python: upgrade a database, and check it is at the code's revision.

The migration scripts live in `api/migrations` (no alembic.ini needed). To write a new migration after
changing `api/models.py`: `python -m api.migrate revision "what changed"` against a database at head,
then review the generated file (autogenerate misses some things, e.g. server-side triggers).

Problems an operator meets here are `ServerError`s with one line each (the CLI prints it): a database
that cannot be opened or reached (`DatabaseUnavailableError`, naming the URL without its password), one
behind the code (run `phatnguoi db upgrade`) and one *ahead* of it, at a revision this code does not
know: migrated by a newer release, then the code was rolled back (`SchemaVersionError`; run the newer
release, do not downgrade the database).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from api.db import make_engine
from api.errors import DatabaseUnavailableError, SchemaVersionError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config whose env.py runs on `engine` (with our SQLite pragmas)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str:
    """The newest migration in the code."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def is_known_revision(revision: str) -> bool:
    """Whether `revision` is one of the code's migrations (a database migrated by a newer release is
    at one that is not)."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


# user:password@ in a URL a driver message may quote (we never know every place a password can appear).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)


def describe_database_error(e: SQLAlchemyError, url: URL | None = None) -> str:
    """One line for a database failure: the URL (password hidden), the driver's own message, a hint.

    No password of `url`, nor any `user:password@` in the driver's message, appears in the line.
    """
    cause = e.orig if isinstance(e, DBAPIError) and e.orig is not None else e
    text = str(cause).split("(Background on this error", 1)[0]
    message = " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(cause).__name__
    message = _URL_PASSWORD.sub(r"\g<head>:***@", message)
    if url is None:
        return f"database error: {message}"
    if url.password:  # as a word of its own: a password "p" must not turn "port" into "***ort"
        word = rf"(?<![A-Za-z0-9]){re.escape(str(url.password))}(?![A-Za-z0-9])"
        message = re.sub(word, "***", message)
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and "unable to open" in message:
        folder = Path(url.database).absolute().parent
        message += (
            f" (folder {folder} does not exist)"
            if not folder.is_dir()
            else f" (can this user write to {folder}?)"
        )
    return f"cannot use the database {where}: {message}"


def _unavailable(e: SQLAlchemyError, engine: Engine) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(describe_database_error(e, engine.url))


def _ahead(current: str) -> SchemaVersionError:
    return SchemaVersionError(
        f"database is at revision {current}, newer than this code knows (its newest is {head_revision()}): "
        "it was migrated by a newer release of phatnguoi; run that release or a later one, and do not "
        "downgrade the database"
    )


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database).

    Raises:
        DatabaseUnavailableError: the database cannot be opened or reached.
    """
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        raise _unavailable(e, engine) from e


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`.

    Raises:
        DatabaseUnavailableError: the database cannot be opened or reached.
        SchemaVersionError: the database is ahead of this code, `revision` is unknown, or a migration
            failed (its transaction is rolled back).
    """
    current = current_revision(engine)
    if current is not None and not is_known_revision(current):
        raise _ahead(current)
    try:
        command.upgrade(alembic_config(engine), revision)
    except CommandError as e:
        raise SchemaVersionError(f"cannot upgrade the database to {revision!r}: {e}") from e
    except SQLAlchemyError as e:  # it answered just before: a migration step failed
        detail = describe_database_error(e, engine.url).removeprefix("cannot use the database ")
        raise SchemaVersionError(f"upgrading the database to {revision!r} failed: {detail}") from e


def check_schema(engine: Engine) -> None:
    """Raises `SchemaVersionError` unless the database is at the code's head revision (saying whether
    it is behind, to upgrade, or ahead, from a newer release), `DatabaseUnavailableError` when the
    database cannot be opened or reached."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is not None and not is_known_revision(current):
        raise _ahead(current)
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
