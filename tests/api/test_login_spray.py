"""Password spraying: one guess at each of many usernames from one address. The per-username limit
never sees it; the per-address cap on failed logins does, without officers behind one NAT address
using it up by logging in."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from starlette.testclient import TestClient

from api.settings import Settings
from tests.api.conftest import PASSWORD


def login(client: TestClient, username: str, password: str) -> int:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password}).status_code


def from_address(client: TestClient, ip: str) -> TestClient:
    """Another client of the same app (same limiter), seen from `ip`."""
    return TestClient(client.app, client=(ip, 50000))


SPRAY = ["admin", "sup", "off-a", "off-b", *(f"user{i}" for i in range(20))]


def test_a_spray_from_one_address_is_stopped_at_the_cap(make_client: Callable[..., TestClient]) -> None:
    client = make_client(login_max_failures_per_ip=5, login_window_s=60)
    assert [login(client, u, "Password123") for u in SPRAY[:5]] == [401] * 5
    r = client.post("/api/v1/auth/token", data={"username": SPRAY[5], "password": "Password123"})
    assert r.status_code == 429
    assert r.json()["detail"].startswith("too many failed logins from this address; try again in ")
    assert 0 < int(r.headers["retry-after"]) <= 60
    # The sprayer learns nothing more: a right password from this address waits too.
    assert login(client, "off-b", PASSWORD) == 429
    # Another address is not affected, for any username (those sprayed included).
    other = from_address(client, "203.0.113.7")
    assert [login(other, u, PASSWORD) for u in ("admin", "sup", "off-a")] == [200] * 3


def test_the_default_cap_is_30_failed_logins_per_address(client: TestClient, settings: Settings) -> None:
    """The reviewer's spray: 30 usernames, one guess each; then the 31st is refused."""
    assert settings.login_max_failures_per_ip == 30
    names = [*SPRAY, *(f"user{i}" for i in range(20, 27))]
    assert len(names) == 31
    codes = [login(client, u, "Password123") for u in names]
    assert codes == [401] * 30 + [429]


def test_successful_logins_do_not_count_and_do_not_clear_the_address(
    make_client: Callable[..., TestClient],
) -> None:
    """Forty officers behind one NAT address log in: nobody is locked out. A success forgets that
    username's failures but not the address's (a sprayer cannot reset the cap with its own account)."""
    client = make_client(login_max_failures_per_ip=3, login_window_s=60)
    assert [login(client, u, PASSWORD) for u in ("admin", "sup", "off-a", "off-b") * 10] == [200] * 40
    assert login(client, "nobody-1", "Password123") == 401
    assert login(client, "sup", "nope nope") == 401
    assert login(client, "sup", PASSWORD) == 200  # clears sup's failure, not the address's 2
    assert login(client, "nobody-2", "Password123") == 401
    assert login(client, "nobody-3", "Password123") == 429
    assert login(client, "off-a", PASSWORD) == 429


def test_the_per_username_limit_still_applies_below_the_address_cap(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(login_max_failures=2, login_max_failures_per_ip=10, login_window_s=60)
    assert [login(client, "off-a", "nope nope") for _ in range(3)] == [401, 401, 429]
    r = client.post("/api/v1/auth/token", data={"username": "off-a", "password": PASSWORD})
    assert r.status_code == 429 and "for this username" in r.json()["detail"]
    assert login(client, "off-b", PASSWORD) == 200


def test_a_parallel_spray_gets_no_more_guesses_than_the_cap(make_client: Callable[..., TestClient]) -> None:
    """Twenty usernames at once: counted before the (slow) password check, only 3 are checked."""
    client = make_client(login_max_failures_per_ip=3, login_window_s=60)
    with ThreadPoolExecutor(20) as pool:
        codes = sorted(pool.map(lambda u: login(client, u, "Password123"), SPRAY[:20]))
    assert codes == [401] * 3 + [429] * 17
