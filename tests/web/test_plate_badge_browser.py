"""The review page's plate badge is the server's grammar check, not the device's word: in real headless
Chromium against a real server of its own (uvicorn; SQLite and PostgreSQL), with violations posted
through the ingest API as signed packages.

A device that signs `30A12` (not a plate) as `valid: true` gets the "Sai định dạng" badge, with the
reason; the correction box is left empty for the officer to type the plate; confirming without typing
is refused, in Vietnamese, and nothing is confirmed; the typed plate confirms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from tests.api.conftest import PASSWORD, World
from tests.api.evidence import build_package, post_package
from tests.web.conftest import Browse, open_tab, run_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def server(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[str]:
    """A server of this test's own (a fresh copy of the world database)."""
    with run_server(make_settings(), tmp_path / "server.log") as url:
        yield url


@pytest.fixture
def tab(browser: Any, server: str) -> Iterator[Browse]:
    context, web = open_tab(browser, server)
    try:
        yield web
    finally:
        context.close()
    assert web.off_origin() == [] and web.errors == [], (web.off_origin(), web.errors)


def post(url: str, world: World, seed: int, plate: dict[str, Any]) -> int:
    """Post a violation of cam-a1 whose signed plate section is `plate`; its id."""
    dev = world.devices["dev-a"]
    at = (datetime.now(UTC) - timedelta(minutes=seed)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    pkg = build_package(
        dev.private_key,
        device_id=dev.id,
        camera_id="cam-a1",
        seed=seed,
        overrides={"occurred_at": at, "plate": plate},
    )
    with httpx.Client(base_url=url, timeout=30) as c:
        r = post_package(c, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def status_of(url: str, vid: int) -> tuple[str, str | None]:
    with httpx.Client(base_url=url, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": "sup", "password": PASSWORD}).json()
        v = c.get(f"/api/v1/violations/{vid}", headers={"Authorization": f"Bearer {token['access_token']}"})
    return v.json()["status"], v.json()["plate"]["key"]


def shows(page: Any, vid: int) -> None:
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{vid}'")


def section(text: str, formatted: str, valid: bool) -> dict[str, Any]:
    return {
        "text": text,
        "formatted": formatted,
        "valid": valid,
        "confidence": 0.95,
        "lines": 1,
        "colour": "white",
        "raw": text,
        "alternatives": [],
    }


def test_the_badge_says_invalid_for_a_reading_the_device_called_valid(
    tab: Browse, server: str, world: World
) -> None:
    bad = post(server, world, 1, section("30A12", "30A-12", valid=True))
    good = post(server, world, 2, section("30A12345", "30A-123.45", valid=True))
    page = tab.page
    badge = page.locator("#ev-plate-valid")
    plate_box = page.get_by_label("Sửa biển số")

    tab.login("off-a", f"/review?id={good}&period=all&status=")
    shows(page, good)
    assert badge.inner_text() == "Đúng định dạng" and "ok" in (badge.get_attribute("class") or "")
    assert plate_box.input_value() == "30A-123.45"

    tab.goto(f"/review?id={bad}&period=all&status=")
    shows(page, bad)
    assert page.locator("#ev-plate-text").inner_text() == "30A-12"  # the reading is still shown
    assert badge.inner_text() == "Sai định dạng" and "warn" in (badge.get_attribute("class") or "")
    assert badge.get_attribute("title") == "quá ngắn: 30A12"
    assert plate_box.input_value() == ""  # not offered as the plate to fine

    page.locator("#ev-confirm").click()
    error = page.locator("#ev-error")
    error.wait_for(state="visible")
    assert (
        error.inner_text()
        == "Biển số thiết bị đọc được (30A-12) không hợp lệ: quá ngắn: 30A12; hãy nhập biển số"
    )
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'ev-plate-edit'")
    assert status_of(server, bad) == ("new", "30A12")

    plate_box.fill("30A-567.89")
    page.wait_for_function(
        "() => document.querySelector('#ev-plate-check').textContent === 'Hợp lệ: 30A-567.89'"
    )
    page.locator("#ev-confirm").click()
    page.wait_for_function("(id) => document.querySelector('#ev-id').textContent !== '#' + id", arg=bad)
    assert status_of(server, bad) == ("confirmed", "30A56789")
