"""The review app in real headless Chromium against the real server (uvicorn, SQLite), seeded through
the ingest API with signed evidence packages (tests/web/seed.py).

Each test asserts what a person sees. The `web` fixture also checks, after every test, that the browser
asked nothing of any origin but the app's (no CDN, no tiles unless configured) and that no script or
Content-Security-Policy error happened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from api.webhook import deliver_pending
from tests.api.conftest import PASSWORD, World
from tests.api.evidence import build_package, post_package
from tests.api.test_webhook import SECRET, Receiver, receiver  # noqa: F401  (the penalty system)
from tests.web.conftest import Browse, Live, open_tab, run_server, screenshot_dir
from tests.web.seed import LOOKUP_CODE, OWNER_NAME, OWNER_PHONE, SPECS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

A_COUNT = sum(1 for s in SPECS if s.camera == "cam-a1")
B_COUNT = sum(1 for s in SPECS if s.camera == "cam-b1")


def api_get(live: Live, username: str, path: str, **params: Any) -> httpx.Response:
    """A request to the live API as a world user (to check what the browser did)."""
    with httpx.Client(base_url=live.url, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD}).json()
        return c.get(path, params=params, headers={"Authorization": f"Bearer {token['access_token']}"})


def map_violation_total(page: Any) -> int:
    """Violations drawn on the map: cluster numbers plus single markers."""
    total: int = page.evaluate(
        """() => [...document.querySelectorAll('.v-cluster span')]
                   .reduce((n, s) => n + Number(s.textContent), 0)
             + document.querySelectorAll('.v-marker').length"""
    )
    return total


def open_review(web: Browse, query: str) -> Any:
    page = web.page
    web.goto("/review" + query)
    page.locator("#viewer-body").wait_for(state="visible")
    return page


def wait_stills_loaded(page: Any) -> None:
    page.wait_for_function(
        """() => [...document.querySelectorAll('.stills img, #ev-plate-img')]
                 .every((img) => img.complete && img.naturalWidth > 0)"""
    )


# ---------------------------------------------------------------------------------------------------
# Log in, map
# ---------------------------------------------------------------------------------------------------


def test_login_then_map_shows_cameras_and_todays_violations(web: Browse, live: Live, tmp_path: Path) -> None:
    page = web.page
    web.goto("/review")
    page.wait_for_url(re.compile(r"/login\?next="))  # not logged in: to the login page, and back after
    page.get_by_label("Tên đăng nhập").fill("off-a")
    page.get_by_label("Mật khẩu").fill("wrong password")
    page.get_by_role("button", name="Đăng nhập").click()
    assert page.get_by_role("alert").inner_text() == "Sai tên đăng nhập hoặc mật khẩu"

    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(re.compile(r"/review"))
    assert "off-a" in page.locator("#who").inner_text() and "Cán bộ" in page.locator("#who").inner_text()
    assert page.evaluate("() => document.cookie") == ""  # the token is not a cookie

    page.get_by_role("link", name="Bản đồ").click()
    page.wait_for_selector(".cam-marker")
    page.wait_for_function("() => document.querySelector('#map-count').textContent !== ''")
    # No tile server configured: markers on a blank background, and it says so.
    assert page.locator(".leaflet-tile").count() == 0
    assert page.get_by_text("Không có bản đồ nền").is_visible()
    cameras = page.eval_on_selector_all(
        ".cam-marker", "ns => ns.map(n => [n.dataset.camera, n.dataset.status])"
    )
    assert sorted(cameras) == [["cam-a1", "online"], ["cam-a2", "stale"]]  # district A only
    assert page.locator("#map-count").inner_text() == f"{A_COUNT} vi phạm trên bản đồ"
    assert map_violation_total(page) == A_COUNT

    # Filter by type: one speeding violation in district A today.
    page.get_by_label("Loại vi phạm").select_option(label="Chạy quá tốc độ")
    page.wait_for_function("() => document.querySelector('#map-count').textContent.startsWith('1 ')")
    assert map_violation_total(page) == 1
    assert "rule=speeding" in page.url
    page.get_by_label("Trạng thái").select_option(label="Đã xác nhận")
    page.wait_for_function("() => document.querySelector('#map-count').textContent.startsWith('0 ')")
    assert map_violation_total(page) == 0

    # Clicking a camera opens its queue.
    page.locator('.cam-marker[data-camera="cam-a1"]').click()
    page.get_by_role("link", name="Mở hàng đợi của camera").click()
    page.wait_for_url(re.compile(r"/review\?.*camera=cam-a1"))
    page.locator("#queue-body tr").first.wait_for()
    assert set(
        page.eval_on_selector_all("#queue-body tr td:nth-child(4)", "ns => ns.map(n => n.textContent)")
    ) == {"cam-a1"}


def test_supervisor_map_screenshot_and_violation_popup(web: Browse, live: Live, tmp_path: Path) -> None:
    page = web.page
    web.login("sup", "/map")
    page.wait_for_function("() => document.querySelector('#map-count').textContent !== ''")
    assert page.locator("#map-count").inner_text() == f"{A_COUNT + B_COUNT} vi phạm trên bản đồ"
    cameras = page.eval_on_selector_all(".cam-marker", "ns => ns.map(n => n.dataset.camera)")
    assert sorted(cameras) == ["cam-a1", "cam-a2", "cam-b1"]
    path = screenshot_dir(tmp_path) / "web-map.png"
    page.screenshot(path=str(path))
    assert 0 < path.stat().st_size < 300_000

    # A cluster opens into its violations; one opens its evidence.
    page.locator(".v-cluster").first.click()
    page.locator(".v-marker").first.wait_for()
    page.locator(".v-marker").first.click()
    link = page.get_by_role("link", name="Xem bằng chứng")
    link.click()
    page.wait_for_url(re.compile(r"/review\?id=\d+"))
    page.locator("#viewer-body").wait_for(state="visible")


# ---------------------------------------------------------------------------------------------------
# Review queue and evidence viewer
# ---------------------------------------------------------------------------------------------------


def test_wildcard_search_then_confirm_with_the_keyboard(web: Browse, live: Live, tmp_path: Path) -> None:
    page = web.page
    web.login("off-a", "/review")
    page.locator("#queue-body tr").first.wait_for()
    page.keyboard.press("/")  # focuses the plate search
    assert page.evaluate("() => document.activeElement.id") == "f-plate"
    page.keyboard.type("30a*")
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.search.includes('plate=30a')")
    page.wait_for_function(
        """() => [...document.querySelectorAll('#queue-body td.plate-text')]
                   .every(td => td.textContent.startsWith('30A'))"""
    )
    plates = page.eval_on_selector_all("#queue-body td.plate-text", "ns => ns.map(n => n.textContent)")
    # District A's new 30A plates only: not B's 30A-999.99 / 30A-888.88, not other series.
    assert sorted(plates) == ["30A-123.45", "30A-543.21"]

    page.locator("#queue-body tr", has_text="30A-123.45").click()
    page.locator("#viewer-body").wait_for(state="visible")
    wait_stills_loaded(page)
    viewer = page.locator("#viewer")
    assert page.locator("#ev-rule").inner_text() == "Vượt đèn đỏ"
    assert page.locator("#ev-status").inner_text() == "Chờ duyệt"
    assert page.locator("#ev-plate-text").inner_text() == "30A-123.45"
    assert page.locator("#ev-plate-conf").inner_text() == "91%"
    assert "30A-123.48" in page.locator("#ev-plate-alts").inner_text()
    assert page.locator("#ev-plate-colour").inner_text() == "Trắng"
    assert page.locator("#ev-plate-lines").inner_text() == "1"
    assert page.locator("#ev-camera").inner_text() == "Giảng Võ - Láng Hạ (cam-a1)"
    assert page.locator("#ev-district").inner_text() == "Ba Đình"
    assert page.locator("#ev-signal").inner_text() == "Đèn đỏ — đỏ được 3,4 giây"
    assert page.locator("#ev-legal").inner_text().startswith("Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP")
    assert page.locator("#ev-fine").inner_text() == "18.000.000 ₫ – 20.000.000 ₫"
    assert page.locator("#ev-points").inner_text() == "4"
    assert page.locator("#ev-integrity").inner_text() == (
        "Chữ ký số hợp lệ (Ed25519, thiết bị dev-a); các tệp và thông tin vi phạm khớp với bản đã ký."
    )
    assert viewer.get_by_role("img", name="Lúc vi phạm").is_visible()
    assert page.get_by_text("Không có đoạn phim").is_visible()
    page.set_viewport_size({"width": 1280, "height": 1100})  # the whole viewer, decision buttons included
    path = screenshot_dir(tmp_path) / "web-review.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 800})
    assert 0 < path.stat().st_size < 300_000

    page.locator("#viewer").focus()
    page.keyboard.press("c")
    page.wait_for_function("() => document.querySelector('#flash').textContent.startsWith('Đã xác nhận')")
    confirmed = live.seeded.ids["a-confirm"]
    assert page.locator("#flash").inner_text() == f"Đã xác nhận vi phạm #{confirmed}"
    assert page.locator(f'#queue-body tr[data-id="{confirmed}"] .badge').inner_text() == "Đã xác nhận"
    v = api_get(live, "sup", f"/api/v1/violations/{confirmed}").json()
    assert v["status"] == "confirmed" and v["reviewed_by"] == live.world.users["off-a"].id
    # The viewer moved on to the next violation to review.
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent !== '#{confirmed}'")
    assert page.locator("#ev-status").inner_text() == "Chờ duyệt"


def test_a_supervisor_reopens_a_decision(web: Browse, live: Live) -> None:
    reopened = live.seeded.ids["a-lane"]  # rejected as a duplicate while seeding
    web.login("sup", "/map")
    page = open_review(web, f"?id={reopened}")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{reopened}'")
    assert page.locator("#ev-status").inner_text() == "Đã loại bỏ"
    assert "Trùng lặp" in page.locator("#ev-decided").inner_text()
    page.get_by_role("button", name="Mở lại").click()
    dialog = page.get_by_role("dialog", name="Mở lại")
    dialog.get_by_label("Lý do mở lại").fill("Không trùng: hai xe khác nhau")
    dialog.get_by_role("button", name="Mở lại").click()
    page.wait_for_function("() => document.querySelector('#ev-status').textContent === 'Chờ duyệt'")
    assert page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).is_enabled()
    assert api_get(live, "sup", f"/api/v1/violations/{reopened}").json()["status"] == "new"


def penalty_rows(page: Any) -> list[list[str]]:
    """The rows of the viewer's table of messages to the penalty system, as the cells' text."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#penalty-body tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))"
    )
    return rows


