"""Alembic environment: migrates the engine given by `api.migrate` using `api.models` metadata."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Engine

from api.models import Base

target_metadata = Base.metadata

# Objects that exist on one database only (see the initial migration).
_POSTGRESQL_ONLY = {"ix_violations_plate_key_trgm"}


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    dialect = context.get_context().dialect.name
    return not (type_ == "index" and name in _POSTGRESQL_ONLY and dialect != "postgresql")


def run_migrations_online() -> None:
    """Run the migrations on the engine `api.migrate.alembic_config` put in the config (or, when
    run from the `alembic` command line, on the database of the PHATNGUOI_* settings)."""
    engine: Engine | None = context.config.attributes.get("engine")
    if engine is None:
        from api.db import make_engine
        from api.settings import get_settings

        engine = make_engine(get_settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=_include_object,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs go through table copies
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
