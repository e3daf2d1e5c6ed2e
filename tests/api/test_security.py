"""Security: credentials on every route, district scoping, credential kinds kept apart, audit chain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.testclient import TestClient

from api import audit
from api.db import make_engine, make_sessionmaker, utcnow
from api.security import JWT_ALGORITHM, JWT_ISSUER, create_access_token
from tests.api.conftest import JWT_SECRET, Db, World
from tests.api.evidence import build_package, post_package

# The public lookup (plate + notice code, api/web) is the citizens' page: no credentials by design.
# The SMS gateway's delivery receipts carry an HMAC signature instead (403 without; tests/notices).
PUBLIC = {
    ("GET", "/healthz"),
    ("POST", "/api/v1/auth/token"),
    ("GET", "/api/v1/lookup"),
    ("POST", "/api/v1/sms/receipts"),
}
DEVICE_ROUTES = {("POST", "/api/v1/violations"), ("POST", "/api/v1/flows"), ("GET", "/api/v1/devices/me")}


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation in the OpenAPI schema, path parameters filled in."""
    routes = []
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        path = template.replace("{violation_id}", "1").replace("{name}", "still_at.jpg")
        assert "{" not in path, f"fill in the parameters of {template}"
        routes += [(method.upper(), path) for method in operations]
    return sorted(routes)


def stored_violation(client: TestClient, world: World, camera: str = "cam-a1", device: str = "dev-a") -> int:
    dev = world.devices[device]
    r = post_package(client, build_package(dev.private_key, device_id=dev.id, camera_id=camera), dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_every_route_without_credentials_is_401(client: TestClient) -> None:
    routes = api_routes(client)
    assert len(routes) >= 6
    checked = 0
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        r = client.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers.get("www-authenticate") == "Bearer"
        checked += 1
    assert checked == len(routes) - len(PUBLIC)


def test_a_device_key_cannot_use_officer_routes_nor_a_token_device_routes(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]]
) -> None:
    vid = stored_violation(client, world)
    device_key = world.devices["dev-a"].key
    for method, path in api_routes(client):
        if (method, path) in PUBLIC:
            continue
        path = path.replace("/violations/1", f"/violations/{vid}")
        if (method, path) in DEVICE_ROUTES:
            r = client.request(method, path, headers=auth("admin"))
        else:
            r = client.request(method, path, headers={"Authorization": f"Bearer {device_key}"})
            assert r.status_code == 401, (method, path, r.text)
            r = client.request(method, path, headers={"X-Device-Key": device_key})
        assert r.status_code == 401, (method, path, r.text)


def test_officers_see_only_their_district(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]]
) -> None:
    in_a = stored_violation(client, world, "cam-a1", "dev-a")
    in_b = stored_violation(client, world, "cam-b1", "dev-b")
    no_district = stored_violation(client, world, "cam-x", "dev-a")
    expected = {
        "off-a": {in_a: 200, in_b: 404, no_district: 404},
        "off-b": {in_a: 404, in_b: 200, no_district: 404},
        "sup": {in_a: 200, in_b: 200, no_district: 200},
        "admin": {in_a: 200, in_b: 200, no_district: 200},
    }
    for user, cases in expected.items():
        for vid, status in cases.items():
            r = client.get(f"/api/v1/violations/{vid}", headers=auth(user))
            assert r.status_code == status, (user, vid, r.text)
            f = client.get(f"/api/v1/violations/{vid}/files/still_at.jpg", headers=auth(user))
            assert f.status_code == status, (user, vid, f.text)
    # The 404 for another district's violation reads exactly like the one for a missing violation.
    foreign = client.get(f"/api/v1/violations/{in_b}", headers=auth("off-a")).json()["detail"]
    assert foreign == f"violation {in_b} not found"