def test_the_viewer_shows_the_messages_to_the_penalty_system(
    browser: Any,
    receiver: Receiver,  # noqa: F811
    make_settings: Callable[..., Settings],
    world: World,
    tmp_path: Path,
) -> None:
    """Confirmed, delivered, reopened: the viewer lists the confirmation and its withdrawal, each with
    its state, attempts and last error (a server of its own whose webhook points at a receiver; the
    deliveries are made by `deliver_pending`, as a cron job would, so the test decides when)."""
    settings = make_settings(penalty_webhook_url=receiver.url, penalty_webhook_secret=SECRET)
    with run_server(
        settings,
        tmp_path / "server.log",
        PHATNGUOI_PENALTY_WEBHOOK_URL=receiver.url,
        PHATNGUOI_PENALTY_WEBHOOK_SECRET=SECRET,
        PHATNGUOI_PENALTY_WEBHOOK_INTERVAL_S="0",
    ) as url:
        dev = world.devices["dev-a"]
        with httpx.Client(base_url=url, timeout=30) as c:
            pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=3)
            vid = int(post_package(c, pkg, dev.key).json()["id"])
        context, web = open_tab(browser, url)
        try:
            page = web.page
            web.login("sup", f"/review?id={vid}&period=all&status=")
            page.locator("#viewer-body").wait_for(state="visible")
            assert page.locator("#penalty-none").is_visible() and page.locator("#penalty-table").is_hidden()

            page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).click()
            page.wait_for_function("() => document.querySelector('#ev-status').textContent === 'Đã xác nhận'")
            assert [r[:2] for r in penalty_rows(page)] == [["Chuyển xử phạt", "Đang chờ gửi"]]
            assert deliver_pending(settings).delivered == 1

            web.goto(f"/review?id={vid}&period=all&status=")
            page.locator("#penalty-body tr").first.wait_for()
            [confirmed] = penalty_rows(page)
            assert confirmed[:2] == ["Chuyển xử phạt", "Đã gửi"] and confirmed[3] == "1"
            assert "Đã nhận lúc" in confirmed[2]

            # Reopened: the penalty system has the confirmation, so a withdrawal of it is queued.
            page.get_by_role("button", name="Mở lại").click()
            dialog = page.get_by_role("dialog", name="Mở lại")
            dialog.get_by_label("Lý do mở lại").fill("Nhầm biển số")
            dialog.get_by_role("button", name="Mở lại").click()
            page.wait_for_function("() => document.querySelectorAll('#penalty-body tr').length === 2")
            assert [r[:2] for r in penalty_rows(page)] == [
                ["Chuyển xử phạt", "Đã gửi"],
                ["Thu hồi", "Đang chờ gửi"],
            ]

            # The penalty system answers 503: the withdrawal waits for its next try, with the error.
            receiver.fail_next = 1
            assert deliver_pending(settings).retrying == 1
            web.goto(f"/review?id={vid}&period=all&status=")
            page.wait_for_function("() => document.querySelectorAll('#penalty-body tr').length === 2")
            withdrawal = penalty_rows(page)[1]
            assert withdrawal[:2] == ["Thu hồi", "Đang chờ gửi"]
            assert withdrawal[3].startswith("1") and "Gửi lại lúc" in withdrawal[3]
            assert "Lỗi gần nhất: HTTP 503" in withdrawal[3]
            page.locator("#penalty-box").screenshot(path=str(tmp_path / "penalty-box.png"))
        finally:
            context.close()
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == [
        "violation.confirmed",
        "violation.withdrawn",
    ]
    assert web.off_origin() == [] and web.errors == [], (web.off_origin(), web.errors)


