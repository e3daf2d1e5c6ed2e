"""Ingest of real signed evidence packages: stored once, idempotent, tampering refused with nothing stored."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import AuditEntry, Camera, EvidenceFile, Violation
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import World, stored_blobs
from tests.api.evidence import Package, build_package, jpeg, post_package, signed

Count = Callable[[type[Any]], int]


def package_a(world: World, **kw: Any) -> Package:
    dev = world.devices["dev-a"]
    return build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", **kw)


def test_a_package_posted_three_times_is_stored_once(
    client: TestClient, world: World, settings: Settings, session: Session, count: Count
) -> None:
    pkg = package_a(world)
    key = world.devices["dev-a"].key
    first = post_package(client, pkg, key)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["duplicate"] is False and body["event_id"] == pkg.event_id and body["status"] == "new"
    assert body["manifest_sha256"] == hashlib.sha256(pkg.manifest_bytes).hexdigest()
    for header in ("bearer", "x-device-key"):
        again = post_package(client, pkg, key, header=header)
        assert again.status_code == 200, again.text
        assert again.json() == {**body, "duplicate": True}
    assert count(Violation) == 1
    assert count(EvidenceFile) == 4

    v = session.scalars(select(Violation)).one()
    assert (v.rule, v.camera_id, v.district_id, v.device_id) == ("red_light", "cam-a1", "ba-dinh", "dev-a")
    assert v.occurred_at.isoformat() == "2026-11-23T05:16:24.123000+00:00"
    assert (v.plate_compact, v.plate_key, v.plate_formatted, v.plate_valid) == (
        "30A12345",
        "30A12345",
        "30A-123.45",
        True,
    )
    assert v.signal_state == "red" and v.red_for_s == pytest.approx(6.2)
    assert v.manifest == pkg.manifest and v.signature == pkg.signature
    store = LocalStore(settings.evidence_dir)
    for f in v.files:
        assert store.get(f.storage_uri) == pkg.files[f.name]
        assert f.sha256 == hashlib.sha256(pkg.files[f.name]).hexdigest()
    assert len(stored_blobs(settings.evidence_dir)) == 4
    received = session.scalars(select(AuditEntry).where(AuditEntry.action == "violation.received")).all()
    assert [(a.actor, a.object_id) for a in received] == [("device:dev-a", str(v.id))]
    cam = session.get(Camera, "cam-a1")
    assert (
        cam is not None and cam.last_seen is not None and cam.scene_version == pkg.manifest["scene_version"]
    )


def test_a_conflicting_repeat_is_refused_and_the_stored_violation_kept(
    client: TestClient, world: World, session: Session, count: Count
) -> None:
    key = world.devices["dev-a"].key
    first = package_a(world, plate="30A12345")
    assert post_package(client, first, key).status_code == 201
    other = package_a(world, plate="29B99999", event_id=first.event_id)
    r = post_package(client, other, key)
    assert r.status_code == 409, r.text
    assert "already stored with another manifest" in r.json()["detail"]
    assert count(Violation) == 1
    assert session.scalars(select(Violation.plate_compact)).one() == "30A12345"


def test_odd_but_valid_values_are_stored_on_both_databases(
    client: TestClient, world: World, session: Session
) -> None:
    long_plate = "9" * 200  # an OCR result no plate has, still within the manifest's limits
    pkg = package_a(world, plate=long_plate, overrides={"details": {"speed_kmh": 1e300, "note": "Đèn đỏ ✓"}})
    r = post_package(client, pkg, world.devices["dev-a"].key)
    assert r.status_code == 201, r.text
    v = session.scalars(select(Violation)).one()
    assert v.plate_compact == long_plate and v.speed_kmh == 1e300 and v.details["note"] == "Đèn đỏ ✓"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"legal_reference": "Điều 6\x00"}, "legal_reference contains a NUL character"),
        ({"track_id": 2**70}, "track_id is beyond a 64-bit integer"),
        ({"details": {"a": [1, 2, -(2**64)]}}, "details.a[2] is beyond a 64-bit integer"),
    ],
)
def test_values_no_database_can_hold_are_refused_with_422(
    overrides: dict[str, Any], reason: str, client: TestClient, world: World, count: Count
) -> None:
    r = post_package(client, package_a(world, overrides=overrides), world.devices["dev-a"].key)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == f"manifest: {reason}"
    assert count(Violation) == 0


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        ("9999-12-31T00:00:00.000Z", "is in the future: check the device clock"),
        ("1899-12-31T23:00:00.000Z", "is before 2000: check the device clock"),
    ],
)
def test_a_violation_time_no_clock_can_have_meant_is_refused_with_422(
    occurred_at: str, reason: str, client: TestClient, world: World, count: Count
) -> None:
    """Such dates were stored and then broke the supervisors' due list (500) and paging (422)."""
    r = post_package(
        client, package_a(world, overrides={"occurred_at": occurred_at}), world.devices["dev-a"].key
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].endswith(reason)
    assert count(Violation) == 0


