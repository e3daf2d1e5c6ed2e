"""`POST /api/v1/auth/token`: OAuth2 password flow for officers, rate-limited per username + IP and
per IP (failed logins only: `api.security.LoginLimiter`)."""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, status

from api.deps import ClientIP, SessionDep, SettingsDep, StateDep
from api.schemas import Message, Token
from api.security import create_access_token
from api.services import auth as auth_service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]+$"


@router.post(
    "/token",
    response_model=Token,
    responses={401: {"model": Message}, 429: {"model": Message}},
)
def login(
    username: Annotated[str, Form(min_length=1, max_length=64, pattern=USERNAME_PATTERN)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    session: SessionDep,
    settings: SettingsDep,
    state: StateDep,
    ip: ClientIP,
    grant_type: Annotated[str | None, Form(pattern=r"^password$")] = None,
) -> Token:
    """Exchange a username and password for a bearer token (form fields, as OAuth2 specifies)."""
    limiter = state.login_limiter
    refusal = limiter.admit(username, ip)  # counted now, taken back on success
    if refusal is not None:
        wait = math.ceil(refusal.wait_s)
        whose = "from this address" if refusal.per_address else "for this username"
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins {whose}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    user = auth_service.authenticate_user(session, username, password, ip)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    limiter.succeeded(username, ip)
    token, lifetime = create_access_token(
        user_id=user.id,
        username=user.username,
        role=user.role,
        secret=settings.jwt_secret.get_secret_value(),
        minutes=settings.token_minutes,
    )
    return Token(access_token=token, expires_in=lifetime)