def test_reject_with_a_reason(web: Browse, live: Live) -> None:
    rejected = live.seeded.ids["a-reject"]
    web.login("off-a", "/map")
    page = open_review(web, f"?id={rejected}")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{rejected}'")
    assert page.locator("#ev-plate-text").inner_text() == "29-X1 123.45"
    page.locator("#viewer").focus()
    page.keyboard.press("r")
    dialog = page.get_by_role("dialog", name="Lý do loại bỏ")
    dialog.wait_for()
    # "Other" needs a note: the dialog says so instead of sending.
    dialog.get_by_label("Lý do khác").check()
    dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
    assert dialog.get_by_role("alert").inner_text() == "Cần ghi chú khi chọn “Lý do khác”"
    dialog.get_by_label("Xe ưu tiên").check()
    dialog.get_by_label("Ghi chú").fill("Xe cứu thương đang làm nhiệm vụ")
    dialog.get_by_role("button", name="Loại bỏ vi phạm").click()
    dialog.wait_for(state="hidden")
    page.wait_for_function("() => document.querySelector('#flash').textContent.startsWith('Đã loại bỏ')")
    v = api_get(live, "sup", f"/api/v1/violations/{rejected}").json()
    assert (v["status"], v["decision_reason"], v["decision_note"]) == (
        "rejected",
        "emergency_vehicle",
        "Xe cứu thương đang làm nhiệm vụ",
    )
    page.get_by_role("checkbox").count()  # the page is still usable
    web.goto(f"/review?id={rejected}")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{rejected}'")
    assert page.locator("#ev-status").inner_text() == "Đã loại bỏ"
    assert "Xe ưu tiên: Xe cứu thương đang làm nhiệm vụ" in page.locator("#ev-decided").inner_text()
    assert page.get_by_role("button", name="Xác nhận vi phạm").is_disabled()


