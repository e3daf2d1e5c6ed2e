"""The review page must never decide a violation the officer did not mean, nor lose one they did: in
real headless Chromium against a real server of its own (uvicorn; SQLite and PostgreSQL), with
violations posted through the ingest API as signed packages.

- Typing in the reject dialog (a note typed while a reason is focused) is not taken for the page's
  shortcuts (c confirm, n next ...), and the rejection goes to the violation the dialog was opened for.
- A session that expired while deciding: the login page says so, and after logging in again the page
  reopens the violation with the typed plate, reason and note, to send again (not sent by itself).
- Two reviewers on one violation: the second is told, and the screen shows the decision made, by name.
- The live plate check speaks Vietnamese; focus stays in the viewer after the last decision; the camera
  filter lists cameras without a position; the map's controls are in Vietnamese.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Server:
    url: str
    world: World


@pytest.fixture
def server(make_settings: Callable[..., Settings], world: World, tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own (a fresh copy of the world database): nothing of it leaks into the
    counts the other browser tests assert."""
    with run_server(make_settings(), tmp_path / "server.log") as url:
        yield Server(url, world)


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Browse]:
    """A browser tab on `server`; after the test, no request left the app and no script error happened."""
    context, web = open_tab(browser, server.url)
    try:
        yield web
    finally:
        context.close()
    assert web.off_origin() == [] and web.errors == [], (web.off_origin(), web.errors)


