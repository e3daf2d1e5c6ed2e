"""The login page in real Chromium on a live server: after logging in it opens `?next=` only when it is
a page of this site (a link to /login that sends officers to a look-alike site after they typed their
password is a phishing tool); and the per-address cap on failed logins (password spraying) says so.

Browsers drop tabs and newlines from a URL and read "\\" as "/" before parsing it, so "/\\t/host" is
"//host", another site; and "/.//host" is the path "//host", which opened as a path is another site
too. The page must decide on the URL as the browser parses it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from api.settings import Settings
from tests.api.conftest import PASSWORD
from tests.web.conftest import Browse, open_tab, run_server

EVIL = "evil.example"

# (next, where the officer lands: path and query); "/map" is the default page.
CASES = [
    ("/\t/" + EVIL + "/", "/map"),
    ("/\n/" + EVIL + "/", "/map"),
    ("/\r\n/" + EVIL + "/", "/map"),
    ("/\t\\" + EVIL + "/", "/map"),
    ("\t//" + EVIL + "/", "/map"),
    ("//" + EVIL + "/", "/map"),
    ("/\\" + EVIL + "/", "/map"),
    ("\\\\" + EVIL + "/", "/map"),
    ("/.//" + EVIL + "/", "/map"),
    ("http://" + EVIL + "/", "/map"),
    ("https:" + EVIL, "/map"),
    ("javascript:alert(document.domain)", "/map"),
    ("data:text/html,<h1>x</h1>", "/map"),
    ("http://[", "/map"),  # not a URL at all
    ("", "/map"),
    ("/review?rule=speeding#top", "/review?rule=speeding"),
    ("/stats", "/stats"),
    ("http://127.0.0.1:{port}/stats", "/stats"),  # this site, absolute
]


@pytest.mark.parametrize(("next_param", "lands_on"), CASES, ids=[repr(c[0]) for c in CASES])
def test_login_goes_to_next_only_on_this_site(web: Browse, next_param: str, lands_on: str) -> None:
    page: Any = web.page
    # Were the page to go there, it gets an answer (no DNS needed) and the test sees where it went.
    page.context.route(
        f"http://{EVIL}/**", lambda route: route.fulfill(body="phishing", content_type="text/html")
    )
    page.context.route(
        f"https://{EVIL}/**", lambda route: route.fulfill(body="phishing", content_type="text/html")
    )
    next_param = next_param.replace("{port}", str(urlsplit(web.base).port))
    web.goto("/login?next=" + quote(next_param, safe=""))
    page.get_by_label("Tên đăng nhập").fill("off-a")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(lambda u: "/login" not in u)
    landed = urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}" == web.base, f"left the site for {page.url}"
    # The pages add their own filters to the query (the map: ?period=today…): those of `next` are kept.
    expected = urlsplit(lands_on)
    assert landed.path == expected.path, page.url
    assert set(expected.query.split("&")) - {""} <= set(landed.query.split("&")), page.url
    page.locator("#who").wait_for()  # a page of the app, logged in
    assert "off-a" in page.locator("#who").inner_text()


def test_a_spray_from_one_address_is_refused_in_vietnamese_and_other_addresses_log_in(
    browser: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A server of its own (its cap set by the environment, as deployed, to 2): two wrong guesses at
    two usernames, then even the right password of a third waits; a client at another address (the
    loopback proxy's X-Forwarded-For, which uvicorn trusts) logs in."""
    env = {"PHATNGUOI_LOGIN_MAX_FAILURES_PER_IP": "2"}
    with run_server(make_settings(), tmp_path / "server.log", **env) as url:
        context, web = open_tab(browser, url)
        try:
            page = web.page
            web.goto("/login")
            alert = page.get_by_role("alert")
            for username, password, message in [
                ("nobody-1", "Password123", "Sai tên đăng nhập hoặc mật khẩu"),
                ("nobody-2", "Password123", "Sai tên đăng nhập hoặc mật khẩu"),
                ("off-a", PASSWORD, "Đăng nhập sai quá nhiều lần, thử lại sau"),
            ]:
                page.get_by_label("Tên đăng nhập").fill(username)
                page.get_by_label("Mật khẩu").fill(password)
                page.get_by_role("button", name="Đăng nhập").click()
                page.wait_for_function(
                    """(m) => { const e = document.getElementById("login-error");
                               return !e.hidden && e.textContent === m; }""",
                    arg=message,
                )
                assert alert.inner_text() == message
            assert urlsplit(page.url).path == "/login"
        finally:
            context.close()
        assert web.off_origin() == [] and web.errors == [], (web.off_origin(), web.errors)
        form = {"username": "off-a", "password": PASSWORD}
        r = httpx.post(f"{url}/api/v1/auth/token", data=form)
        assert r.status_code == 429 and "from this address" in r.json()["detail"]
        assert 0 < int(r.headers["retry-after"]) <= 300
        other = httpx.post(f"{url}/api/v1/auth/token", data=form, headers={"X-Forwarded-For": "203.0.113.7"})
        assert other.status_code == 200, other.text