def test_correct_the_plate_then_confirm(web: Browse, live: Live) -> None:
    edited = live.seeded.ids["a-edit"]
    web.login("off-a", "/map")
    page = open_review(web, f"?id={edited}")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{edited}'")
    field = page.get_by_label("Sửa biển số")
    assert field.input_value() == "30E-456.76"
    field.fill("30E-456.789")  # six digits: the grammar says no, on the page and on the server
    page.wait_for_function("() => document.querySelector('#ev-plate-check').classList.contains('error')")
    field.press("Enter")
    error = page.locator("#ev-error")
    error.wait_for(state="visible")
    # The API's English reason, in the page's language (api/web/i18n.py `_ERRORS_VI`).
    assert error.inner_text() == "Biển số 30E-456.789 không hợp lệ: phần số cần 4 hoặc 5 chữ số, ở đây có 6"
    assert api_get(live, "sup", f"/api/v1/violations/{edited}").json()["status"] == "new"

    field.fill("30e45678")
    page.wait_for_function(
        "() => document.querySelector('#ev-plate-check').textContent === 'Hợp lệ: 30E-456.78'"
    )
    page.get_by_role("button", name="Xác nhận vi phạm").click()
    page.wait_for_function("() => document.querySelector('#flash').textContent.startsWith('Đã xác nhận')")
    v = api_get(live, "sup", f"/api/v1/violations/{edited}").json()
    assert v["status"] == "confirmed"
    assert (v["plate"]["compact"], v["plate"]["corrected"], v["plate"]["key"]) == (
        "30E45676",
        "30E45678",
        "30E45678",
    )