def ingest(server: Server, plates: list[str], camera: str = "cam-a1") -> list[int]:
    """Post one violation per plate (newest first, a minute apart); their ids, in that order."""
    dev = server.world.devices["dev-a" if camera == "cam-a1" else "dev-b"]
    now = datetime.now(UTC)
    ids = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for k, plate in enumerate(plates):
            at = (now - timedelta(minutes=k + 1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            pkg = build_package(
                dev.private_key,
                device_id=dev.id,
                camera_id=camera,
                seed=k + 1,
                plate=plate,
                overrides={"occurred_at": at},
            )
            r = post_package(c, pkg, dev.key)
            assert r.status_code == 201, r.text
            ids.append(int(r.json()["id"]))
    return ids


def fetch(server: Server, vid: int) -> dict[str, Any]:
    """The violation as the API has it now (asked as the supervisor)."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": "sup", "password": PASSWORD}).json()
        r = c.get(f"/api/v1/violations/{vid}", headers={"Authorization": f"Bearer {token['access_token']}"})
        body: dict[str, Any] = r.json()
        return body


def statuses(server: Server, ids: list[int]) -> list[str]:
    return [fetch(server, i)["status"] for i in ids]


def shows(page: Any, vid: int) -> None:
    """Wait until the viewer shows violation `vid`."""
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{vid}'")


def focused(page: Any) -> str:
    return str(page.evaluate("() => document.activeElement.id || document.activeElement.tagName"))


# ---------------------------------------------------------------------------------------------------
# The reject dialog
# ---------------------------------------------------------------------------------------------------


def test_typing_a_note_in_the_reject_dialog_is_not_taken_for_shortcuts(tab: Browse, server: Server) -> None:
    ids = ingest(server, ["30A12345", "30A12346", "30A12347"])
    page = tab.page
    tab.login("off-a", "/review?period=all&status=new")
    page.locator(f'#queue-body tr[data-id="{ids[0]}"] a').click()
    shows(page, ids[0])
    page.keyboard.press("r")
    dialog = page.get_by_role("dialog", name="Lý do loại bỏ")
    dialog.wait_for()
    assert focused(page) == "reason-plate_unreadable"
    page.keyboard.press("ArrowUp")  # the officer arrows to "Lý do khác" and types the note right away
    assert focused(page) == "reason-other"
    page.keyboard.type("camera mờ, nhầm xe", delay=20)  # c: confirm, n: next, p: previous, r: reject
    page.wait_for_timeout(700)
    assert dialog.is_visible()
    assert page.locator("#ev-id").inner_text() == f"#{ids[0]}"
    assert page.locator("#flash").is_hidden()
    assert statuses(server, ids) == ["new", "new", "new"]

    dialog.get_by_label("Ghi chú").fill("camera mờ, nhầm xe")
    dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
    page.wait_for_function("() => document.querySelector('#flash').textContent.startsWith('Đã loại bỏ')")
    assert statuses(server, ids) == ["rejected", "new", "new"]
    v = fetch(server, ids[0])
    assert (v["decision_reason"], v["decision_note"]) == ("other", "camera mờ, nhầm xe")


def test_the_rejection_goes_to_the_violation_the_dialog_was_opened_for(tab: Browse, server: Server) -> None:
    """Even when the viewer moved on behind the dialog (a script's click on a row: no key or mouse can
    reach the page behind a modal dialog), the reason is recorded on the violation it was given for."""
    ids = ingest(server, ["30A22345", "30A22346"])
    page = tab.page
    tab.login("off-a", "/review?period=all&status=new")
    page.locator(f'#queue-body tr[data-id="{ids[0]}"] a').click()
    shows(page, ids[0])
    page.get_by_role("button", name=re.compile("^Loại bỏ")).click()
    dialog = page.get_by_role("dialog", name="Lý do loại bỏ")
    dialog.wait_for()
    assert dialog.get_by_text(f"Vi phạm #{ids[0]}").is_visible()
    page.evaluate(f"() => document.querySelector('#queue-body tr[data-id=\"{ids[1]}\"] a').click()")
    shows(page, ids[1])
    dialog.get_by_label("Trùng lặp").check()
    dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
    page.wait_for_function(
        f"() => document.querySelector('#flash').textContent === 'Đã loại bỏ vi phạm #{ids[0]}'"
    )
    assert statuses(server, ids) == ["rejected", "new"]
    assert page.locator(f'#queue-body tr[data-id="{ids[0]}"] .badge').inner_text() == "Đã loại bỏ"
    # The viewer still shows the other one, still to decide.
    assert page.locator("#ev-id").inner_text() == f"#{ids[1]}"
    assert page.locator("#ev-status").inner_text() == "Chờ duyệt"


# ---------------------------------------------------------------------------------------------------
# Session expiry
# ---------------------------------------------------------------------------------------------------


def expire_session(page: Any) -> None:
    """What an expired token does: the next API call answers 401."""
    page.evaluate("() => sessionStorage.setItem('pn.token', 'expired.token.value')")


def log_in_again(page: Any) -> None:
    page.get_by_label("Tên đăng nhập").fill("off-a")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(lambda u: "/login" not in u)


def test_a_decision_cut_off_by_an_expired_session_is_restored_after_login(
    tab: Browse, server: Server
) -> None:
    ids = ingest(server, ["30A32345", "30A32346"])
    page = tab.page
    tab.login("off-a", "/review?period=all&status=new")
    page.locator(f'#queue-body tr[data-id="{ids[1]}"] a').click()
    shows(page, ids[1])
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('id') === '{ids[1]}'")

    # A confirmation with a corrected plate.
    page.get_by_label("Sửa biển số").fill("30A-323.47")
    expire_session(page)
    page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).click()
    page.wait_for_url(re.compile(r"/login\?"))
    assert "expired=1" in page.url
    assert page.get_by_text("Phiên đăng nhập đã hết hạn, vui lòng đăng nhập lại").is_visible()
    log_in_again(page)
    shows(page, ids[1])
    page.wait_for_function("() => document.querySelector('#ev-plate-edit').value === '30A-323.47'")
    pending = page.locator("#ev-pending")
    pending.wait_for(state="visible")
    assert pending.inner_text() == (
        "Quyết định xác nhận chưa được lưu vì phiên đăng nhập đã hết hạn. "
        "Các thông tin đã nhập được giữ lại: kiểm tra rồi gửi lại."
    )
    page.wait_for_timeout(500)
    assert statuses(server, ids) == ["new", "new"]  # not sent by itself
    page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).click()
    page.wait_for_function(
        f"() => document.querySelector('#flash').textContent === 'Đã xác nhận vi phạm #{ids[1]}'"
    )
    v = fetch(server, ids[1])
    assert (v["status"], v["plate"]["corrected"]) == ("confirmed", "30A32347")
    assert pending.is_hidden()

    # A rejection with a reason and a note.
    page.locator(f'#queue-body tr[data-id="{ids[0]}"] a').click()
    shows(page, ids[0])
    page.keyboard.press("r")
    dialog = page.get_by_role("dialog", name="Lý do loại bỏ")
    dialog.get_by_label("Xe ưu tiên").check()
    dialog.get_by_label("Ghi chú").fill("xe cứu thương")
    expire_session(page)
    dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
    page.wait_for_url(re.compile(r"/login\?.*expired=1"))
    log_in_again(page)
    shows(page, ids[0])
    dialog.wait_for()
    assert dialog.get_by_label("Xe ưu tiên").is_checked()
    assert dialog.get_by_label("Ghi chú").input_value() == "xe cứu thương"
    assert dialog.get_by_text("Quyết định loại bỏ chưa được lưu").is_visible()
    page.wait_for_timeout(500)
    assert fetch(server, ids[0])["status"] == "new"
    dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
    page.wait_for_function(
        f"() => document.querySelector('#flash').textContent === 'Đã loại bỏ vi phạm #{ids[0]}'"
    )
    v = fetch(server, ids[0])
    assert (v["status"], v["decision_reason"], v["decision_note"]) == (
        "rejected",
        "emergency_vehicle",
        "xe cứu thương",
    )

    # Nothing is kept once sent: a reload restores nothing.
    tab.goto(f"/review?id={ids[0]}&period=all&status=")
    shows(page, ids[0])
    page.wait_for_timeout(300)
    assert page.locator("#ev-pending").is_hidden() and dialog.is_hidden()


# ---------------------------------------------------------------------------------------------------
# Two reviewers, the decided line, focus at the end of the list
# ---------------------------------------------------------------------------------------------------


def test_a_decision_made_meanwhile_by_someone_else_is_shown(browser: Any, server: Server) -> None:
    ids = ingest(server, ["30A42345", "30A42346"])
    context_a, a = open_tab(browser, server.url)
    context_b, b = open_tab(browser, server.url)
    try:
        a.login("off-a", f"/review?id={ids[0]}&period=all&status=new")
        b.login("sup", f"/review?id={ids[0]}&period=all&status=new")
        shows(a.page, ids[0])
        shows(b.page, ids[0])
        a.page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).click()
        a.page.wait_for_function(
            "() => document.querySelector('#flash').textContent.startsWith('Đã xác nhận')"
        )

        # B, unaware, rejects it.
        b.page.get_by_role("button", name=re.compile("^Loại bỏ")).click()
        dialog = b.page.get_by_role("dialog", name="Lý do loại bỏ")
        dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
        dialog.wait_for(state="hidden")
        error = b.page.locator("#ev-error")
        error.wait_for(state="visible")
        assert error.inner_text() == f"Vi phạm #{ids[0]} đã được xác nhận; chỉ huy có thể mở lại để duyệt lại"
        b.page.wait_for_function("() => document.querySelector('#ev-status').textContent === 'Đã xác nhận'")
        assert b.page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).is_disabled()
        assert b.page.get_by_role("button", name=re.compile("^Loại bỏ")).is_disabled()
        assert b.page.locator(f'#queue-body tr[data-id="{ids[0]}"] .badge').inner_text() == "Đã xác nhận"
        assert re.fullmatch(
            r"Đã xác nhận bởi off-a lúc \d\d:\d\d:\d\d \d\d/\d\d/\d{4}",
            b.page.locator("#ev-decided").inner_text(),
        )
        assert fetch(server, ids[0])["status"] == "confirmed"

        # Both open the other one; A rejects it, then B confirms it with the keyboard.
        b.page.locator(f'#queue-body tr[data-id="{ids[1]}"] a').click()
        shows(b.page, ids[1])
        a.page.locator(f'#queue-body tr[data-id="{ids[1]}"] a').click()
        shows(a.page, ids[1])
        a.page.keyboard.press("r")
        a.page.get_by_role("dialog", name="Lý do loại bỏ").get_by_label("Trùng lặp").check()
        a.page.get_by_role("dialog", name="Lý do loại bỏ").get_by_role(
            "button", name="Loại bỏ vi phạm"
        ).click()
        a.page.wait_for_function(
            "() => document.querySelector('#flash').textContent.startsWith('Đã loại bỏ')"
        )
        assert b.page.locator("#ev-status").inner_text() == "Chờ duyệt"
        b.page.keyboard.press("c")
        b.page.wait_for_function("() => document.querySelector('#ev-status').textContent === 'Đã loại bỏ'")
        assert error.inner_text() == f"Vi phạm #{ids[1]} đã bị loại bỏ; chỉ huy có thể mở lại để duyệt lại"
        assert b.page.locator(f'#queue-body tr[data-id="{ids[1]}"] .badge').inner_text() == "Đã loại bỏ"
        assert b.page.locator("#ev-decided").inner_text().startswith("Đã loại bỏ bởi off-a lúc ")
        assert b.page.locator("#ev-decided").inner_text().endswith(" — Trùng lặp")
        assert fetch(server, ids[1])["status"] == "rejected"
    finally:
        context_a.close()
        context_b.close()
    for web in (a, b):
        assert web.off_origin() == [] and web.errors == [], (web.off_origin(), web.errors)


def test_focus_stays_in_the_viewer_after_the_last_decision(tab: Browse, server: Server) -> None:
    [vid] = ingest(server, ["30A52345"])
    page = tab.page
    tab.login("off-a", "/review?period=all&status=new")
    shows(page, vid)
    page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#ev-status').textContent === 'Đã xác nhận'")
    assert focused(page) == "viewer"


# ---------------------------------------------------------------------------------------------------
# Plate check, camera filter, map controls
# ---------------------------------------------------------------------------------------------------


def test_the_live_plate_check_speaks_vietnamese(tab: Browse, server: Server) -> None:
    [vid] = ingest(server, ["30A62345"])
    page = tab.page
    tab.login("off-a", f"/review?id={vid}&period=all&status=")
    shows(page, vid)
    check = page.locator("#ev-plate-check")
    for typed, said in (
        ("3OA-12345", "Chưa đúng dạng biển số; có phải là 30A-123.45?"),
        ("30A-1234567", "phần số cần 4 hoặc 5 chữ số, ở đây có 7"),
        ("30A-123.46", "Hợp lệ: 30A-123.46"),
    ):
        page.get_by_label("Sửa biển số").fill(typed)
        page.wait_for_function(
            "(said) => document.querySelector('#ev-plate-check').textContent === said", arg=said
        )
        assert check.inner_text() == said


def test_the_camera_filter_lists_cameras_without_a_position(tab: Browse, server: Server) -> None:
    page = tab.page
    tab.login("off-b", "/review?period=all&status=")  # cam-b1 has no position in this world
    page.wait_for_function("() => document.querySelectorAll('#f-camera option').length > 1")
    assert page.eval_on_selector_all("#f-camera option", "os => os.map(o => [o.value, o.textContent])") == [
        ["", "Tất cả"],
        ["cam-b1", "Tràng Tiền"],
    ]


def test_the_map_controls_are_in_vietnamese(tab: Browse, server: Server) -> None:
    page = tab.page
    tab.login("sup", "/map")
    page.wait_for_selector(".cam-marker")
    zoom_in = page.locator(".leaflet-control-zoom-in")
    assert (zoom_in.get_attribute("title"), zoom_in.get_attribute("aria-label")) == ("Phóng to", "Phóng to")
    zoom_out = page.locator(".leaflet-control-zoom-out")
    assert (zoom_out.get_attribute("title"), zoom_out.get_attribute("aria-label")) == ("Thu nhỏ", "Thu nhỏ")
    assert page.locator(".leaflet-control-layers-toggle").get_attribute("title") == "Lớp bản đồ"
    page.locator('.cam-marker[data-camera="cam-a1"]').click()
    close = page.locator(".leaflet-popup-close-button")
    close.wait_for()
    assert close.get_attribute("aria-label") == "Đóng"
    close.click()
    close.wait_for(state="detached")
