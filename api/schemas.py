"""Request and response bodies of the HTTP API (pydantic), `XBase/XCreate/XPublic` style."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# Identifiers that reach the database from a request are constrained to printable ASCII without
# spaces: no NUL (PostgreSQL refuses it), nothing that needs escaping in a log line.
IDENT = r"^[A-Za-z0-9_.:-]+$"


class Message(BaseModel):
    """An error or status message (FastAPI's `{"detail": ...}`)."""

    detail: str


class Health(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]


class Token(BaseModel):
    """OAuth2 bearer token for an officer."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Lifetime in seconds.")


class UserPublic(BaseModel):
    """A user as shown to themselves or to an admin (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    district_id: str | None
    active: bool


class EvidenceFilePublic(BaseModel):
    """One evidence file of a violation (the bytes are at `/api/v1/violations/{id}/files/{name}`)."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: str
    sha256: str
    size: int
    media_type: str
    deleted: bool = False


class PlatePublic(BaseModel):
    """The plate as read by the device, and the reviewer's correction if any."""

    text: str | None = Field(description="Raw OCR text.")
    compact: str | None = Field(description="Compact plate (no separators), as read.")
    formatted: str | None
    confidence: float | None
    valid: bool | None = Field(description="Whether it parses as a Vietnamese plate.")
    lines: int | None
    colour: str | None
    corrected: str | None = Field(description="Compact plate entered by the reviewer.")
    key: str | None = Field(description="The plate searched and exported: corrected, else as read.")


class ViolationPublic(BaseModel):
    """A violation with its evidence list, as an officer of its district sees it."""

    id: int
    event_id: str
    rule: str
    legal_reference: str
    camera_id: str
    district_id: str | None
    device_id: str
    occurred_at: datetime
    received_at: datetime
    vehicle_class: str
    lat: float | None
    lon: float | None
    plate: PlatePublic | None
    speed_kmh: float | None
    speed_limit_kmh: float | None
    signal_state: str | None
    red_for_s: float | None
    details: dict[str, Any]
    status: str
    reviewed_by: int | None
    reviewed_at: datetime | None
    decision_reason: str | None
    manifest_sha256: str
    files: list[EvidenceFilePublic]


class IngestResult(BaseModel):
    """What the server stored for an uploaded evidence package."""

    id: int
    event_id: str
    status: str
    duplicate: bool = Field(description="True when this package was already stored (nothing changed).")
    manifest_sha256: str
    received_at: datetime
    files: list[EvidenceFilePublic]


class FlowCountIn(BaseModel):
    """Vehicles of one class counted in one lane and direction over one interval."""

    model_config = ConfigDict(extra="forbid")

    lane: str = Field(min_length=1, max_length=32, pattern=IDENT)
    direction: str = Field(min_length=1, max_length=32, pattern=IDENT)
    vehicle_class: str = Field(min_length=1, max_length=32, pattern=IDENT)
    interval_start: AwareDatetime
    interval_end: AwareDatetime
    count: int = Field(ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _interval(self) -> FlowCountIn:
        if self.interval_end <= self.interval_start:
            raise ValueError("interval_end must be after interval_start")
        if self.interval_start.year < 2000 or self.interval_end.year > 2999:
            raise ValueError("interval outside years 2000..2999")
        return self


class FlowBatchIn(BaseModel):
    """Flow counts of one camera (idempotent on camera, lane, direction, class and interval)."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1, max_length=64, pattern=IDENT)
    counts: list[FlowCountIn] = Field(min_length=1, max_length=5000)


class FlowConflict(BaseModel):
    """A posted count that differs from the count already stored for the same key (kept unchanged)."""

    lane: str
    direction: str
    vehicle_class: str
    interval_start: datetime
    interval_end: datetime
    stored_count: int
    posted_count: int


class FlowBatchResult(BaseModel):
    """How many counts were new, repeated, or conflicting (conflicts keep the first value)."""

    inserted: int
    duplicates: int
    conflicts: list[FlowConflict]
