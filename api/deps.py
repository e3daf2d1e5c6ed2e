"""FastAPI dependencies: settings, database session, evidence store, and who is calling.

`CurrentUser`/`CurrentOfficer`/`CurrentSupervisor`/`CurrentAdmin` accept only an officer JWT;
`CurrentDevice` accepts only a device API key (`Authorization: Bearer pnd_…` or `X-Device-Key`). A
credential of the wrong kind is treated as no credential: 401.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker

from api.models import User
from api.security import LoginLimiter
from api.services import auth as auth_service
from api.settings import Settings
from api.storage import EvidenceStore

log = logging.getLogger(__name__)

TOKEN_URL = "/api/v1/auth/token"


@dataclass(frozen=True, slots=True)
class AppState:
    """What `create_app` builds once and every request shares."""

    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    store: EvidenceStore
    login_limiter: LoginLimiter


def get_state(request: Request) -> AppState:
    """The application's shared state."""
    state: AppState = request.app.state.phatnguoi
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings_dep(state: StateDep) -> Settings:
    """The settings the app was built with (not the environment: tests build their own)."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One session per request; rolled back if the route did not commit, always closed."""
    session = state.sessions()
    try:
        yield session
    finally:
        session.close()  # rolls back anything uncommitted


SessionDep = Annotated[Session, Depends(get_session)]


def get_read_session(state: StateDep) -> Iterator[Session]:
    """A session for routes that only read (see `api.db.make_sessionmaker(read_only=True)`)."""
    session = state.read_sessions()
    try:
        yield session
    finally:
        session.close()


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def get_store(state: StateDep) -> EvidenceStore:
    """The evidence store."""
    return state.store


StoreDep = Annotated[EvidenceStore, Depends(get_store)]


def client_ip(request: Request) -> str:
    """The client's address (behind a proxy, run uvicorn with --proxy-headers)."""
    return request.client.host if request.client else "unknown"


ClientIP = Annotated[str, Depends(client_ip)]

_oauth2 = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False, scheme_name="OfficerToken")
_device_bearer = HTTPBearer(auto_error=False, scheme_name="DeviceKeyBearer")
_device_header = APIKeyHeader(name="X-Device-Key", auto_error=False, scheme_name="DeviceKeyHeader")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def get_current_user(
    token: Annotated[str | None, Depends(_oauth2)], session: SessionDep, settings: SettingsDep
) -> User:
    """The active user whose JWT is presented. 401 without a valid token."""
    if not token:
        raise _unauthorized("not authenticated: send an officer token (Authorization: Bearer ...)")
    user = auth_service.user_from_token(session, token, settings.jwt_secret.get_secret_value())
    # End the read transaction: on SQLite it holds the write lock for the rest of the request.
    session.commit()
    if user is None:
        raise _unauthorized("invalid or expired token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def _role_in(*roles: str) -> Callable[[User], User]:
    """A dependency that lets only users with one of `roles` through (403 for the others)."""

    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role {' or '.join(roles)}")
        return user

    return check


CurrentOfficer = Annotated[User, Depends(_role_in("officer", "supervisor", "admin"))]
CurrentSupervisor = Annotated[User, Depends(_role_in("supervisor", "admin"))]
CurrentAdmin = Annotated[User, Depends(_role_in("admin"))]


def get_current_device(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_device_bearer)],
    header_key: Annotated[str | None, Depends(_device_header)],
    session: SessionDep,
) -> auth_service.AuthenticatedDevice:
    """The active device whose API key is presented. 401 without a valid key, 403 if disabled."""
    key = header_key or (bearer.credentials if bearer is not None else None)
    if not key:
        raise _unauthorized("not authenticated: send the device key (X-Device-Key or Authorization: Bearer)")
    device = auth_service.authenticate_device(session, key)
    # End the read transaction now: on SQLite it holds the write lock, and an upload's verification
    # and file writes come next. (The session's close() rolls back if the lookup itself failed.)
    session.commit()
    if device is None:
        raise _unauthorized("invalid device key")
    if not device.active:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"device {device.id} is disabled")
    return device


CurrentDevice = Annotated[auth_service.AuthenticatedDevice, Depends(get_current_device)]
