"""What the staff see of the legal basis, in real headless Chromium against a server of its own
(uvicorn; SQLite and PostgreSQL), violations posted as signed packages through the ingest API:

- the review page states the basis the owner will be told (the legal catalogue's citation, fine range
  and licence points), not the figures a device with the car's decree table wrote for a motorbike, and
  says in Vietnamese that the device wrote another citation;
- the supervisors' Notices page shows why a notice is held (the registry's vehicle class disagrees)
  and what to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.conftest import PASSWORD
from tests.api.evidence import build_package, post_package
from tests.web.conftest import Browse
from tests.web.test_browser import axe_problems
from tests.web.test_review_safety import Server, ingest, server, tab  # noqa: F401
from tests.web.test_vehicle_class_browser import import_registry, open_violation

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CAR_RED = "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"  # what tests.api.evidence packages cite
MOTO_RED = "Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"
#: The figures a device with the car's table writes into a red-light violation's details.
CAR_FIGURES = {
    "fine_vnd": [18_000_000, 20_000_000],
    "licence_points": 4,
    "summary": "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông",
}


def ingest_one(server: Server, plate: str, seed: int, **overrides: Any) -> int:  # noqa: F811
    """Post one violation of camera cam-a1 (a minute ago, `overrides` in its manifest); its id."""
    dev = server.world.devices["dev-a"]
    at = (datetime.now(UTC) - timedelta(minutes=seed)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    pkg = build_package(
        dev.private_key,
        device_id=dev.id,
        camera_id="cam-a1",
        seed=seed,
        plate=plate,
        overrides={"occurred_at": at, **overrides},
    )
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = post_package(c, pkg, dev.key)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


def confirm_by_api(server: Server, vid: int) -> None:  # noqa: F811
    with httpx.Client(base_url=server.url, timeout=30) as c:
        token = c.post("/api/v1/auth/token", data={"username": "off-a", "password": PASSWORD}).json()
        r = c.post(
            f"/api/v1/violations/{vid}/decision",
            json={"decision": "confirm"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert r.status_code == 200, r.text


def test_the_review_page_shows_the_catalogues_basis_and_that_the_device_wrote_another(
    tab: Browse,  # noqa: F811
    server: Server,  # noqa: F811
) -> None:
    details = {"line_id": "sl1", "signal": "red", "red_for_s": 6.2, "legal": CAR_FIGURES}
    moto = ingest_one(server, "29B167890", 1, vehicle_class="motorcycle", details=details)
    car = ingest_one(server, "30A12345", 2, details=details)
    page = tab.page
    tab.login("off-a", "/review?period=all&status=new")

    open_violation(page, tab, moto)
    assert page.locator("#ev-fine").inner_text() == "4.000.000 ₫ – 6.000.000 ₫"  # the device wrote 18-20M
    assert page.locator("#ev-legal-citation").inner_text() == MOTO_RED
    assert page.locator("#ev-points").inner_text() == "4"
    note = page.locator("#ev-legal-note")
    assert note.is_visible()
    assert note.inner_text() == (
        f"Thiết bị ghi căn cứ khác: {CAR_RED}. Danh mục pháp lý không có căn cứ này cho loại xe camera "
        "nhận dạng (Mô tô, xe máy): bảng căn cứ pháp lý của thiết bị có thể sai, cần báo bộ phận kỹ "
        "thuật. Thông báo gửi chủ xe ghi căn cứ và mức phạt ở trên."
    )
    assert "18.000.000" not in page.locator("#viewer-body").inner_text()
    assert axe_problems(page) == []

    # A device citing the catalogue's point: its basis, no note.
    open_violation(page, tab, car)
    assert page.locator("#ev-legal-citation").inner_text() == CAR_RED
    assert page.locator("#ev-fine").inner_text() == "18.000.000 ₫ – 20.000.000 ₫"
    assert page.locator("#ev-legal-note").count() == 0


def test_the_notices_page_shows_why_a_notice_is_held_and_what_to_do(
    tab: Browse,  # noqa: F811
    server: Server,  # noqa: F811
) -> None:
    """A registered motorcycle detected as a car, confirmed as the camera saw it: its notice is held."""
    import_registry(server)
    (held,) = ingest(server, ["29B167890"])
    confirm_by_api(server, held)
    page = tab.page
    tab.login("sup", "/notices")
    row = page.locator(f"#due-body tr:has(a[href='/review?id={held}'])")
    row.wait_for()
    assert "Chờ xác định chủ xe" in row.inner_text()
    reason = row.locator(".hold-reason")
    assert reason.is_visible()
    text = reason.inner_text()
    assert text.startswith("Đang giữ lại, chưa gửi cho chủ xe: Loại xe không khớp: đăng ký xe ghi biển"), text
    assert "là Mô tô, xe máy, vi phạm được ghi nhận là Ô tô" in text, text
    assert "mở lại vi phạm và xác nhận với loại xe (hoặc biển số) đúng" in text, text
    assert text.endswith("quản trị viên sửa tệp đăng ký và nhập lại, thông báo sẽ được lập cho chủ xe."), text
    assert row.locator("td").nth(1).inner_text().startswith("Xem lại loại xe, biển số")
    assert axe_problems(page) == []