def _token(**claims: object) -> str:
    now = utcnow()
    base: dict[str, object] = {
        "sub": "1",
        "iss": JWT_ISSUER,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "typ": "access",
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, JWT_SECRET, algorithm=JWT_ALGORITHM)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            lambda w: _token(sub=str(w.users["off-a"].id), exp=utcnow() - timedelta(seconds=1)), id="expired"
        ),
        pytest.param(
            lambda w: jwt.encode({"sub": str(w.users["admin"].id)}, "x" * 40, algorithm=JWT_ALGORITHM),
            id="other-secret",
        ),
        pytest.param(lambda w: _token(sub=str(w.users["admin"].id), iss="someone-else"), id="other-issuer"),
        pytest.param(lambda w: _token(sub=str(w.users["admin"].id), typ="refresh"), id="not-access"),
        pytest.param(lambda w: _token(sub=str(w.users["admin"].id), exp=None), id="no-expiry"),
        pytest.param(lambda w: _token(sub="999999"), id="unknown-user"),
        pytest.param(lambda w: _token(sub=str(w.users["off-gone"].id)), id="disabled-user"),
        pytest.param(
            lambda w: jwt.encode({"sub": str(w.users["admin"].id)}, "", algorithm="none"), id="alg-none"
        ),
        pytest.param(lambda w: _token(sub=str(w.users["off-a"].id))[:-4] + "AAAA", id="tampered-signature"),
    ],
)
def test_bad_tokens_are_401(token: Callable[[World], str], client: TestClient, world: World) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token(world)}"})
    assert r.status_code == 401, r.text


def test_a_valid_token_names_the_user(client: TestClient, world: World) -> None:
    u = world.users["off-a"]
    token, _ = create_access_token(
        user_id=u.id, username=u.username, role=u.role, secret=JWT_SECRET, minutes=1
    )
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {
        "id": u.id,
        "username": "off-a",
        "role": "officer",
        "district_id": "ba-dinh",
        "active": True,
    }


def _drop_append_only_guard(db: Db) -> Callable[[str], None]:
    """What an attacker with DDL rights does first; returns a runner of raw SQL on the database."""
    engine = make_engine(db.url)

    def run(sql: str) -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)

    return run


def test_the_audit_log_refuses_updates_and_deletes(db: Db) -> None:
    engine = make_engine(db.url)
    try:
        for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("tamper_sql", "problem"),
    [
        (
            'UPDATE audit_log SET detail = \'{"role":"officer"}\' WHERE seq = 3',
            "row 3: content does not match its hash",
        ),
        (
            "UPDATE audit_log SET actor = 'system:nobody' WHERE seq = 2",
            "row 2: content does not match its hash",
        ),
        ("DELETE FROM audit_log WHERE seq = 4", "rows 4..4 are missing"),
    ],
)
def test_the_audit_chain_detects_an_edited_or_deleted_row(
    db: Db,
    client: TestClient,
    world: World,
    auth: Callable[[str], dict[str, str]],
    tamper_sql: str,
    problem: str,
) -> None:
    vid = stored_violation(client, world)
    assert client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).status_code == 200
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine, read_only=True)() as s:
            before = audit.verify_chain(s)
        assert before.ok and before.rows >= 6, before
        actions = [a for (a,) in _rows(engine, "SELECT action FROM audit_log ORDER BY seq")]
        assert actions[-2:] == ["violation.received", "violation.view"]

        guard_off = (
            ["ALTER TABLE audit_log DISABLE TRIGGER USER"]
            if db.kind == "postgresql"
            else ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"]
        )
        with engine.begin() as conn:
            for sql in [*guard_off, tamper_sql]:
                conn.exec_driver_sql(sql)
        with make_sessionmaker(engine, read_only=True)() as s:
            after = audit.verify_chain(s)
            anchored = audit.verify_chain(s, anchor=(before.head_seq, before.head_hash))
        assert not after.ok and problem in (after.problem or ""), after
        assert not anchored.ok
    finally:
        engine.dispose()


def test_an_anchor_detects_deleted_newest_rows(db: Db, client: TestClient, world: World) -> None:
    stored_violation(client, world)
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine, read_only=True)() as s:
            head = audit.verify_chain(s)
        with engine.begin() as conn:
            if db.kind == "postgresql":
                conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
            else:
                conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
            conn.exec_driver_sql(f"DELETE FROM audit_log WHERE seq = {head.head_seq}")
        with make_sessionmaker(engine, read_only=True)() as s:
            assert audit.verify_chain(s).ok  # the remaining chain is consistent...
            report = audit.verify_chain(s, anchor=(head.head_seq, head.head_hash))
        assert not report.ok and "newest rows deleted" in (report.problem or "")  # ...but not the anchor
    finally:
        engine.dispose()


def _rows(engine: object, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return [tuple(r) for r in conn.exec_driver_sql(sql)]
