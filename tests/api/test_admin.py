"""The admin functions behind `phatnguoi db upgrade / users add / devices add`: what they refuse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import admin, migrate
from api.errors import AdminError, SchemaVersionError
from api.models import Camera, Device, User
from api.security import device_key_hash, parse_device_key
from api.settings import Settings
from tests.api.conftest import JWT_SECRET
from violations.manifest import public_key_pem

ED_PEM = public_key_pem(Ed25519PrivateKey.generate())
RSA_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=1024)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: admin.add_user(s, "x", "long enough pw", "boss", None), "role 'boss'"),
        (lambda s: admin.add_user(s, "x", "long enough pw", "officer", None), "needs a district"),
        (lambda s: admin.add_user(s, "x", "short", "admin", None), "password too short"),
        (lambda s: admin.add_user(s, "off-a", "long enough pw", "admin", None), "already exists"),
        (lambda s: admin.add_user(s, "a b", "long enough pw", "admin", None), "username 'a b'"),
        (lambda s: admin.add_device(s, "dev-a", ["cam-a1"], ED_PEM), "device 'dev-a' already exists"),
        (lambda s: admin.add_device(s, "dev-new", [], ED_PEM), "at least one camera"),
        (lambda s: admin.add_device(s, "dev-new", ["cam-a1"], RSA_PEM), "not Ed25519"),
        (lambda s: admin.add_device(s, "dev-new", ["cam-a1"], "not a pem"), "public key"),
        (lambda s: admin.add_device(s, "dev/new", ["cam-a1"], ED_PEM), "device 'dev/new'"),
        (lambda s: admin.add_camera(s, "cam-z", lat=91.0, lon=0.0), "out of range"),
    ],
)
def test_admin_refusals(call: Callable[[Settings], object], message: str, settings: Settings) -> None:
    with pytest.raises(AdminError, match=message):
        call(settings)


def test_add_device_returns_a_key_stored_only_as_a_hash(settings: Settings, session: Session) -> None:
    key = admin.add_device(settings, "dev-new", ["cam-a1", "cam-new", "cam-new"], ED_PEM)
    key_id = parse_device_key(key)
    assert key_id is not None
    device = session.get(Device, "dev-new")
    assert device is not None and device.key_id == key_id and device.key_hash == device_key_hash(key)
    assert key not in (device.key_hash, device.public_key_pem)
    assert sorted(c.id for c in device.cameras) == ["cam-a1", "cam-new"]
    new_cam = session.get(Camera, "cam-new")
    assert new_cam is not None and new_cam.district_id is None


def test_add_user_hashes_the_password_with_argon2(settings: Settings, session: Session) -> None:
    uid = admin.add_user(settings, "new-officer", "a long password", "officer", "new-district")
    user = session.scalars(select(User).where(User.id == uid)).one()
    assert user.password_hash.startswith("$argon2id$") and "a long password" not in user.password_hash
    assert user.district_id == "new-district"


def test_admin_functions_need_a_migrated_database(tmp_path: Path) -> None:
    s = Settings(
        database_url=f"sqlite:///{tmp_path / 'fresh.db'}", jwt_secret=JWT_SECRET, evidence_dir=tmp_path
    )
    with pytest.raises(SchemaVersionError, match="db upgrade"):
        admin.add_user(s, "someone", "a long password", "admin")
    assert admin.upgrade_db(s) == migrate.head_revision()
    assert admin.add_user(s, "someone", "a long password", "admin") == 1
    assert admin.verify_audit(s).ok
