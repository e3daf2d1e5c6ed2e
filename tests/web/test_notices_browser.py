"""The owner notice in the web app, in real Chromium on the seeded live server (tests/web/conftest.py):
the violation page shows the notice's state, lookup code, clocks and SMS status, and staff mark it
posted; the supervisors' due list; the public lookup shows the notice's state and nothing of the owner.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from api.notices.workflow import due_after
from tests.web.conftest import Browse, Live
from tests.web.seed import OWNER_NAME, OWNER_PHONE
from tests.web.test_browser import axe_problems

CODE = re.compile(r"[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}")


def vn(at_utc: datetime) -> str:
    """How the pages write a UTC time: Hà Nội time, `HH:MM:SS dd/mm/yyyy`."""
    return (at_utc + timedelta(hours=7)).strftime("%H:%M:%S %d/%m/%Y")


def test_the_violation_page_shows_the_notice_and_staff_mark_it_posted(
    web: Browse, live: Live, tmp_path: Path
) -> None:
    page = web.page
    web.login("sup", "/map")

    # Confirmed while seeding, with no owner in the registry: the notice waits for one.
    side = live.seeded.ids["a-side"]
    web.goto(f"/review?id={side}&period=all&status=")
    page.locator("#notice-body").wait_for(state="visible")
    assert page.locator("#notice-state").inner_text() == "Chờ xác định chủ xe"
    code = page.locator("#notice-code").inner_text()
    assert CODE.fullmatch(code), code
    assert page.locator("#notice-next").inner_text() == "Xác định chủ xe"
    # 24:00 (Hà Nội) of the 10th day after the violation's day.
    assert page.locator("#notice-due").inner_text() == vn(due_after(live.seeded.occurred_at["a-side"], 10))
    assert page.locator("#notice-sms").inner_text().startswith("Không có SMS")
    assert page.get_by_role("button", name="Đánh dấu đã gửi bưu điện").is_hidden()
    assert page.get_by_role("button", name="In thông báo (PDF)").is_hidden()  # no one to post it to yet

    # The notice of "a-lookup" has its owner and its SMS went out: staff post the paper notice.
    lookup = live.seeded.ids["a-lookup"]
    web.goto(f"/review?id={lookup}&period=all&status=")
    page.locator("#notice-body").wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('notice-state').textContent === 'Đã gửi SMS'")
    assert page.get_by_role("button", name="In thông báo (PDF)").is_visible()
    assert page.locator("#notice-code").inner_text() == "Không hiển thị được"  # made before derived codes
    assert page.locator("#notice-escalate").inner_text() == "Tính từ ngày gửi bưu điện"
    page.get_by_role("button", name="Đánh dấu đã gửi bưu điện").click()
    page.wait_for_function("() => document.getElementById('notice-state').textContent === 'Đã gửi bưu điện'")
    assert page.locator("#notice-next").inner_text() == "Thông báo cơ quan đăng ký"
    assert CODE.search(page.locator("#notice-escalate").inner_text()) is None
    assert re.fullmatch(r"\d\d:\d\d:\d\d \d\d/\d\d/\d{4}", page.locator("#notice-escalate").inner_text())
    assert page.get_by_role("button", name="Đánh dấu đã gửi bưu điện").is_hidden()
    page.locator("#notice-box").screenshot(path=str(tmp_path / "notice-box.png"))

    # The supervisors' due list: find the owner of "a-side", warn the registration bodies for "a-lookup".
    web.goto("/notices")
    page.locator(f"#due-body a[href='/review?id={side}']").wait_for()
    rows = {r.locator("a").get_attribute("href"): r.inner_text() for r in page.locator("#due-body tr").all()}
    assert "Xác định chủ xe" in rows[f"/review?id={side}"]
    assert "Chờ xác định chủ xe" in rows[f"/review?id={side}"]
    assert "Thông báo cơ quan đăng ký" in rows[f"/review?id={lookup}"]
    page.screenshot(path=str(tmp_path / "due-list.png"))
    page.locator(f"#due-body a[href='/review?id={side}']").click()
    page.wait_for_url(f"**/review?id={side}")
    page.locator("#notice-body").wait_for(state="visible")
    assert page.locator("#notice-code").inner_text() == code

    # The owner's public lookup with the code of the notice: its state, nothing about any owner.
    web.goto("/lookup")
    page.get_by_label("Biển số xe").fill("29-B1 234.56")
    page.get_by_label("Mã tra cứu").fill(code)
    page.get_by_role("button", name="Tra cứu").click()
    page.locator("#lookup-result").wait_for(state="visible")
    assert page.locator("#lr-notice").inner_text() == "Chờ xác định chủ xe"
    html = page.content()
    assert OWNER_NAME not in html and OWNER_PHONE not in html


def test_an_officer_sees_the_notice_of_their_district_but_not_the_due_list(web: Browse, live: Live) -> None:
    page = web.page
    web.login("off-a", "/map")
    web.goto(f"/review?id={live.seeded.ids['a-side']}&period=all&status=")
    page.locator("#notice-body").wait_for(state="visible")
    assert page.locator("#notice-state").inner_text() == "Chờ xác định chủ xe"
    assert page.get_by_role("button", name="In thông báo (PDF)").is_hidden()  # supervisors print
    web.goto("/notices")  # supervisors' page: the API refuses an officer, the page says so
    page.locator("#flash.error").wait_for(state="visible")
    assert page.locator("#due-body tr").count() == 0


def test_an_admin_imports_the_registry_and_sees_why_rows_were_refused_in_vietnamese(
    web: Browse, live: Live, tmp_path: Path
) -> None:
    """The API gives the refused rows' reasons in English (for scripts); the page shows them in
    Vietnamese (api/web/i18n.py `_ERRORS_VI` through `translateError`)."""
    csv = (
        "plate,owner_name,phone,national_id,vehicle_class\n"
        "88A-111.22,Lê Văn Cường,0901234567,,car\n"  # line 2: imported
        "ABC-XYZ,Phạm Thị Dung,0901234568,,car\n"  # line 3: not a plate
        "88A-111.23,Hoàng Văn Em,,,car\n"  # line 4: no phone
        "88A 11122,Vũ Thị Giang,0901234569,,car\n"  # line 5: the plate of line 2
        "88A-111.24,Ngô Văn Long,0901234571,,tank\n"  # line 6: no such class
        "88A-111.25,Trịnh Thị Mai,0901234572,001099012345,car\n"  # line 7: the seeded owner's id
    )
    page = web.page
    web.login("admin", "/notices")
    page.get_by_role("heading", name="Nhập dữ liệu đăng ký xe").wait_for()
    page.get_by_label("Tệp CSV").set_input_files(
        files=[{"name": "dang-ky.csv", "mimeType": "text/csv", "buffer": csv.encode("utf-8")}]
    )
    page.get_by_role("button", name="Nhập dữ liệu").click()
    page.locator("#import-result").wait_for(state="visible")
    assert page.locator("#import-summary").inner_text() == (
        "Thêm mới 1 xe, cập nhật 0 xe, bỏ qua 5 dòng có lỗi."
    )
    rows = page.eval_on_selector_all(
        "#import-body tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))"
    )
    assert rows == [
        ["3", "ABC-XYZ", "Biển số không đúng định dạng"],
        ["4", "88A-111.23", "Thiếu số điện thoại"],
        ["5", "88A 11122", "Biển số trùng với dòng 2"],
        ["6", "88A-111.24", "Loại xe tank không hợp lệ (dùng car, bus, truck, motorcycle hoặc bicycle)"],
        ["7", "88A-111.25", "Số định danh đã được đăng ký cho người có họ tên khác"],
    ]
    assert axe_problems(page) == []
    page.locator("#import-card").screenshot(path=str(tmp_path / "registry-import.png"))

    # A file that is not a registry CSV: the API's refusal, in Vietnamese too.
    page.get_by_label("Tệp CSV").set_input_files(
        files=[{"name": "sai.csv", "mimeType": "text/csv", "buffer": b"bien_so,ten\n30A-123.45,An\n"}]
    )
    page.get_by_role("button", name="Nhập dữ liệu").click()
    page.locator("#import-error").wait_for(state="visible")
    assert page.locator("#import-error").inner_text() == (
        "Tệp CSV đăng ký xe thiếu cột: plate, owner_name, phone"
    )


def test_the_registry_import_is_offered_to_admins_only(web: Browse, live: Live) -> None:
    page = web.page
    web.login("sup", "/notices")
    page.wait_for_function("() => document.querySelector('#due-count').textContent !== ''")
    assert page.locator("#import-card").is_hidden()