def test_a_server_can_refuse_violations_older_than_it_takes() -> None:
    from datetime import UTC, datetime, timedelta

    from api.errors import RefusedError
    from api.services.ingest import _check_time
    from tests.api.conftest import JWT_SECRET

    now = datetime(2026, 11, 23, tzinfo=UTC)
    settings = Settings(jwt_secret=JWT_SECRET, ingest_max_age_days=30)
    _check_time(settings, now - timedelta(days=29), now)
    with pytest.raises(RefusedError, match="older than 30 days"):
        _check_time(settings, now - timedelta(days=31), now)


def test_a_package_without_plate_or_crop_is_stored(
    client: TestClient, world: World, session: Session
) -> None:
    pkg = package_a(world, plate=None, with_plate_crop=False)
    r = post_package(client, pkg, world.devices["dev-a"].key)
    assert r.status_code == 201, r.text
    v = session.scalars(select(Violation)).one()
    assert v.plate_compact is None and v.plate_key is None and len(v.files) == 3


def _flip(data: bytes, at: int = -10) -> bytes:
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)


def _tamper_file(pkg: Package, _k: Ed25519PrivateKey) -> None:
    pkg.files["still_at.jpg"] = _flip(pkg.files["still_at.jpg"])


def _tamper_manifest(pkg: Package, _k: Ed25519PrivateKey) -> None:
    pkg.manifest_bytes = pkg.manifest_bytes.replace(b'"30A12345"', b'"30A12346"', 1)


def _other_key_signature(pkg: Package, _k: Ed25519PrivateKey) -> None:
    pkg.signature = signed(pkg.manifest, Ed25519PrivateKey.generate(), pkg.files).signature


def _garbage_signature(pkg: Package, _k: Ed25519PrivateKey) -> None:
    pkg.signature = "not base64 at all!"


def _missing_file(pkg: Package, _k: Ed25519PrivateKey) -> None:
    del pkg.files["still_after.jpg"]


def _unlisted_file(pkg: Package, _k: Ed25519PrivateKey) -> None:
    pkg.files["extra.jpg"] = jpeg(99)


def _resign(pkg: Package, key: Ed25519PrivateKey, **changes: Any) -> None:
    new = signed({**pkg.manifest, **changes}, key, pkg.files)
    pkg.manifest, pkg.manifest_bytes, pkg.signature = new.manifest, new.manifest_bytes, new.signature


def _unknown_field(pkg: Package, key: Ed25519PrivateKey) -> None:
    _resign(pkg, key, surprise=1)


def _not_canonical(pkg: Package, key: Ed25519PrivateKey) -> None:
    import json

    from violations.manifest import sign

    pkg.manifest_bytes = json.dumps(pkg.manifest, indent=2).encode()
    pkg.signature = sign(pkg.manifest_bytes, key)


def _png_content(pkg: Package, key: Ed25519PrivateKey) -> None:
    # A PNG posing as a JPEG, with a matching hash in a properly signed manifest.
    import cv2
    import numpy as np

    png = bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    pkg.files["still_at.jpg"] = png
    files = [
        {**f, "sha256": hashlib.sha256(png).hexdigest(), "size": len(png)}
        if f["name"] == "still_at.jpg"
        else f
        for f in pkg.manifest["files"]
    ]
    _resign(pkg, key, files=files)


def _part_type(pkg: Package, _k: Ed25519PrivateKey) -> None:
    pkg.part_types["still_at.jpg"] = "text/html"


def _other_camera(pkg: Package, key: Ed25519PrivateKey) -> None:
    _resign(pkg, key, camera_id="cam-b1")


def _other_device_id(pkg: Package, key: Ed25519PrivateKey) -> None:
    _resign(pkg, key, device_id="dev-b")


