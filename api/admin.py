"""Administrative functions behind `phatnguoi db …`, `users …`, `devices …`, `districts …`,
`cameras …` and `serve`.

Each opens its own engine from the settings, does one thing in one transaction, records a change in the
audit log (actor `system:cli`), and raises `AdminError` (one line) when refused. The `list_*` functions
only read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import audit, migrate
from api.db import make_engine, make_sessionmaker
from api.errors import AdminError
from api.models import ROLES, Camera, Device, District, User, Violation
from api.security import hash_password, new_device_key
from api.services import cameras as camera_districts
from api.settings import Settings
from violations.manifest import EvidenceError, load_public_key, public_key_fingerprint

log = logging.getLogger(__name__)

ACTOR = "system:cli"
MIN_PASSWORD_CHARS = 10
_IDENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@contextmanager
def _session(settings: Settings, *, read_only: bool = False) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    try:
        migrate.check_schema(engine)
        with make_sessionmaker(engine, read_only=read_only)() as session:
            yield session
    finally:
        engine.dispose()


def _ident(kind: str, value: str) -> str:
    if not _IDENT.fullmatch(value):
        raise AdminError(f"{kind} {value!r}: use 1-64 letters, digits, '_', '.', '-'")
    return value


def upgrade_db(settings: Settings, revision: str = "head") -> str:
    """Create or migrate the database schema; returns the revision it is now at."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine, revision)
        current = migrate.current_revision(engine)
    finally:
        engine.dispose()
    log.info("database at revision %s", current)
    return current or ""


@dataclass(frozen=True, slots=True)
class DistrictChange:
    """What `add_district` did: whether the district is new, and the cameras that got it (camera id →
    how many of its violations without a district were given it)."""

    created: bool
    cameras: dict[str, int]


def add_district(settings: Settings, district_id: str, name: str | None = None) -> DistrictChange:
    """Register a district (or rename it). The cameras without a district whose stored evidence names it
    (by id or by its new name) get it, with their violations (see `api.services.cameras`)."""
    with _session(settings) as session:
        d = session.get(District, _ident("district", district_id))
        if d is None:
            change = DistrictChange(True, _create_district(session, district_id, name))
        elif name and name != d.name:
            d.name = name
            change = DistrictChange(False, camera_districts.claim_cameras(session, d, actor=ACTOR))
            audit.record(
                session,
                actor=ACTOR,
                action="district.rename",
                object_type="district",
                object_id=district_id,
                detail={"name": name},
            )
        else:
            change = DistrictChange(False, {})
        session.commit()
    return change


def _create_district(session: Session, district_id: str, name: str | None) -> dict[str, int]:
    district = District(id=district_id, name=name or district_id)
    session.add(district)
    session.flush()
    filled = camera_districts.claim_cameras(session, district, actor=ACTOR)  # before any audit entry
    audit.record(session, actor=ACTOR, action="district.add", object_type="district", object_id=district_id)
    return filled


def _ensure_district(session: Session, district_id: str) -> str:
    if session.get(District, _ident("district", district_id)) is None:
        _create_district(session, district_id, None)
    return district_id


