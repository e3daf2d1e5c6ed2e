"""A camera's violations follow its district: those stored while it had none get it when it gets one
(through an upload, a district registered later, or an admin), and the district's officers see them."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api import admin
from api.errors import AdminError
from api.models import AuditEntry, Camera, Violation
from api.settings import Settings
from tests.api.conftest import PASSWORD, World
from tests.api.evidence import build_package, ingest, post_package

Auth = Callable[[str], dict[str, str]]


def post_cam_x(client: TestClient, world: World, district: str | None, seed: int) -> int:
    """A violation of cam-x (registered without a district) whose manifest names `district`."""
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-x", district=district, seed=seed)
    r = post_package(client, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def review_ids(client: TestClient, headers: dict[str, str]) -> list[int]:
    r = client.get("/api/v1/violations", headers=headers)
    assert r.status_code == 200, r.text
    return sorted(int(v["id"]) for v in r.json()["items"])


def stats_total(client: TestClient, headers: dict[str, str]) -> Any:
    r = client.get("/api/v1/stats/violations", params={"group_by": "district"}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["total"]


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def cam_x_district_audit(session: Session) -> list[tuple[str, str | None, str]]:
    session.rollback()
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "camera.district", AuditEntry.object_id == "cam-x")
    ).all()
    return [(a.actor, a.object_id, a.detail) for a in rows]


@pytest.mark.parametrize(
    "named", ["hoan-kiem", "Hoàn Kiếm", unicodedata.normalize("NFD", "hoàn kiếm")], ids=["id", "name", "nfd"]
)
def test_an_upload_that_names_a_registered_district_brings_the_earlier_violations(
    named: str,
    client: TestClient,
    world: World,
    auth: Auth,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A scene's `district` is what the edge puts in its manifests: an id or the district's name."""
    before = [post_cam_x(client, world, None, 1), post_cam_x(client, world, "no-such-district", 2)]
    assert review_ids(client, auth("off-b")) == []
    after = [post_cam_x(client, world, named, 3), post_cam_x(client, world, named, 4)]
    assert review_ids(client, auth("off-b")) == sorted([*before, *after])
    assert stats_total(client, auth("off-b")) == 4
    assert cam_x_district_audit(session) == [
        (
            "device:dev-a",
            "cam-x",
            '{"district":"hoan-kiem","previous":null,"source":"manifest","violations_filled":2}',
        )
    ]
    assert "manifest says district" not in caplog.text  # its name is no mismatch


@pytest.mark.parametrize("registers", ["districts add", "users add"])
def test_a_district_registered_after_its_violations_arrived_gets_them(
    registers: str, client: TestClient, world: World, settings: Settings, session: Session
) -> None:
    ids = [post_cam_x(client, world, "long-bien", seed) for seed in (1, 2)]
    other = ingest(client, world, "cam-a1")
    if registers == "districts add":
        change = admin.add_district(settings, "long-bien", "Long Biên")
        assert change == admin.DistrictChange(True, {"cam-x": 2})
        admin.add_user(settings, "off-lb", PASSWORD, "officer", "long-bien")
    else:  # the README's order: the district comes to exist with its first officer
        admin.add_user(settings, "off-lb", PASSWORD, "officer", "long-bien")
    assert review_ids(client, login(client, "off-lb")) == ids
    session.rollback()
    cam, untouched = session.get(Camera, "cam-x"), session.get(Violation, other)
    assert cam is not None and cam.district_id == "long-bien"
    assert untouched is not None and untouched.district_id == "ba-dinh"
    assert [(actor, cam) for actor, cam, _ in cam_x_district_audit(session)] == [("system:cli", "cam-x")]
    assert admin.verify_audit(settings).ok


def test_naming_a_district_as_the_evidence_does_brings_its_violations(
    client: TestClient, world: World, settings: Settings
) -> None:
    """The edge writes the scene's district as people write it; the officer's district got only an id."""
    ids = [post_cam_x(client, world, "Long Biên", seed) for seed in (1, 2)]
    admin.add_user(settings, "off-lb", PASSWORD, "officer", "long-bien")
    assert review_ids(client, login(client, "off-lb")) == []
    assert admin.add_district(settings, "long-bien", "Long Biên") == admin.DistrictChange(False, {"cam-x": 2})
    assert review_ids(client, login(client, "off-lb")) == ids


def test_an_admin_sets_the_district_of_a_camera_whose_evidence_names_none(
    client: TestClient, world: World, settings: Settings, auth: Auth
) -> None:
    ids = [post_cam_x(client, world, None, 1), post_cam_x(client, world, "Tây Hồ", 2)]
    assert admin.set_camera(settings, "cam-x", district="hoan-kiem", lat=21.03, lon=105.85) == 2
    assert review_ids(client, auth("off-b")) == ids


def test_moving_a_camera_fills_only_violations_without_a_district(
    client: TestClient, world: World, settings: Settings, auth: Auth, session: Session
) -> None:
    in_a = ingest(client, world, "cam-a1")
    assert admin.set_camera(settings, "cam-a1", district="hoan-kiem") == 0
    assert review_ids(client, auth("off-a")) == [in_a]  # what ba-dinh was given stays there
    assert review_ids(client, auth("off-b")) == []
    session.rollback()
    cam = session.get(Camera, "cam-a1")
    assert cam is not None and cam.district_id == "hoan-kiem"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"camera_id": "cam-typo", "district": "ba-dinh"}, "no camera 'cam-typo'"),
        ({"camera_id": "cam-x", "district": "ba-dnh"}, "no district 'ba-dnh'"),
        ({"camera_id": "cam-x"}, "nothing to change"),
        ({"camera_id": "cam-x", "lat": 21.0}, "both lat and lon"),
    ],
)
def test_set_camera_refuses_what_it_cannot_find(
    kwargs: dict[str, Any], message: str, settings: Settings, session: Session
) -> None:
    with pytest.raises(AdminError, match=message):
        admin.set_camera(settings, **kwargs)
    assert session.get(Camera, "cam-typo") is None
    cam = session.get(Camera, "cam-x")
    assert cam is not None and cam.district_id is None
