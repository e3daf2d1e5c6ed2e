"""Database problems as one line (`api.migrate`): a database ahead of the code (the code was rolled back
after a newer release migrated it), and the text of driver errors, which must never carry a password."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from api import migrate
from api.db import make_engine
from api.errors import SchemaVersionError
from tests.api.conftest import Db


def test_a_database_ahead_of_the_code_is_named_so_and_left_alone(db: Db) -> None:
    engine = make_engine(db.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        head = migrate.head_revision()
        for step in (migrate.check_schema, migrate.upgrade):
            with pytest.raises(SchemaVersionError) as caught:
                step(engine)
            line = str(caught.value)
            assert f"revision 0099, newer than this code knows (its newest is {head})" in line
            assert "do not downgrade" in line and "run `phatnguoi db upgrade`" not in line
        assert migrate.current_revision(engine) == "0099"
    finally:
        engine.dispose()


def test_a_database_behind_the_code_still_says_upgrade(db: Db) -> None:
    engine = make_engine(db.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
        with pytest.raises(SchemaVersionError, match=r"at revision 0005, .* run `phatnguoi db upgrade`"):
            migrate.check_schema(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "driver_message", "expected"),
    [
        (
            "postgresql+psycopg://pn:Sup3r-s3cret@db.internal:5432/pn",
            'connection failed: FATAL:  password authentication failed for user "pn"\n',
            "cannot use the database postgresql+psycopg://pn:***@db.internal:5432/pn: connection failed: "
            'FATAL:  password authentication failed for user "pn"',
        ),
        (  # a driver quoting the URL, password and all
            "postgresql+psycopg://pn:Sup3r-s3cret@db.internal/pn",
            "invalid dsn postgresql://pn:Sup3r-s3cret@db.internal/pn\n\tsomething else",
            "cannot use the database postgresql+psycopg://pn:***@db.internal/pn: invalid dsn "
            "postgresql://pn:***@db.internal/pn something else",
        ),
        (  # a one-letter password is hidden where it stands alone, and "port" stays "port"
            "postgresql+psycopg://u:p@127.0.0.1:1/db",
            'connection to server at "127.0.0.1", port 1 failed: the password p was refused',
            "cannot use the database postgresql+psycopg://u:***@127.0.0.1:1/db: connection to server at "
            '"127.0.0.1", port 1 failed: the password *** was refused',
        ),
    ],
)
def test_driver_errors_become_one_line_without_the_password(
    url: str, driver_message: str, expected: str
) -> None:
    error = OperationalError("SELECT 1", {}, Exception(driver_message))
    assert migrate.describe_database_error(error, make_url(url)) == expected


def test_without_the_url_a_user_password_pair_is_still_hidden() -> None:
    error = OperationalError("SELECT 1", {}, Exception("bad postgresql://pn:Sup3r-s3cret@db/pn"))
    assert migrate.describe_database_error(error) == "database error: bad postgresql://pn:***@db/pn"
