"""What the review app shows an officer, server side (TestClient, SQLite and PostgreSQL): the API's
refusals of a plate search, of a date filter and of a typed plate are in the error table of the pages
(api/web/i18n.py `_ERRORS_VI`, which common.js `translateError` applies), a decided violation names its
reviewer, and the camera filter lists every camera the user may see, with a position or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from api.web import i18n
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package

Auth = Callable[[str], dict[str, str]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"plate": "30A*", "fuzzy": 1},
            "Tìm gần đúng không dùng được ký tự * hoặc ?",
        ),
        (
            {"plate": "Ư"},
            "Biển số cần tìm chỉ gồm chữ cái, chữ số, * và ?",
        ),
        ({"plate": "-"}, "Biển số cần tìm chưa có ký tự nào"),
        (
            {"plate": "3*"},
            "Tìm với * hoặc ? cần ít nhất 2 ký tự của biển số",
        ),
        (
            {"from": "0202-01-01T00:00:00+07:00"},
            "Từ ngày: năm phải trong khoảng 1900–9000",
        ),
        (
            {"to": "0202-01-02T00:00:00+07:00"},
            "Đến ngày: năm phải trong khoảng 1900–9000",
        ),
        (
            {"from": "0202-01-01T00:00:00+07:00", "to": "0202-01-02T00:00:00+07:00"},
            "Từ ngày: năm phải trong khoảng 1900–9000",
        ),
    ],
)
def test_search_and_date_refusals_are_shown_in_vietnamese(
    client: TestClient, auth: Auth, query: dict[str, str | int], expected: str
) -> None:
    r = client.get("/api/v1/violations", params=query, headers=auth("off-a"))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert i18n.translate_error(detail, "vi") == expected, detail
    assert i18n.translate_error(detail, "en") == detail


def test_the_date_refusal_of_the_map_and_statistics_is_shown_in_vietnamese(
    client: TestClient, auth: Auth
) -> None:
    bad = "0202-01-01T00:00:00+07:00"
    for path, group in (
        ("/api/v1/map/violations.geojson", None),
        ("/api/v1/stats/violations", "rule"),
        ("/api/v1/stats/flows", "class"),
    ):
        r = client.get(path, params={"from": bad, "group_by": group}, headers=auth("sup"))
        assert r.status_code == 422, (path, r.text)
        assert i18n.translate_error(r.json()["detail"], "vi") == "Từ ngày: năm phải trong khoảng 1900–9000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3OA12345", "Chưa đúng dạng biển số; có phải là 30A-123.45?"),
        ("30A-1234567", "phần số cần 4 hoặc 5 chữ số, ở đây có 7"),
        ("ABC", "quá ngắn: ABC"),
    ],
)
def test_the_live_plate_check_is_shown_in_vietnamese(
    client: TestClient, auth: Auth, text: str, expected: str
) -> None:
    r = client.get("/web/api/plate-check", params={"text": text}, headers=auth("off-a"))
    assert r.status_code == 200 and r.json()["valid"] is False
    assert i18n.translate_error(r.json()["problem"], "vi") == expected


def test_a_decided_violation_names_its_reviewer(client: TestClient, world: World, auth: Auth) -> None:
    dev = world.devices["dev-a"]
    vid = int(
        post_package(
            client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1"), dev.key
        ).json()["id"]
    )
    fresh = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()
    assert (fresh["reviewed_by"], fresh["reviewed_by_name"]) == (None, None)
    decided = client.post(
        f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a")
    ).json()
    assert (decided["reviewed_by"], decided["reviewed_by_name"]) == (world.users["off-a"].id, "off-a")
    again = client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()
    assert again["reviewed_by_name"] == "off-a"
    reopened = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": "xem lại"}, headers=auth("sup"))
    assert reopened.json()["reviewed_by_name"] is None


def test_the_camera_filter_lists_cameras_without_a_position(client: TestClient, auth: Auth) -> None:
    """cam-b1 and cam-x (registered with dev-a, no district) have no position: the map leaves them
    out, the filter lists them (each user's own district's only, for officers)."""
    everyone = client.get("/web/api/cameras", headers=auth("sup"))
    assert everyone.status_code == 200
    assert [c["id"] for c in everyone.json()] == ["cam-a1", "cam-b1", "cam-x"]
    assert everyone.json()[0] == {"id": "cam-a1", "name": "Giảng Võ - Láng Hạ", "district_id": "ba-dinh"}
    assert [c["id"] for c in client.get("/web/api/cameras", headers=auth("off-b")).json()] == ["cam-b1"]
    assert [c["id"] for c in client.get("/web/api/cameras", headers=auth("off-a")).json()] == ["cam-a1"]
    assert client.get("/web/api/cameras").status_code == 401
