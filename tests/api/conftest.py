"""API test fixtures: the whole API suite runs on SQLite (a temporary file) and on PostgreSQL.

A "world" (districts, cameras, devices with keys, users) is built once per database kind through the
real admin functions into a template database; each test gets its own copy (SQLite: a file copy;
PostgreSQL: CREATE DATABASE … TEMPLATE), so tests are isolated and may commit freely, and the app is
built with `create_app(settings)` pointing at that copy. See `tests/api/pg.py` for where PostgreSQL
comes from and why PostgreSQL tests may be skipped.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api import admin
from api.app import create_app
from api.db import make_engine, make_sessionmaker
from api.models import Base
from api.security import create_access_token
from api.settings import Settings
from tests.api.pg import PgServer, postgres_server
from violations.manifest import public_key_pem

# One random secret per test session (never a literal: the settings refuse placeholders).
JWT_SECRET = secrets.token_urlsafe(48)
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class DeviceCreds:
    id: str
    key: str
    private_key: Ed25519PrivateKey
    cameras: tuple[str, ...]


@dataclass(frozen=True)
class UserCreds:
    id: int
    username: str
    role: str
    district: str | None


@dataclass(frozen=True)
class World:
    devices: dict[str, DeviceCreds]
    users: dict[str, UserCreds]


@dataclass(frozen=True)
class Db:
    kind: str
    url: str
    world: World


def _settings(url: str, evidence: Path, **overrides: Any) -> Settings:
    return Settings(**{"database_url": url, "evidence_dir": evidence, "jwt_secret": JWT_SECRET, **overrides})


def build_world(settings: Settings, keys: dict[str, Ed25519PrivateKey]) -> World:
    """Migrate and populate a database with the actors every test may use."""
    admin.upgrade_db(settings)
    admin.add_district(settings, "ba-dinh", "Ba Đình")
    admin.add_district(settings, "hoan-kiem", "Hoàn Kiếm")
    admin.add_camera(settings, "cam-a1", name="Giảng Võ - Láng Hạ", district="ba-dinh", lat=21.02, lon=105.81)
    admin.add_camera(settings, "cam-b1", name="Tràng Tiền", district="hoan-kiem")
    cameras = {"dev-a": ("cam-a1", "cam-x"), "dev-b": ("cam-b1",), "dev-off": ("cam-a1",)}
    devices = {
        d: DeviceCreds(d, admin.add_device(settings, d, list(cams), public_key_pem(keys[d])), keys[d], cams)
        for d, cams in cameras.items()
    }
    admin.set_device_active(settings, "dev-off", False)
    users = {}
    for username, role, district in [
        ("admin", "admin", None),
        ("sup", "supervisor", None),
        ("off-a", "officer", "ba-dinh"),
        ("off-b", "officer", "hoan-kiem"),
        ("off-gone", "officer", "ba-dinh"),
    ]:
        uid = admin.add_user(settings, username, PASSWORD, role, district)
        users[username] = UserCreds(uid, username, role, district)
    admin.set_user_active(settings, "off-gone", False)
    return World(devices, users)


@pytest.fixture(scope="session")
def device_keys() -> dict[str, Ed25519PrivateKey]:
    return {d: Ed25519PrivateKey.generate() for d in ("dev-a", "dev-b", "dev-off")}


@pytest.fixture(scope="session")
def sqlite_template(
    tmp_path_factory: pytest.TempPathFactory, device_keys: dict[str, Ed25519PrivateKey]
) -> tuple[Path, World]:
    root = tmp_path_factory.mktemp("sqlite-template")
    path = root / "template.db"
    world = build_world(_settings(f"sqlite:///{path}", root / "evidence"), device_keys)
    return path, world


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | str]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def pg_template(
    pg_server: PgServer | str,
    device_keys: dict[str, Ed25519PrivateKey],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PgServer, str, World]]:
    if isinstance(pg_server, str):
        pytest.skip(pg_server)
    name = pg_server.create_database()
    try:
        world = build_world(
            _settings(pg_server.url_for(name), tmp_path_factory.mktemp("pg-evidence")), device_keys
        )
        yield pg_server, name, world
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A fresh copy of the world database for this test, on each database kind."""
    if request.param == "sqlite":
        template, world = request.getfixturevalue("sqlite_template")
        path = tmp_path / "phatnguoi.db"
        shutil.copyfile(template, path)
        yield Db("sqlite", f"sqlite:///{path}", world)
        return
    server, template_name, world = request.getfixturevalue("pg_template")
    name = server.create_database(template=template_name)
    try:
        yield Db("postgresql", server.url_for(name), world)
    finally:
        server.drop_database(name)


@pytest.fixture
def world(db: Db) -> World:
    return db.world


@pytest.fixture
def make_settings(db: Db, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return _settings(db.url, tmp_path / "evidence", **overrides)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Build apps with setting overrides (each started with its lifespan, closed at the end)."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            return stack.enter_context(TestClient(create_app(make_settings(**overrides))))

        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def session(db: Db) -> Iterator[Session]:
    """A read-only session on the test database, for assertions. Call `rollback()` before looking
    again after another request: it ends the snapshot and forgets loaded objects."""
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine, read_only=True)() as s:
            yield s
    finally:
        engine.dispose()


@pytest.fixture
def count(session: Session) -> Callable[[type[Base]], int]:
    def count_rows(model: type[Base]) -> int:
        n = session.scalar(select(func.count()).select_from(model))
        session.commit()
        return int(n or 0)

    return count_rows


@pytest.fixture
def auth(world: World) -> Callable[[str], dict[str, str]]:
    """Authorization header of a world user (a token minted like the login route mints it)."""

    def header(username: str) -> dict[str, str]:
        u = world.users[username]
        token, _ = create_access_token(
            user_id=u.id, username=u.username, role=u.role, secret=JWT_SECRET, minutes=5
        )
        return {"Authorization": f"Bearer {token}"}

    return header


def stored_blobs(evidence_dir: Path) -> list[Path]:
    """Every blob in a local evidence store (no temp files either)."""
    return sorted(p for p in evidence_dir.rglob("*") if p.is_file()) if evidence_dir.exists() else []
