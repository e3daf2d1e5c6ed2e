"""A device's registered signing key: `GET /api/v1/devices/me` shows its fingerprint to the device, and
`api.admin.set_device_public_key` replaces it only while no evidence of the device is stored (on SQLite
and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api import admin
from api.errors import AdminError
from api.models import AuditEntry, Device
from api.settings import Settings
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package
from violations.manifest import public_key_fingerprint, public_key_pem

ME = "/api/v1/devices/me"


def test_a_device_sees_the_fingerprint_of_its_registered_key(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]]
) -> None:
    dev = world.devices["dev-a"]
    for headers in ({"X-Device-Key": dev.key}, {"Authorization": f"Bearer {dev.key}"}):
        r = client.get(ME, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": "dev-a",
            "active": True,
            "cameras": ["cam-a1", "cam-x"],
            "public_key_sha256": public_key_fingerprint(dev.private_key),
        }
    off = client.get(ME, headers={"X-Device-Key": world.devices["dev-off"].key})
    assert off.status_code == 403 and off.json() == {"detail": "device dev-off is disabled"}
    assert client.get(ME, headers=auth("admin")).status_code == 401  # an officer token is no device key
    assert client.get(ME, headers={"X-Device-Key": "pnd_nope_nope"}).status_code == 401


def test_a_wrong_key_is_replaced_while_the_device_has_no_evidence(
    client: TestClient, world: World, settings: Settings, session: Session
) -> None:
    """The installer registered another box's .pub: every upload is refused (400). After
    `set_device_public_key` with the box's own key the same package is stored; the change is audited;
    the API key is unchanged."""
    dev = world.devices["dev-b"]
    box = Ed25519PrivateKey.generate()
    pkg = build_package(box, device_id="dev-b", camera_id="cam-b1")
    refused = post_package(client, pkg, dev.key)
    assert refused.status_code == 400 and refused.json()["detail"].startswith("signature:")

    change = admin.set_device_public_key(settings, "dev-b", public_key_pem(box))
    assert change == admin.KeyChange(
        public_key_fingerprint(dev.private_key), public_key_fingerprint(box), True
    )
    me = client.get(ME, headers={"X-Device-Key": dev.key})
    assert me.status_code == 200 and me.json()["public_key_sha256"] == public_key_fingerprint(box)
    assert post_package(client, pkg, dev.key).status_code == 201
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "device.set_public_key")).one()
    assert entry.object_id == "dev-b"
    assert json.loads(entry.detail) == {"old_sha256": change.old_sha256, "sha256": change.sha256}
    # the same key again changes nothing and writes no audit entry
    assert admin.set_device_public_key(settings, "dev-b", public_key_pem(box)).changed is False


def test_the_key_stays_once_evidence_verified_with_it_is_stored(
    client: TestClient, world: World, settings: Settings, session: Session
) -> None:
    dev = world.devices["dev-a"]
    assert (
        post_package(
            client, build_package(dev.private_key, device_id="dev-a", camera_id="cam-a1"), dev.key
        ).status_code
        == 201
    )
    other = Ed25519PrivateKey.generate()
    with pytest.raises(AdminError) as e:
        admin.set_device_public_key(settings, "dev-a", public_key_pem(other))
    line = str(e.value)
    assert line.startswith("device 'dev-a' has 1 violation(s) stored, verified with its registered key")
    assert "`devices add` under a new id" in line and "\n" not in line
    stored = session.scalars(select(Device.public_key_pem).where(Device.id == "dev-a")).one()
    assert stored == public_key_pem(dev.private_key)


@pytest.mark.parametrize(
    ("device", "pem", "message"),
    [
        ("nobody", None, "no device 'nobody'"),
        ("dev-a", b"not a key", "public key: "),
    ],
)
def test_refusals(settings: Settings, device: str, pem: bytes | None, message: str) -> None:
    with pytest.raises(AdminError) as e:
        admin.set_device_public_key(settings, device, pem or public_key_pem(Ed25519PrivateKey.generate()))
    assert str(e.value).startswith(message)
