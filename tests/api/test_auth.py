"""Officer login (OAuth2 password flow): tokens, the rate limit, and what gets audited."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import AuditEntry
from tests.api.conftest import PASSWORD


def login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, object]]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    return r.status_code, r.json()


def test_login_returns_a_token_that_names_the_user(client: TestClient, session: Session) -> None:
    status, body = login(client, "off-a", PASSWORD)
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["expires_in"] == 480 * 60
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (
        me.status_code == 200 and me.json()["username"] == "off-a" and me.json()["district_id"] == "ba-dinh"
    )
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action.like("auth.%"))).all()
    assert [(a.action, a.object_id, a.ip) for a in rows] == [("auth.login", "off-a", "testclient")]


def test_wrong_password_unknown_and_disabled_users_get_the_same_401(
    client: TestClient, session: Session
) -> None:
    answers = [
        login(client, u, p)
        for u, p in (("off-a", "wrong password!"), ("nobody", PASSWORD), ("off-gone", PASSWORD))
    ]
    assert answers == [(401, {"detail": "wrong username or password"})] * 3
    failed = session.scalars(
        select(AuditEntry.object_id).where(AuditEntry.action == "auth.login_failed")
    ).all()
    assert failed == ["off-a", "nobody", "off-gone"]


def test_logins_are_rate_limited_per_username_and_address(make_client: Callable[..., TestClient]) -> None:
    client = make_client(login_max_failures=3, login_window_s=60)
    assert [login(client, "off-a", "nope nope")[0] for _ in range(3)] == [401, 401, 401]
    status, body = login(client, "off-a", PASSWORD)  # even the right password waits now
    assert status == 429 and "too many failed logins" in str(body["detail"])
    r = client.post("/api/v1/auth/token", data={"username": "OFF-A", "password": PASSWORD})
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60
    assert login(client, "off-b", PASSWORD)[0] == 200  # another username is not affected


def test_a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit(
    make_client: Callable[..., TestClient],
) -> None:
    """Twenty wrong passwords at once: each password check takes ~0.1 s, so requests checked first and
    counted after would all pass the limit; counted before the check, only 3 get an answer on the
    password."""
    client = make_client(login_max_failures=3, login_window_s=60)
    with ThreadPoolExecutor(20) as pool:
        answers = sorted(pool.map(lambda _: login(client, "off-a", "nope nope")[0], range(20)))
    assert answers == [401] * 3 + [429] * 17


def test_a_success_clears_the_failures(make_client: Callable[..., TestClient]) -> None:
    client = make_client(login_max_failures=2, login_window_s=60)
    assert login(client, "sup", "nope nope")[0] == 401
    assert login(client, "sup", PASSWORD)[0] == 200
    assert login(client, "sup", "nope nope")[0] == 401
    assert login(client, "sup", PASSWORD)[0] == 200


def test_malformed_login_forms_are_422_not_500(client: TestClient) -> None:
    for data in (
        {"username": "a\x00b", "password": "x"},
        {"username": "", "password": "x"},
        {"password": "x"},
    ):
        assert client.post("/api/v1/auth/token", data=data).status_code == 422