@pytest.mark.parametrize(
    ("tamper", "status", "reason"),
    [
        (_tamper_file, 400, "still_at.jpg does not match its SHA-256"),
        (_tamper_manifest, 400, "signature does not match"),
        (_other_key_signature, 400, "signature does not match"),
        (_garbage_signature, 400, "not valid base64"),
        (_missing_file, 400, "still_after.jpg is listed in the manifest but missing"),
        (_unlisted_file, 400, "extra.jpg is not listed"),
        (_unknown_field, 422, "surprise"),
        (_not_canonical, 422, "canonical"),
        (_png_content, 415, "content is not image/jpeg"),
        (_part_type, 415, "sent as text/html"),
        (_other_camera, 403, "may not post for camera 'cam-b1'"),
        (_other_device_id, 403, "is not the calling device"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_tampered_or_foreign_upload_is_refused_and_nothing_stored(
    tamper: Callable[[Package, Ed25519PrivateKey], None],
    status: int,
    reason: str,
    client: TestClient,
    world: World,
    settings: Settings,
    count: Count,
) -> None:
    pkg = package_a(world)
    tamper(pkg, world.devices["dev-a"].private_key)
    r = post_package(client, pkg, world.devices["dev-a"].key)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert reason in detail and "\n" not in detail
    assert count(Violation) == 0 and count(EvidenceFile) == 0
    assert stored_blobs(settings.evidence_dir) == []


@pytest.mark.parametrize(
    ("device", "key", "status", "reason"),
    [
        ("dev-a", "pnd_0123456789abcdef_" + "A" * 43, 401, "invalid device key"),
        ("dev-a", "garbage", 401, "invalid device key"),
        ("dev-a", None, 401, "not authenticated"),
        ("dev-off", "world", 403, "dev-off is disabled"),
        ("dev-b", "world", 403, "may not post for camera 'cam-a1'"),
    ],
)
def test_unknown_disabled_or_unauthorised_devices_are_refused(
    device: str,
    key: str | None,
    status: int,
    reason: str,
    client: TestClient,
    world: World,
    count: Count,
    settings: Settings,
) -> None:
    dev = world.devices[device]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1")
    r = post_package(client, pkg, dev.key if key == "world" else key)
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert count(Violation) == 0 and stored_blobs(settings.evidence_dir) == []


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"upload_max_files": 3}, 413, "too many files: 4 > 3"),
        ({"upload_max_bytes": 4096}, 413, "request body too large"),
        ({"upload_media_types": ("image/png",)}, 415, "media type image/jpeg not accepted"),
    ],
)
def test_upload_limits(
    overrides: dict[str, Any],
    status: int,
    reason: str,
    make_client: Callable[..., TestClient],
    world: World,
    count: Count,
    settings: Settings,
) -> None:
    client = make_client(**overrides)
    r = post_package(client, package_a(world), world.devices["dev-a"].key)
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    assert count(Violation) == 0 and stored_blobs(settings.evidence_dir) == []


def test_a_body_over_the_limit_without_content_length_is_cut_off(
    make_client: Callable[..., TestClient], world: World, count: Count
) -> None:
    client = make_client(upload_max_bytes=4096)

    def chunks() -> Any:
        yield b"x" * 3000
        yield b"y" * 3000

    r = client.post(
        "/api/v1/violations",
        content=chunks(),
        headers={
            "X-Device-Key": world.devices["dev-a"].key,
            "Content-Type": "multipart/form-data; boundary=zz",
        },
    )
    assert r.status_code == 413, r.text
    assert count(Violation) == 0


def test_unregistered_district_in_the_manifest_does_not_assign_the_camera(
    client: TestClient, world: World, session: Session
) -> None:
    dev = world.devices["dev-a"]
    for district, seed in (("no-such-district", 1), ("hoan-kiem", 2)):
        pkg = build_package(
            dev.private_key, device_id=dev.id, camera_id="cam-x", district=district, seed=seed
        )
        assert post_package(client, pkg, dev.key).status_code == 201
        session.rollback()
        cam = session.get(Camera, "cam-x")
        assert cam is not None
        assert cam.district_id == (None if seed == 1 else "hoan-kiem")
    # The first violation, stored while the camera had no district, follows it (api.services.cameras).
    assert [v.district_id for v in session.scalars(select(Violation).order_by(Violation.id))] == [
        "hoan-kiem",
        "hoan-kiem",
    ]


def test_evidence_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    from api.errors import StorageError

    store = LocalStore(tmp_path)
    data = jpeg(3)
    sha = hashlib.sha256(data).hexdigest()
    uri = store.put(data, sha)
    assert uri == f"local:{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.put(data, sha) == uri and store.get(uri) == data and store.exists(uri)
    assert [p.name for p in stored_blobs(tmp_path)] == [sha]
    with pytest.raises(StorageError, match="does not match"):
        store.put(data + b"x", sha)
    for bad in ("local:../../etc/passwd", "s3://bucket/x", "local:" + "g" * 64):
        with pytest.raises(StorageError):
            store.get(bad)
    store.delete(uri)
    store.delete(uri)
    assert not store.exists(uri)


def test_a_failing_evidence_store_refuses_with_503_and_records_nothing(
    make_client: Callable[..., TestClient], world: World, tmp_path: Path, count: Count
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    client = make_client(evidence_dir=blocker)
    r = post_package(client, package_a(world), world.devices["dev-a"].key)
    assert r.status_code == 503 and r.json() == {"detail": "evidence store unavailable; retry later"}
    assert count(Violation) == 0 and count(EvidenceFile) == 0
