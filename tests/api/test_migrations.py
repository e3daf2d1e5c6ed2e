"""Migrations: the schema they create is the models' schema, on both databases, and can be reverted."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from starlette.testclient import TestClient

from api import migrate
from api.app import create_app
from api.db import make_engine
from api.errors import SchemaVersionError
from api.models import Base
from api.settings import Settings
from tests.api.conftest import JWT_SECRET, Db


def _diff(db: Db) -> list[object]:
    engine = make_engine(db.url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_object": lambda o, name, type_, r, c: (
                        not (
                            type_ == "index"
                            and name == "ix_violations_plate_key_trgm"
                            and db.kind != "postgresql"
                        )
                    ),
                },
            )
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_models(db: Db) -> None:
    assert _diff(db) == []
    engine = make_engine(db.url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("violations")}
        assert {"ix_violations_review", "ix_violations_plate_key", "ix_violations_time"} <= indexes
        assert ("ix_violations_plate_key_trgm" in indexes) == (db.kind == "postgresql")
        with engine.connect() as conn:
            if db.kind == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            else:
                extensions = {e for (e,) in conn.exec_driver_sql("SELECT extname FROM pg_extension")}
                assert {"pg_trgm", "fuzzystrmatch"} <= extensions
                target = conn.exec_driver_sql(
                    "SELECT attstattarget FROM pg_attribute "
                    "WHERE attrelid = 'violations'::regclass AND attname = 'plate_key'"
                ).scalar()
                assert target == 1000
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(db: Db) -> None:
    engine = make_engine(db.url)
    try:
        migrate.upgrade(engine, "head")  # no-op at head
        from alembic import command

        command.downgrade(migrate.alembic_config(engine), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
    assert _diff(db) == []


def test_the_server_refuses_to_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", jwt_secret=JWT_SECRET, evidence_dir=tmp_path
    )
    with (
        pytest.raises(SchemaVersionError, match=r"database is empty, .* run `phatnguoi db upgrade`"),
        TestClient(create_app(settings)),
    ):
        pass


def test_health(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    # No lifespan here (it would refuse to start): a server whose database went away answers 503.
    gone = Settings(
        database_url=f"sqlite:///{tmp_path}/no/such/dir/x.db", jwt_secret=JWT_SECRET, evidence_dir=tmp_path
    )
    r = TestClient(create_app(gone)).get("/healthz")
    assert r.status_code == 503 and r.json() == {"status": "degraded", "database": "unreachable"}
