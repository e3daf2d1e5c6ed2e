"""`GET /api/v1/me`: the calling user."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser
from api.schemas import Message, UserPublic

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/me", response_model=UserPublic, responses={401: {"model": Message}})
def me(user: CurrentUser) -> UserPublic:
    """Who the token belongs to: username, role, district."""
    return UserPublic.model_validate(user)
