"""The vehicle class in the review page, in real headless Chromium against a server of its own (uvicorn;
SQLite and PostgreSQL): the officer corrects the detector's class in the decision form ("Sửa loại
xe"), the page then shows the corrected class with the detector's, and the motorbike citation and fine;
a registered motorcycle confirmed as a car shows its notice held, with the reason in Vietnamese."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import PASSWORD
from tests.web.conftest import Browse
from tests.web.test_browser import axe_problems
from tests.web.test_review_safety import Server, fetch, ingest, server, shows, tab  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REGISTRY = "plate,owner_name,phone,vehicle_class\n29B1-678.90,Vũ Thị E,0976543210,motorcycle\n"


def import_registry(server: Server) -> None:  # noqa: F811
    with httpx.Client(base_url=server.url, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        r = c.post("/api/v1/registry/import", json={"csv": REGISTRY}, headers=headers)
        assert r.status_code == 200 and r.json()["created"] == 1, r.text


def open_violation(page: Any, tab: Browse, vid: int) -> None:  # noqa: F811
    tab.goto(f"/review?id={vid}&period=all&status=")
    shows(page, vid)


def confirm(page: Any, vid: int) -> None:
    page.locator("#ev-confirm").click()
    page.wait_for_function(
        f"() => document.querySelector('#flash').textContent.startsWith('Đã xác nhận vi phạm #{vid}')"
    )


def test_the_officer_corrects_the_vehicle_class_and_a_mismatch_is_held(tab: Browse, server: Server) -> None:  # noqa: F811
    import_registry(server)
    corrected, held = ingest(server, ["29B167890", "29B167890"])
    page = tab.page
    tab.login("off-a", "/review?period=all&status=new")

    open_violation(page, tab, corrected)
    select = page.get_by_label("Sửa loại xe")
    assert select.input_value() == "car" and select.is_enabled()
    select.select_option(label="Mô tô, xe máy")
    confirm(page, corrected)
    v = fetch(server, corrected)
    assert (v["status"], v["vehicle_class"], v["vehicle_class_corrected"]) == (
        "confirmed",
        "motorcycle",
        "motorcycle",
    )

    open_violation(page, tab, corrected)
    assert page.locator("#ev-vehicle").inner_text() == "Mô tô, xe máy (đã sửa; camera nhận dạng: Ô tô)"
    assert select.is_disabled() and select.input_value() == "motorcycle"
    page.locator("#notice-body").wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#ev-fine').textContent.includes('4.000.000')")
    assert page.locator("#ev-legal-citation").inner_text() == "Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"
    note = page.locator("#ev-legal-note").inner_text()  # the device cited the car's point
    assert note.startswith("Thiết bị ghi căn cứ khác: Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP."), note
    assert page.locator("#ev-fine").inner_text() == "4.000.000 ₫ – 6.000.000 ₫"
    assert page.locator("#notice-state").inner_text() == "Đã lập thông báo"
    assert page.locator("#notice-hold").is_hidden()

    # The other one is confirmed as the camera saw it: its notice waits for a supervisor, saying why.
    open_violation(page, tab, held)
    confirm(page, held)
    open_violation(page, tab, held)
    page.locator("#notice-hold").wait_for(state="visible")
    assert page.locator("#notice-state").inner_text() == "Chờ xác định chủ xe"
    reason = page.locator("#notice-hold").inner_text()
    assert reason.startswith("Loại xe không khớp") and "Mô tô, xe máy" in reason, reason
    assert axe_problems(page) == []
