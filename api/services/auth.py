"""Who is calling: officers by username/password and JWT, devices by API key."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit
from api.models import Device, User
from api.security import (
    burn_password_check,
    decode_access_token,
    device_key_matches,
    parse_device_key,
    verify_password,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuthenticatedDevice:
    """A snapshot of the calling device (independent of any session)."""

    id: str
    active: bool
    camera_ids: frozenset[str]
    public_key_pem: str


def authenticate_device(session: Session, key: str) -> AuthenticatedDevice | None:
    """The device owning `key`, or None when the key is malformed or unknown."""
    key_id = parse_device_key(key)
    if key_id is None:
        return None
    device = session.scalars(select(Device).where(Device.key_id == key_id)).one_or_none()
    if device is None or not device_key_matches(key, device.key_hash):
        return None
    return AuthenticatedDevice(
        id=device.id,
        active=device.active,
        camera_ids=frozenset(c.id for c in device.cameras),
        public_key_pem=device.public_key_pem,
    )


def user_from_token(session: Session, token: str, secret: str) -> User | None:
    """The active user a valid token names, else None."""
    user_id = decode_access_token(token, secret)
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def authenticate_user(session: Session, username: str, password: str, ip: str) -> User | None:
    """Check a password; audit the outcome (committed). Returns the active user, or None."""
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    # End the transaction during the ~150 ms of argon2: on SQLite it holds the write lock.
    session.commit()
    if user is None:
        burn_password_check(password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and user.active
    action = "auth.login" if ok else "auth.login_failed"
    audit.record(
        session, actor=f"user:{username}", action=action, object_type="user", object_id=username, ip=ip
    )
    session.commit()
    return user if ok else None
