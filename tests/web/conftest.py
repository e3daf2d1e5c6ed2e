"""Web app test fixtures: the API tests' world and databases, the real server under uvicorn on a free
loopback port (seeded through its own ingest API), and real headless Chromium driven by Playwright.

Chromium is Debian's `chromium` package (`apt-get install chromium`), launched from /usr/bin/chromium:
Playwright's own browser download is never used. Browser tests skip with the reason when either is
missing; `.ci/run` installs both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from api.settings import Settings
from tests.api.conftest import (  # noqa: F401  (fixtures shared with the API tests)
    JWT_SECRET,
    PASSWORD,
    World,
    auth,
    client,
    count,
    db,
    device_keys,
    make_client,
    make_settings,
    pg_server,
    pg_template,
    session,
    settings,
    sqlite_template,
    world,
)
from tests.web.seed import Seeded, prepare_database, seed

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the screenshots for the README go when asked (PHATNGUOI_WEB_SCREENSHOTS=docs); else tmp.
SCREENSHOTS_ENV = "PHATNGUOI_WEB_SCREENSHOTS"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def run_server(server_settings: Settings, log_path: Path, **env_extra: str) -> Iterator[str]:
    """`uvicorn --factory api.app:app_from_env` in a subprocess, configured by environment variables
    like a deployment; yields its base URL once /healthz answers, stops it afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHATNGUOI_")}
    env.update(
        {
            "PHATNGUOI_DATABASE_URL": server_settings.database_url,
            "PHATNGUOI_EVIDENCE_DIR": str(server_settings.evidence_dir),
            "PHATNGUOI_JWT_SECRET": JWT_SECRET,
            **env_extra,
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@dataclass(frozen=True)
class Live:
    """A running, seeded server."""

    url: str
    settings: Settings
    world: World
    seeded: Seeded


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, World]]:
    """A copy of the API tests' world database for the live servers of this session, on SQLite and on
    PostgreSQL (skipped, with the reason, where there is no PostgreSQL)."""
    root = tmp_path_factory.mktemp(f"web-live-{request.param}")
    if request.param == "sqlite":
        template, the_world = request.getfixturevalue("sqlite_template")
        path = root / "phatnguoi.db"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
        name = None
    else:
        server, template_name, the_world = request.getfixturevalue("pg_template")
        name = server.create_database(template=template_name)
        url = server.url_for(name)
    live_settings = Settings(database_url=url, evidence_dir=root / "evidence", jwt_secret=JWT_SECRET)
    prepare_database(live_settings)
    try:
        yield live_settings, the_world
    finally:
        if name is not None:
            server.drop_database(name)


@pytest.fixture(scope="session")
def live(live_db: tuple[Settings, World], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The seeded server with the default web settings: no tile server (markers on a blank map)."""
    live_settings, the_world = live_db
    log = tmp_path_factory.mktemp("web-logs") / "server.log"
    with run_server(live_settings, log) as url:
        yield Live(url, live_settings, the_world, seed(url, the_world, live_settings))


@dataclass
class Browse:
    """A browser tab on a live server that records every request and every script or CSP error."""

    page: Any
    base: str
    allowed_origins: set[str]
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login(self, username: str, next_path: str = "") -> None:
        """Log in through the login page and wait for the page it leads to."""
        self.goto("/login" + (f"?next={quote(next_path, safe='/')}" if next_path else ""))
        self.page.get_by_label("Tên đăng nhập").fill(username)
        self.page.get_by_label("Mật khẩu").fill(PASSWORD)
        self.page.get_by_role("button", name="Đăng nhập").click()
        self.page.wait_for_url(lambda u: "/login" not in u)

    def off_origin(self) -> list[str]:
        """Requests that went anywhere but the allowed origins (data: and blob: URLs are local)."""
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if f"{parts.scheme}://{parts.netloc}" not in self.allowed_origins:
                out.append(url)
        return out


def screenshot_dir(tmp_path: Path) -> Path:
    """docs/ when PHATNGUOI_WEB_SCREENSHOTS=docs (the README's pictures), else the test's tmp dir."""
    return REPO_ROOT / "docs" if os.environ.get(SCREENSHOTS_ENV) == "docs" else tmp_path


def open_tab(browser: Any, base: str, extra_origins: set[str] | None = None) -> tuple[Any, Browse]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    browse = Browse(page, base, {base, *(extra_origins or set())})
    page.on("request", lambda r: browse.requests.append(r.url))
    page.on("pageerror", lambda e: browse.errors.append(f"page error: {e}"))

    def console(msg: Any) -> None:
        # A refused request (an officer opening another district's violation) logs "Failed to load
        # resource"; that is the expected answer, not a script error. CSP refusals and uncaught errors are.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            browse.errors.append(f"console: {msg.text}")

    page.on("console", console)
    return context, browse


@pytest.fixture
def web(browser: Any, live: Live) -> Iterator[Browse]:
    """A fresh browser tab (own sessionStorage) on the seeded server. After the test: no request left
    the app's origin, and no script or Content-Security-Policy error happened."""
    context, browse = open_tab(browser, live.url)
    try:
        yield browse
    finally:
        context.close()
    assert browse.off_origin() == [], f"requests outside the app: {browse.off_origin()}"
    assert browse.errors == [], browse.errors
