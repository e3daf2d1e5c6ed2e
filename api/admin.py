"""Administrative functions behind `phatnguoi db upgrade / users add / devices add / serve`.

Each opens its own engine from the settings, does one thing in one transaction, records it in the
audit log (actor `system:cli`), and raises `AdminError` (one line) when refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, migrate
from api.db import make_engine, make_sessionmaker
from api.errors import AdminError
from api.models import ROLES, Camera, Device, District, User
from api.security import hash_password, new_device_key
from api.settings import Settings
from violations.manifest import EvidenceError, load_public_key

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


def add_district(settings: Settings, district_id: str, name: str | None = None) -> None:
    """Register a district (or rename it)."""
    with _session(settings) as session:
        _ensure_district(session, _ident("district", district_id), name)
        session.commit()


def _ensure_district(session: Session, district_id: str, name: str | None = None) -> District:
    d = session.get(District, district_id)
    if d is None:
        d = District(id=district_id, name=name or district_id)
        session.add(d)
        audit.record(
            session, actor=ACTOR, action="district.add", object_type="district", object_id=district_id
        )
    elif name:
        d.name = name
    return d


def add_camera(
    settings: Settings,
    camera_id: str,
    *,
    name: str | None = None,
    district: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> None:
    """Register a camera, or update the fields given (the district is created if new)."""
    if (lat is None) != (lon is None):
        raise AdminError("give both lat and lon, or neither")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise AdminError(f"lat {lat} / lon {lon} out of range (-90..90 / -180..180)")
    with _session(settings) as session:
        cam = session.get(Camera, _ident("camera", camera_id))
        if cam is None:
            cam = Camera(id=camera_id, name=name or camera_id)
            session.add(cam)
        elif name:
            cam.name = name
        if district is not None:
            cam.district_id = _ensure_district(session, _ident("district", district)).id
        if lat is not None:
            cam.lat, cam.lon = lat, lon
        session.flush()
        audit.record(
            session,
            actor=ACTOR,
            action="camera.set",
            object_type="camera",
            object_id=camera_id,
            detail={"district": cam.district_id, "lat": cam.lat, "lon": cam.lon},
        )
        session.commit()


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
        district_id = _ensure_district(session, _ident("district", district)).id if district else None
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
    pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = load_public_key(pem)
    except (EvidenceError, ValueError, TypeError) as e:
        raise AdminError(f"public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AdminError("public key: not an Ed25519 key")
    normalised = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
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


def verify_audit(settings: Settings) -> audit.ChainReport:
    """Recompute the audit chain (see `api.audit.verify_chain`)."""
    with _session(settings, read_only=True) as session:
        return audit.verify_chain(session)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the server in this process until interrupted (SIGINT/SIGTERM). One worker; for more, run
    `uvicorn --factory api.app:app_from_env --workers N` with the settings in the environment.

    Raises:
        SchemaVersionError: the database is not migrated (checked before listening).
    """
    import uvicorn

    from api.app import create_app

    engine = make_engine(settings.database_url)
    try:
        migrate.check_schema(engine)  # fail with our one-line error, not a uvicorn traceback
    finally:
        engine.dispose()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True)
