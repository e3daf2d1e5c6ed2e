"""Reading a violation and its evidence: what an officer sees, and that each view is audited."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import AuditEntry
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package


def test_an_officer_reads_a_violation_and_its_evidence(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]], session: Session
) -> None:
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1")
    vid = post_package(client, pkg, dev.key).json()["id"]

    r = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a"))
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["event_id"] == pkg.event_id and v["district_id"] == "ba-dinh" and v["status"] == "new"
    assert v["legal_reference"] == pkg.manifest["legal_reference"]
    assert (
        v["plate"]["compact"] == "30A12345"
        and v["plate"]["corrected"] is None
        and v["plate"]["key"] == "30A12345"
    )
    assert v["occurred_at"] == "2026-11-23T05:16:24.123000Z"
    assert sorted(f["name"] for f in v["files"]) == sorted(pkg.files)

    f = client.get(f"/api/v1/violations/{vid}/files/plate.jpg", headers=auth("off-a"))
    assert f.status_code == 200 and f.content == pkg.files["plate.jpg"]
    assert f.headers["content-type"] == "image/jpeg" and f.headers["cache-control"] == "private, no-store"
    missing = client.get(f"/api/v1/violations/{vid}/files/clip.mp4", headers=auth("off-a"))
    assert missing.status_code == 404

    views = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action.in_(["violation.view", "evidence.view"]))
        .order_by(AuditEntry.seq)
    ).all()
    assert [(a.action, a.actor, a.object_id, a.detail) for a in views] == [
        ("violation.view", "user:off-a", str(vid), "{}"),
        ("evidence.view", "user:off-a", str(vid), '{"file":"plate.jpg"}'),
    ]


def test_refused_views_are_not_audited_as_views(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]], session: Session
) -> None:
    dev = world.devices["dev-b"]
    vid = post_package(
        client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-b1"), dev.key
    ).json()["id"]
    assert client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).status_code == 404
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "violation.view")).all() == []


def test_out_of_range_ids_are_422_not_500(client: TestClient, auth: Callable[[str], dict[str, str]]) -> None:
    for vid in ("0", "-1", str(2**63), "abc"):
        assert client.get(f"/api/v1/violations/{vid}", headers=auth("admin")).status_code == 422
    assert client.get("/api/v1/violations/1/files/..%2Fetc", headers=auth("admin")).status_code in (404, 422)