def add_camera(
    settings: Settings,
    camera_id: str,
    *,
    name: str | None = None,
    district: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> int:
    """Register a camera, or update the fields given (the district is created if new).

    Returns:
        How many of the camera's violations without a district were given `district`.
    """
    return _put_camera(settings, camera_id, name=name, district=district, lat=lat, lon=lon, register=True)


def set_camera(
    settings: Settings,
    camera_id: str,
    *,
    name: str | None = None,
    district: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> int:
    """Change a registered camera: its name, district or place. Unlike `add_camera` it refuses an unknown
    camera or district: a typo would file the camera's violations where no officer looks.

    Returns:
        How many of the camera's violations without a district were given `district`.
    """
    if name is None and district is None and lat is None and lon is None:
        raise AdminError("nothing to change: give a name, a district or lat and lon")
    return _put_camera(settings, camera_id, name=name, district=district, lat=lat, lon=lon, register=False)


def _put_camera(
    settings: Settings,
    camera_id: str,
    *,
    name: str | None,
    district: str | None,
    lat: float | None,
    lon: float | None,
    register: bool,
) -> int:
    if (lat is None) != (lon is None):
        raise AdminError("give both lat and lon, or neither")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise AdminError(f"lat {lat} / lon {lon} out of range (-90..90 / -180..180)")
    filled = 0
    with _session(settings) as session:
        # Locked before any audit entry (see `api.services.cameras.claim_cameras`).
        cam = session.get(Camera, _ident("camera", camera_id), with_for_update=True)
        if cam is None:
            if not register:
                raise AdminError(
                    f"no camera {camera_id!r} (cameras are registered by `devices add --camera`)"
                )
            cam = Camera(id=camera_id, name=name or camera_id)
            session.add(cam)
        elif name:
            cam.name = name
        if district is not None:
            if register:
                _ensure_district(session, district)
            elif session.get(District, _ident("district", district)) is None:
                raise AdminError(f"no district {district!r} (add it first with `districts add`)")
            session.flush()
            if cam.district_id != district:
                filled = camera_districts.assign_district(session, cam, district, actor=ACTOR, source="admin")
        if lat is not None:
            cam.lat, cam.lon = lat, lon
        session.flush()
        audit.record(
            session,
            actor=ACTOR,
            action="camera.set",
            object_type="camera",
            object_id=camera_id,
            detail={"name": cam.name, "district": cam.district_id, "lat": cam.lat, "lon": cam.lon},
        )
        session.commit()
    return filled


def add_user(settings: Settings, username: str, password: str, role: str, district: str | None = None) -> int:
    """Create a user; returns its id. Officers need a district (created if new).

    Raises:
        AdminError: bad role, officer without district, short password, existing username.
    """
    if not _USERNAME.fullmatch(username):
        raise AdminError(f"username {username!r}: use 1-64 letters, digits, '_', '.', '@', '-'")
    if role not in ROLES:
        raise AdminError(f"role {role!r}: one of {', '.join(ROLES)}")
    if role == "officer" and not district:
        raise AdminError("an officer needs a district (--district)")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AdminError(f"password too short: at least {MIN_PASSWORD_CHARS} characters")
    with _session(settings) as session:
        if session.scalars(select(User.id).where(User.username == username)).first() is not None:
            raise AdminError(f"user {username!r} already exists")
        district_id = _ensure_district(session, district) if district else None
        user = User(
            username=username, password_hash=hash_password(password), role=role, district_id=district_id
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            actor=ACTOR,
            action="user.add",
            object_type="user",
            object_id=username,
            detail={"role": role, "district": district_id},
        )
        session.commit()
        log.info("user %s (%s) added", username, role)
        return user.id


def add_device(
    settings: Settings, device_id: str, camera_ids: Sequence[str], public_key_pem: str | bytes
) -> str:
    """Register an edge device for `camera_ids` (cameras created if new) with its Ed25519 public key.

    Returns:
        The device's API key. It is shown only now: the database keeps its SHA-256.

    Raises:
        AdminError: bad id, no cameras, a key that is not an Ed25519 public key, existing device.
    """
    _ident("device", device_id)
    if not camera_ids:
        raise AdminError("a device needs at least one camera")
    normalised = _signing_key_pem(public_key_pem)
    with _session(settings) as session:
        if session.get(Device, device_id) is not None:
            raise AdminError(f"device {device_id!r} already exists")
        cameras = []
        for cid in dict.fromkeys(camera_ids):
            cam = session.get(Camera, _ident("camera", cid))
            if cam is None:
                cam = Camera(id=cid, name=cid)
                session.add(cam)
                log.info("camera %s registered without district (set it with add_camera)", cid)
            cameras.append(cam)
        dk = new_device_key()
        session.add(
            Device(
                id=device_id,
                key_id=dk.key_id,
                key_hash=dk.key_hash,
                public_key_pem=normalised,
                cameras=cameras,
            )
        )
        session.flush()
        audit.record(
            session,
            actor=ACTOR,
            action="device.add",
            object_type="device",
            object_id=device_id,
            detail={"cameras": [c.id for c in cameras], "key_id": dk.key_id},
        )
        session.commit()
    log.info("device %s added for cameras %s", device_id, ", ".join(c.id for c in cameras))
    return dk.key


def _signing_key_pem(public_key_pem: str | bytes) -> str:
    """The SubjectPublicKeyInfo PEM of an Ed25519 public key, as the devices table keeps it.

    Raises:
        AdminError: not a PEM public key, or not Ed25519.
    """
    pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = load_public_key(pem)
    except (EvidenceError, ValueError, TypeError) as e:
        raise AdminError(f"public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AdminError("public key: not an Ed25519 key")
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


@dataclass(frozen=True, slots=True)
class KeyChange:
    """What `set_device_public_key` did: the SHA-256 fingerprints of the key before and after (as
    `violations.manifest.public_key_fingerprint` and the edge worker's health write them); `changed`
    is False when the device already had that key."""

    old_sha256: str
    sha256: str
    changed: bool


def set_device_public_key(settings: Settings, device_id: str, public_key_pem: str | bytes) -> KeyChange:
    """Replace the signing key registered for a device: the fix for a registration mistake (the `.pub`
    of another box, or of an earlier `keys generate`), whose uploads are all refused.

    Only while the server holds no violation from the device: stored evidence is verified with the
    registered key, so replacing it would make that evidence unverifiable. A box with a new key pair
    after it has uploaded is a new device (`devices add` under a new id).

    Raises:
        AdminError: unknown device, a key that is not an Ed25519 public key, evidence stored.
    """
    normalised = _signing_key_pem(public_key_pem)
    with _session(settings) as session:
        device = session.get(Device, device_id, with_for_update=True)
        if device is None:
            raise AdminError(f"no device {device_id!r}")
        old = public_key_fingerprint(load_public_key(device.public_key_pem.encode()))
        new = public_key_fingerprint(load_public_key(normalised.encode()))
        if old == new:
            return KeyChange(old, new, changed=False)
        stored = session.scalar(
            select(func.count()).select_from(Violation).where(Violation.device_id == device_id)
        )
        if stored:
            raise AdminError(
                f"device {device_id!r} has {stored} violation(s) stored, verified with its registered key"
                f" (sha256 {old[:16]}…): the key stays; register a box with another key as a new device"
                " (`devices add` under a new id)"
            )
        device.public_key_pem = normalised
        audit.record(
            session,
            actor=ACTOR,
            action="device.set_public_key",
            object_type="device",
            object_id=device_id,
            detail={"old_sha256": old, "sha256": new},
        )
        session.commit()
    log.info("device %s: public key %s… replaced by %s…", device_id, old[:16], new[:16])
    return KeyChange(old, new, changed=True)


def set_device_active(settings: Settings, device_id: str, active: bool) -> None:
    """Enable or disable a device (a disabled device's uploads are refused with 403)."""
    with _session(settings) as session:
        device = session.get(Device, device_id)
        if device is None:
            raise AdminError(f"no device {device_id!r}")
        device.active = active
        audit.record(
            session,
            actor=ACTOR,
            action="device.enable" if active else "device.disable",
            object_type="device",
            object_id=device_id,
        )
        session.commit()


def set_user_active(settings: Settings, username: str, active: bool) -> None:
    """Enable or disable a user (a disabled user's tokens stop working at once)."""
    with _session(settings) as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            raise AdminError(f"no user {username!r}")
        user.active = active
        audit.record(
            session,
            actor=ACTOR,
            action="user.enable" if active else "user.disable",
            object_type="user",
            object_id=username,
        )
        session.commit()


def set_password(settings: Settings, username: str, password: str) -> None:
    """Give a user a new password. Tokens issued before stay valid until they expire (`users disable`
    ends them at once).

    Raises:
        AdminError: unknown user, short password.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise AdminError(f"password too short: at least {MIN_PASSWORD_CHARS} characters")
    with _session(settings) as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            raise AdminError(f"no user {username!r}")
        user.password_hash = hash_password(password)
        audit.record(session, actor=ACTOR, action="user.passwd", object_type="user", object_id=username)
        session.commit()


def rotate_device_key(settings: Settings, device_id: str) -> str:
    """Give a device a new API key; the old one stops working at once. The signing key stays: the
    device's stored evidence is verified with it (a replaced edge box is registered as a new device).

    Returns:
        The new API key, shown only now.

    Raises:
        AdminError: unknown device.
    """
    with _session(settings) as session:
        device = session.get(Device, device_id)
        if device is None:
            raise AdminError(f"no device {device_id!r}")
        dk = new_device_key()
        old_key_id, device.key_id, device.key_hash = device.key_id, dk.key_id, dk.key_hash
        audit.record(
            session,
            actor=ACTOR,
            action="device.rotate_key",
            object_type="device",
            object_id=device_id,
            detail={"old_key_id": old_key_id, "key_id": dk.key_id},
        )
        session.commit()
    return dk.key


def verify_audit(settings: Settings, anchor: tuple[int, str] | None = None) -> audit.ChainReport:
    """Recompute the audit chain, optionally against a published (seq, hash) (see
    `api.audit.verify_chain`)."""
    with _session(settings, read_only=True) as session:
        return audit.verify_chain(session, anchor=anchor)


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as `users list` shows it."""

    username: str
    role: str
    district: str | None
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device as `devices list` shows it (the key id only: the key itself is never stored)."""

    id: str
    cameras: list[str]
    active: bool
    key_id: str
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class DistrictRow:
    """A district as `districts list` shows it."""

    id: str
    name: str
    cameras: int
    officers: int


@dataclass(frozen=True, slots=True)
class CameraRow:
    """A camera as `cameras list` shows it; `unassigned` counts its violations without a district."""

    id: str
    name: str
    district: str | None
    lat: float | None
    lon: float | None
    last_seen: datetime | None
    unassigned: int


def list_users(settings: Settings) -> list[UserRow]:
    """Every user, by username."""
    with _session(settings, read_only=True) as session:
        users = session.scalars(select(User).order_by(User.username)).all()
        return [UserRow(u.username, u.role, u.district_id, u.active, u.created_at) for u in users]


def list_devices(settings: Settings) -> list[DeviceRow]:
    """Every device, by id."""
    with _session(settings, read_only=True) as session:
        devices = session.scalars(select(Device).order_by(Device.id)).all()
        return [
            DeviceRow(d.id, sorted(c.id for c in d.cameras), d.active, d.key_id, d.last_seen) for d in devices
        ]


def list_districts(settings: Settings) -> list[DistrictRow]:
    """Every district, by id, with its number of cameras and of active officers."""
    with _session(settings, read_only=True) as session:
        cams = dict(
            session.execute(select(Camera.district_id, func.count()).group_by(Camera.district_id))
            .tuples()
            .all()
        )
        officers = dict(
            session.execute(
                select(User.district_id, func.count())
                .where(User.role == "officer", User.active.is_(True))
                .group_by(User.district_id)
            )
            .tuples()
            .all()
        )
        districts = session.scalars(select(District).order_by(District.id)).all()
        return [DistrictRow(d.id, d.name, cams.get(d.id, 0), officers.get(d.id, 0)) for d in districts]


def list_cameras(settings: Settings) -> list[CameraRow]:
    """Every camera, by id, with the number of its violations that have no district."""
    with _session(settings, read_only=True) as session:
        unassigned = dict(
            session.execute(
                select(Violation.camera_id, func.count())
                .where(Violation.district_id.is_(None))
                .group_by(Violation.camera_id)
            )
            .tuples()
            .all()
        )
        cams = session.scalars(select(Camera).order_by(Camera.id)).all()
        return [
            CameraRow(c.id, c.name, c.district_id, c.lat, c.lon, c.last_seen, unassigned.get(c.id, 0))
            for c in cams
        ]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the server in this process until interrupted (SIGINT/SIGTERM). One worker; for more, run
    `uvicorn --factory api.app:app_from_env --workers N` with the settings in the environment.

    Raises:
        SchemaVersionError, DatabaseUnavailableError, StorageError: the database is not migrated or
            not reachable, or the evidence store not writable (checked before listening).
    """
    import uvicorn

    from api.app import check_startup, create_app

    app = create_app(settings)
    check_startup(app)  # fail with our one-line error, not a uvicorn traceback
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