def test_clip_is_offered_as_a_download_with_the_codec_note(web: Browse, live: Live) -> None:
    clip = live.seeded.ids["a-clip"]
    web.login("off-a", "/map")
    page = open_review(web, f"?id={clip}")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{clip}'")
    assert page.locator("#ev-rule").inner_text() == "Chạy quá tốc độ"
    assert page.locator("#ev-speed").inner_text() == "72 km/h / 50 km/h"
    assert "mp4v" in page.locator("#ev-clip-note").inner_text()
    with page.expect_download() as info:
        page.get_by_role("button", name="Tải đoạn phim (MP4)").click()
    download = info.value
    assert download.suggested_filename.endswith(".mp4")
    assert Path(download.path()).read_bytes() == live.seeded.clip


def test_the_queue_pages_with_the_api_cursor(web: Browse, live: Live) -> None:
    page = web.page
    web.login("sup", "/review?period=all&status=&limit=5")
    page.locator("#viewer-body").wait_for(state="visible")
    rows = page.locator("#queue-body tr")
    assert rows.count() == 5 and page.locator("#queue-count").inner_text() == "Đã tải 5 vi phạm"
    page.get_by_role("button", name="Tải thêm").click()
    page.wait_for_function("() => document.querySelectorAll('#queue-body tr').length === 10")
    # "j" past the last loaded row loads the next page too.
    page.locator("#queue-body tr").nth(9).locator("a").click()
    page.keyboard.press("j")
    page.wait_for_function(
        f"() => document.querySelectorAll('#queue-body tr').length === {A_COUNT + B_COUNT}"
    )
    assert (
        page.get_by_text("Hết danh sách").is_visible()
        and page.get_by_role("button", name="Tải thêm").is_hidden()
    )
    ids = [int(i) for i in page.eval_on_selector_all("#queue-body tr", "ns => ns.map(n => n.dataset.id)")]
    assert sorted(ids) == sorted(live.seeded.ids.values())  # each once, none skipped
    pages = [u for u in web.requests if "/api/v1/violations?" in u]
    assert len(pages) == 3 and "cursor=" not in pages[0] and all("cursor=" in u for u in pages[1:])


def test_fuzzy_plate_search_and_a_custom_period(web: Browse, live: Live) -> None:
    page = web.page
    web.login("sup", "/review?period=all&status=")
    page.locator("#queue-body tr").first.wait_for()
    page.get_by_role("searchbox", name="Biển số").fill("30A-123.46")  # one character off
    page.get_by_label("Tìm gần đúng").select_option("1")
    page.get_by_role("button", name="Tìm").click()
    page.wait_for_function("() => location.search.includes('fuzzy=1')")
    page.wait_for_function("() => document.querySelectorAll('#queue-body tr').length === 1")
    assert page.locator("#queue-body td.plate-text").inner_text() == "30A-123.45"
    page.get_by_label("Tìm gần đúng").select_option("0")
    page.get_by_role("button", name="Tìm").click()
    page.get_by_text("Không có vi phạm nào khớp bộ lọc").wait_for()

    # Yesterday only (Vietnamese days): nothing was seeded then.
    page.get_by_role("button", name="Xoá lọc").click()
    page.get_by_label("Thời gian").select_option("custom")
    yesterday = page.evaluate("() => new Date(Date.now() + 7 * 3600e3 - 86400e3).toISOString().slice(0, 10)")
    page.get_by_label("Từ ngày").fill(yesterday)
    page.get_by_label("Đến ngày").fill(yesterday)
    page.get_by_role("button", name="Tìm").click()
    page.wait_for_function("() => location.search.includes('period=custom')")
    page.get_by_text("Không có vi phạm nào khớp bộ lọc").wait_for()
    assert page.locator("#queue-body tr").count() == 0


