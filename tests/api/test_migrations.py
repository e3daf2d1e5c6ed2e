"""Migrations: the schema they create is the models' schema, on both databases, and can be reverted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from api import migrate
from api.app import create_app
from api.db import make_engine, make_sessionmaker
from api.errors import SchemaVersionError
from api.models import Base
from api.notices.registry import import_csv
from api.settings import Settings
from tests.api.conftest import JWT_SECRET, Db
from tests.api.evidence import build_package, post_package


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


def _outbox(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT violation_id, idempotency_key, status FROM penalty_deliveries ORDER BY id")
        )
        return [(int(v), str(k), str(s)) for v, k, s in rows]


def _add_delivery(engine: Engine, violation_id: int, key: str, status: str, kind: str | None) -> None:
    """One outbox row written as the schema of its revision allows (no `kind` before 0004)."""
    params = {"violation_id": violation_id, "idempotency_key": key, "status": status, "kind": kind}
    names = [n for n, value in params.items() if value is not None]
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO penalty_deliveries ({', '.join(names)}, payload, attempts, created_at) "
                f"VALUES ({', '.join(':' + n for n in names)}, '{{}}', 1, '2026-11-25 09:00:00')"
            ),
            params,
        )


def test_0004_keeps_the_penalty_outbox_and_reverts_to_one_row_per_violation(
    db: Db, client: TestClient
) -> None:
    """Upgraded, the rows of 0003 are confirmations; downgraded, withdrawals and all but the newest
    confirmation of a violation go, and a second row per violation is refused again."""
    dev = db.world.devices["dev-a"]
    packages = [build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=s) for s in (1, 2)]
    vids = [int(post_package(client, pkg, dev.key).json()["id"]) for pkg in packages]
    engine = make_engine(db.url)
    try:
        from alembic import command

        command.downgrade(migrate.alembic_config(engine), "0003")
        _add_delivery(engine, vids[0], "confirmed:a:1", "delivered", None)
        _add_delivery(engine, vids[1], "confirmed:b:1", "pending", None)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            kinds = list(conn.execute(text("SELECT kind FROM penalty_deliveries ORDER BY id")).scalars())
        assert kinds == ["confirmed", "confirmed"]

        _add_delivery(engine, vids[0], "withdrawn:a:2", "delivered", "withdrawn")
        _add_delivery(engine, vids[0], "confirmed:a:3", "pending", "confirmed")
        _add_delivery(engine, vids[0], "withdrawn:a:4", "pending", "withdrawn")
        command.downgrade(migrate.alembic_config(engine), "0003")
        assert _outbox(engine) == [
            (vids[1], "confirmed:b:1", "pending"),
            (vids[0], "confirmed:a:3", "pending"),
        ]
        with pytest.raises(IntegrityError):
            _add_delivery(engine, vids[0], "confirmed:a:5", "pending", None)
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert _diff(db) == []


def test_0005_remembers_the_plate_each_existing_notice_was_given_out_with_and_reverts(
    db: Db, client: TestClient, auth: Callable[[str], dict[str, str]]
) -> None:
    """Upgraded, a notice of a confirmed violation whose alert was queued (or whose paper notice was
    posted) gets its plate and owner in `notice_plates`; one never given out gets none."""
    dev = db.world.devices["dev-a"]
    packages = [build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=s) for s in (1, 2)]
    vids = [int(post_package(client, pkg, dev.key).json()["id"]) for pkg in packages]
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine)() as s:
            import_csv(s, "plate,owner_name,phone\n30A-123.45,Nguyễn Văn An,0912345678\n", actor="user:admin")
            s.commit()
        for vid in vids:
            r = client.post(
                f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("sup")
            )
            assert r.status_code == 200, r.text
        from alembic import command

        command.downgrade(migrate.alembic_config(engine), "0004")
        assert "notice_plates" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            notices = conn.execute(text("SELECT id, owner_id FROM notices ORDER BY violation_id")).all()
            conn.execute(
                text(
                    "INSERT INTO sms_outbox (notice_id, idempotency_key, phone, body, status, attempts,"
                    " created_at) VALUES (:n, 'k', '+84912345678', 'x', 'sent', 1, '2026-11-25 09:00:00')"
                ),
                {"n": notices[0].id},
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT notice_id, plate_key, owner_id FROM notice_plates")).all()
        assert [tuple(r) for r in rows] == [(notices[0].id, "30A12345", notices[0].owner_id)]
        command.downgrade(migrate.alembic_config(engine), "0004")
        assert not {"notice_plates", "sms_held_receipts"} & set(inspect(engine).get_table_names())
        migrate.upgrade(engine)
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
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "evidence": "ok"}
    # No lifespan here (it would refuse to start): a server whose database went away answers 503.
    gone = Settings(
        database_url=f"sqlite:///{tmp_path}/no/such/dir/x.db", jwt_secret=JWT_SECRET, evidence_dir=tmp_path
    )
    r = TestClient(create_app(gone)).get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "database": "unreachable", "evidence": "ok"}


def test_0006_adds_the_queue_of_blob_deletions_and_reverts(db: Db) -> None:
    """Downgraded, the queue is gone (its blobs wait for the sweep); upgraded again, it is empty."""
    engine = make_engine(db.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO blob_deletions (sha256, storage_uri, size, queued_at, attempts) "
                    "VALUES (:sha, :uri, 10, '2026-11-27 09:00:00', 1)"
                ),
                {"sha": "ab" * 32, "uri": f"local:ab/ab/{'ab' * 32}"},
            )
        from alembic import command

        command.downgrade(migrate.alembic_config(engine), "0005")
        assert "blob_deletions" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM blob_deletions")).scalar() == 0
    finally:
        engine.dispose()
    assert _diff(db) == []
