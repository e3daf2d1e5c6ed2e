"""The staff view of a violation (`GET /api/v1/violations/{id}`, and the decision's answer) states the
legal basis the owner will be told — the legal catalogue's citation, fine range and licence points for
the rule, the vehicle class (as corrected on review) and the day — not the figures the device wrote;
the device's citation stays available as signed (`legal_reference_signed`), and `citation_mismatch`
says when the catalogue does not have it for the class the camera saw (a wrong decree table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.api.conftest import World
from tests.api.evidence import build_package, post_package

Auth = Callable[[str], dict[str, str]]
CAR_RED = "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"  # what tests.api.evidence packages cite
MOTO_RED = "Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"
RED_LIGHT = "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông"
#: The figures a device with the car's table writes into its details (signed evidence, never stated).
CAR_FIGURES = {"fine_vnd": [18_000_000, 20_000_000], "licence_points": 4, "summary": RED_LIGHT}


def post(client: TestClient, world: World, seed: int, **overrides: Any) -> int:
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=seed, overrides=overrides)
    r = post_package(client, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def staff_view(client: TestClient, auth: Auth, vid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def basis(citation: str, fine: tuple[int, int], points: int = 4) -> dict[str, Any]:
    return {
        "citation": citation,
        "in_catalogue": True,
        "summary": RED_LIGHT,
        "fine_min_vnd": fine[0],
        "fine_max_vnd": fine[1],
        "licence_points": points,
    }


def test_a_motorbike_cited_with_the_cars_point_shows_the_motorbike_basis_and_the_flag(
    client: TestClient, world: World, auth: Auth
) -> None:
    """The officer would otherwise confirm a motorbike while reading the car's 18-20 million đồng."""
    details = {"line_id": "sl1", "signal": "red", "red_for_s": 6.2, "legal": CAR_FIGURES}
    vid = post(client, world, 1, vehicle_class="motorcycle", details=details)
    v = staff_view(client, auth, vid)
    assert (v["legal_reference"], v["legal_reference_signed"], v["citation_mismatch"]) == (
        MOTO_RED,
        CAR_RED,
        True,
    )
    assert v["legal_basis"] == basis(MOTO_RED, (4_000_000, 6_000_000))
    assert v["details"]["legal"] == CAR_FIGURES  # the signed details stay as the device wrote them

    # The decision's answer is the same view.
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    decided = r.json()
    assert (decided["legal_reference"], decided["legal_reference_signed"], decided["citation_mismatch"]) == (
        MOTO_RED,
        CAR_RED,
        True,
    )
    assert decided["legal_basis"] == basis(MOTO_RED, (4_000_000, 6_000_000))
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    assert (notice["legal_reference"], notice["fine_min_vnd"], notice["fine_max_vnd"]) == (
        MOTO_RED,
        4_000_000,
        6_000_000,
    )


def test_a_device_citing_the_catalogues_point_is_shown_as_is(
    client: TestClient, world: World, auth: Auth
) -> None:
    car = staff_view(client, auth, post(client, world, 1))
    assert (car["legal_reference"], car["legal_reference_signed"], car["citation_mismatch"]) == (
        CAR_RED,
        CAR_RED,
        False,
    )
    assert car["legal_basis"] == basis(CAR_RED, (18_000_000, 20_000_000))
    moto = staff_view(
        client, auth, post(client, world, 2, vehicle_class="motorcycle", legal_reference=MOTO_RED)
    )
    assert (moto["legal_reference"], moto["legal_reference_signed"], moto["citation_mismatch"]) == (
        MOTO_RED,
        MOTO_RED,
        False,
    )


def test_a_class_corrected_on_review_shows_that_classs_basis_without_flagging_the_device(
    client: TestClient, world: World, auth: Auth
) -> None:
    """The device cited the car's point for the car it saw: right for its class, so not flagged."""
    vid = post(client, world, 1)
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "vehicle_class": "motorcycle"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    v = staff_view(client, auth, vid)
    assert (v["legal_reference"], v["legal_reference_signed"], v["citation_mismatch"]) == (
        MOTO_RED,
        CAR_RED,
        False,
    )
    assert v["legal_basis"] == basis(MOTO_RED, (4_000_000, 6_000_000))


def test_a_violation_the_catalogue_does_not_fine_states_the_devices_citation_and_no_fine(
    client: TestClient, world: World, auth: Auth
) -> None:
    """Speeding by a bicycle: the catalogue has no offence, so the notice would state the device's
    citation and no fine range; the staff view says so (`in_catalogue` false) rather than a fine."""
    cited = "Điểm a khoản 3 Điều 9 Nghị định 168/2024/NĐ-CP"
    vid = post(client, world, 1, rule="speeding", vehicle_class="bicycle", legal_reference=cited)
    v = staff_view(client, auth, vid)
    assert (v["legal_reference"], v["legal_reference_signed"], v["citation_mismatch"]) == (cited, cited, True)
    assert v["legal_basis"] == {
        "citation": cited,
        "in_catalogue": False,
        "summary": None,
        "fine_min_vnd": None,
        "fine_max_vnd": None,
        "licence_points": None,
    }