def test_keyboard_moves_through_the_queue(web: Browse, live: Live) -> None:
    web.login("sup", "/review")
    page = web.page
    page.locator("#viewer-body").wait_for(state="visible")
    ids = page.eval_on_selector_all("#queue-body tr", "ns => ns.map(n => n.dataset.id)")
    assert len(ids) >= 3

    def shown() -> str:
        page.wait_for_function("() => document.querySelector('tr[aria-selected=true]') !== null")
        selected: str = page.eval_on_selector("tr[aria-selected=true]", "n => n.dataset.id")
        page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{selected}'")
        return selected

    assert shown() == ids[0]
    page.keyboard.press("j")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{ids[1]}'")
    page.keyboard.press("n")
    page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{ids[2]}'")
    page.keyboard.press("k")
    assert shown() == ids[1]
    page.keyboard.press("p")
    assert shown() == ids[0]
    # Tab reaches the rows' links (keyboard navigation without the shortcuts too).
    assert page.evaluate("() => document.activeElement.classList.contains('row-open')")


# ---------------------------------------------------------------------------------------------------
# Statistics, lookup
# ---------------------------------------------------------------------------------------------------


def test_statistics_charts_and_csv(web: Browse, live: Live, tmp_path: Path) -> None:
    page = web.page
    web.login("sup", "/stats")
    page.wait_for_function("() => document.querySelector('#k-total').textContent !== ''")
    assert page.locator("#k-total").inner_text() == str(A_COUNT + B_COUNT)
    assert page.locator(
        "#k-read"
    ).inner_text() == f"{(A_COUNT + B_COUNT - 1) / (A_COUNT + B_COUNT):.1%}".replace(".", ",")
    # Every chart drew something: a canvas with painted pixels and as many points as groups.
    for key, points in (
        ("rule", 6),
        ("hour", 24),
        ("camera", 2),
        ("district", 2),
        ("flow-class", 4),
        ("flow-hour", 24),
    ):
        figure = page.locator(f'figure[data-chart="{key}"]')
        assert figure.get_attribute("data-points") == str(points), key
        assert figure.locator("canvas").is_visible(), key
        painted = page.evaluate(
            """(key) => { const c = document.getElementById('chart-' + key);
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
            key,
        )
        assert painted > 500, key
    assert page.get_by_role("img", name="Theo loại vi phạm").is_visible()
    path = screenshot_dir(tmp_path) / "web-stats.png"
    page.screenshot(path=str(path))
    assert 0 < path.stat().st_size < 300_000

    with page.expect_download() as info:
        page.get_by_role("button", name="Tải CSV thống kê").click()
    csv = Path(info.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert csv[0] == "table,group,total,new,confirmed,rejected,plate_read,count"
    assert any(line.startswith("violations_by_district,hoan-kiem,3,") for line in csv)
    assert any(line.startswith("flow_by_class,motorcycle,,,,,,") for line in csv)

    with page.expect_download() as info:
        page.get_by_role("button", name="Tải danh sách vi phạm đã xác nhận (CSV)").click()
    export = Path(info.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert len(export) >= 1 + 3  # header + the seed's confirmations (and those of earlier tests)


def test_public_lookup_shows_one_violation_and_no_owner_data(web: Browse, live: Live) -> None:
    page = web.page
    web.goto("/lookup")  # no login
    assert page.get_by_role("heading", name="Tra cứu vi phạm").is_visible()
    page.get_by_label("Biển số xe").fill("30K-135.79")
    page.get_by_label("Mã tra cứu").fill("WRONG-CODE")
    page.get_by_role("button", name="Tra cứu").click()
    assert page.get_by_role("alert").inner_text() == "Không tìm thấy vi phạm với biển số và mã tra cứu này."

    page.get_by_label("Mã tra cứu").fill(LOOKUP_CODE.lower())  # case and dashes do not matter
    page.get_by_role("button", name="Tra cứu").click()
    result = page.locator("#lookup-result")
    result.wait_for(state="visible")
    assert page.locator("#lr-plate").inner_text() == "30K-135.79"
    assert page.locator("#lr-place").inner_text() == "Giảng Võ - Láng Hạ (Ba Đình)"
    assert page.locator("#lr-type").inner_text().startswith("Vượt đèn đỏ — Điểm b khoản 9 Điều 6")
    assert page.locator("#lr-status").inner_text() == "Đã xác nhận"
    at_vn = live.seeded.occurred_at["a-lookup"] + timedelta(hours=7)
    assert page.locator("#lr-time").inner_text() == at_vn.strftime("%H:%M:%S %d/%m/%Y")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#lr-stills img')].every(i => i.naturalWidth > 0)"
    )
    assert result.get_by_role("img").count() == 3
    html = page.content()
    assert OWNER_NAME not in html and OWNER_PHONE not in html and "001099012345" not in html

    # The plate of another vehicle with this code: nothing.
    page.get_by_label("Biển số xe").fill("30A-123.45")
    page.get_by_role("button", name="Tra cứu").click()
    assert page.get_by_role("alert").inner_text() == "Không tìm thấy vi phạm với biển số và mã tra cứu này."
    assert result.is_hidden()


# ---------------------------------------------------------------------------------------------------
# District isolation, language, tiles, accessibility
# ---------------------------------------------------------------------------------------------------


def test_an_officer_of_district_b_sees_nothing_of_district_a(web: Browse, live: Live) -> None:
    page = web.page
    a_ids = live.seeded.district_ids("a-")
    b_ids = live.seeded.district_ids("b-")
    web.login("off-b", "/map")
    page.wait_for_function("() => document.querySelector('#map-count').textContent !== ''")
    assert page.eval_on_selector_all(".cam-marker", "ns => ns.map(n => n.dataset.camera)") == ["cam-b1"]
    assert page.locator("#map-count").inner_text() == f"{B_COUNT} vi phạm trên bản đồ"
    assert map_violation_total(page) == B_COUNT
    district = page.get_by_label("Quận/huyện")
    assert district.is_disabled() and district.input_value() == "hoan-kiem"
    assert page.eval_on_selector_all("#f-district option", "ns => ns.map(n => n.value)") == ["hoan-kiem"]

    # The queue, every status, every time: only B's violations; a wildcard search too.
    web.goto("/review?period=all&status=")
    page.locator("#queue-body tr").first.wait_for()
    page.wait_for_function(f"() => document.querySelectorAll('#queue-body tr').length === {B_COUNT}")
    listed = {int(i) for i in page.eval_on_selector_all("#queue-body tr", "ns => ns.map(n => n.dataset.id)")}
    assert listed == b_ids
    page.get_by_role("searchbox", name="Biển số").fill("30A*")
    page.get_by_role("button", name="Tìm").click()
    page.wait_for_function("() => location.search.includes('plate=30A')")
    page.wait_for_function("() => document.querySelectorAll('#queue-body tr').length === 2")
    assert sorted(
        page.eval_on_selector_all("#queue-body td.plate-text", "ns => ns.map(n => n.textContent)")
    ) == [
        "30A-888.88",
        "30A-999.99",
    ]
    assert page.eval_on_selector_all("#f-camera option", "ns => ns.map(n => n.value)") == ["", "cam-b1"]

    # A's violation by its address: not found, and none of its evidence reached the page.
    a_one = min(a_ids)
    web.goto(f"/review?id={a_one}&period=all")
    page.wait_for_function(
        "() => document.querySelector('#viewer-empty').textContent.startsWith('Không tìm thấy')"
    )
    assert page.locator("#viewer-body").is_hidden()
    assert not any(f"/violations/{a_one}/files/" in u for u in web.requests)

    # Statistics: B's counts only.
    web.goto("/stats?period=all")
    page.wait_for_function("() => document.querySelector('#k-total').textContent !== ''")
    assert page.locator("#k-total").inner_text() == str(B_COUNT)
    assert page.locator('figure[data-chart="camera"]').get_attribute("data-points") == "1"
    # The export is for supervisors: an officer is not offered it.
    assert page.get_by_role("button", name="Tải danh sách vi phạm đã xác nhận (CSV)").is_hidden()


def test_language_switch_to_english_and_back(web: Browse, live: Live) -> None:
    page = web.page
    web.login("off-a", "/map")
    page.wait_for_selector(".cam-marker")
    page.get_by_role("button", name="English").click()
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.get_by_role("heading", level=1).inner_text() == "Violation map"
    page.wait_for_function(
        "() => document.querySelector('#map-count').textContent.endsWith('violations on the map')"
    )
    assert page.get_by_label("Violation type").is_visible()
    web.goto("/review?period=all&status=")  # the choice sticks (a cookie without any credential)
    page.locator("#viewer-body").wait_for(state="visible")
    assert page.get_by_role("button", name=re.compile("^Confirm violation")).is_visible()
    assert "status=&" in page.url  # "all statuses" survives the reload
    page.get_by_role("button", name="Tiếng Việt").click()
    page.wait_for_function("() => document.documentElement.lang === 'vi'")
    page.locator("#viewer-body").wait_for(state="visible")
    assert page.get_by_role("button", name=re.compile("^Xác nhận vi phạm")).is_visible()


class _Tiles:
    """A loopback tile server that answers every /{z}/{x}/{y}.png with one small PNG."""

    def __init__(self) -> None:
        import http.server
        import threading
        import zlib

        raw = b"".join(b"\x00" + b"\xdd\xe6\xee" * 256 for _ in range(256))

        def chunk(kind: bytes, data: bytes) -> bytes:
            import struct

            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        import struct

        png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
        png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_configured_tile_server_is_the_only_other_origin(browser: Any, live: Live, tmp_path: Path) -> None:
    tiles = _Tiles()
    try:
        with run_server(
            live.settings, tmp_path / "server.log", PHATNGUOI_MAP_TILE_URL=tiles.origin + "/{z}/{x}/{y}.png"
        ) as url:
            context, web = open_tab(browser, url, {tiles.origin})
            try:
                web.login("off-a", "/map")
                page = web.page
                page.wait_for_selector(".cam-marker")
                page.wait_for_function(
                    """() => [...document.querySelectorAll('img.leaflet-tile')]
                               .some(i => i.complete && i.naturalWidth === 256)"""
                )
                assert page.get_by_text("Không có bản đồ nền").is_hidden()
                assert map_violation_total(page) == A_COUNT
            finally:
                context.close()
    finally:
        tiles.close()
    assert tiles.requests and all(re.fullmatch(r"/\d+/\d+/\d+\.png", p) for p in tiles.requests)
    assert web.off_origin() == [] and web.errors == []
    assert any(u.startswith(tiles.origin) for u in web.requests)


AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


def axe_problems(page: Any) -> list[str]:
    """Serious and critical axe-core findings on the page as it is now (WCAG 2.1 A/AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # through the DevTools protocol: not a page script
    results = page.evaluate(
        """async () => (await axe.run(document,
                {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}))
            .violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))"""
    )
    return list(results)


def test_accessibility_with_axe_core(web: Browse, live: Live) -> None:
    page = web.page
    web.goto("/lookup")
    page.get_by_label("Biển số xe").fill("30K-135.79")
    page.get_by_label("Mã tra cứu").fill(LOOKUP_CODE)
    page.get_by_role("button", name="Tra cứu").click()
    page.locator("#lookup-result").wait_for(state="visible")
    found = {"lookup": axe_problems(page)}
    web.goto("/login")
    found["login"] = axe_problems(page)
    web.login("sup", "/map")
    page.wait_for_function("() => document.querySelector('#map-count').textContent !== ''")
    found["map"] = axe_problems(page)
    web.goto(f"/review?id={live.seeded.ids['a-clip']}&period=all&status=")
    page.locator("#viewer-body").wait_for(state="visible")
    wait_stills_loaded(page)
    found["review"] = axe_problems(page)
    page.locator("#viewer").focus()
    page.keyboard.press("r")
    page.get_by_role("dialog").wait_for()
    found["reject dialog"] = axe_problems(page)
    page.keyboard.press("Escape")
    web.goto("/stats")
    page.wait_for_function("() => document.querySelector('#k-total').textContent !== ''")
    found["stats"] = axe_problems(page)
    assert {k: v for k, v in found.items() if v} == {}
