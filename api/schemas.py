"""Request and response bodies of the HTTP API (pydantic), `XBase/XCreate/XPublic` style."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# Identifiers that reach the database from a request are constrained to printable ASCII without
# spaces: no NUL (PostgreSQL refuses it), nothing that needs escaping in a log line.
IDENT = r"^[A-Za-z0-9_.:-]+$"


def _plausible_year(t: datetime) -> datetime:
    # Both databases and Python's own time-zone arithmetic fail near years 1 and 9999.
    if not 1900 <= t.year <= 9000:
        raise ValueError("year must be within 1900..9000")
    return t


Instant = Annotated[AwareDatetime, AfterValidator(_plausible_year)]
"""A point in time with its UTC offset (`2026-11-23T07:00:00+07:00`); naive times are refused."""


class Message(BaseModel):
    """An error or status message (FastAPI's `{"detail": ...}`)."""

    detail: str


class Health(BaseModel):
    """Liveness, database reachability and whether the evidence store takes a write."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    evidence: Literal["ok", "unwritable"]


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


class DevicePublic(BaseModel):
    """A device as shown to itself: what the server holds for it (never the API key)."""

    id: str
    active: bool
    cameras: list[str] = Field(description="The cameras the device may upload for.")
    public_key_sha256: str = Field(
        description="SHA-256 (hex) of the 32 raw bytes of the registered Ed25519 public key: the edge "
        "worker compares it with its own key."
    )


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
    valid: bool = Field(
        description="Whether the reading (`compact`) is a valid Vietnamese plate by this server's grammar, "
        "exactly as read, and `formatted` is the same plate. A confirmation without a typed plate is "
        "refused (422) when false."
    )
    valid_signed: bool | None = Field(
        None, description="Whether the device said its reading was valid (its manifest; not checked)."
    )
    canonical: str | None = Field(
        None, description="The reading the Vietnamese way (`30A-123.45`) when `valid`, else null."
    )
    problem: str | None = Field(None, description="Why the reading is not valid (one line); null when valid.")
    lines: int | None
    colour: str | None
    corrected: str | None = Field(description="Compact plate entered by the reviewer.")
    key: str | None = Field(description="The plate searched and exported: corrected, else as read.")


class PenaltyMessagePublic(BaseModel):
    """One message to the penalty system about a violation (a row of the webhook's outbox)."""

    kind: Literal["confirmed", "withdrawn"] = Field(
        description="confirmed: the violation announced (a fine); withdrawn: that announcement taken back "
        "when the violation was reopened."
    )
    status: Literal["pending", "delivered", "failed", "cancelled"] = Field(
        description="pending (queued or being retried), delivered, failed (given up), cancelled (never sent)."
    )
    attempts: int = Field(description="Requests sent so far.")
    created_at: datetime = Field(description="When the message was queued (the decision or the reopening).")
    delivered_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending message is sent (again).")
    last_status_code: int | None = Field(description="HTTP status of the last answer, if any.")
    last_error: str | None = Field(description="Why the last attempt failed (English, technical).")


class LegalBasisPublic(BaseModel):
    """The legal basis the owner and the penalty system are told for a violation (the notice and its
    PDF, the public lookup, the webhook, the export: `api.notices.catalogue.legal_basis`)."""

    citation: str = Field(description="The legal point: 'Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP'.")
    in_catalogue: bool = Field(
        description="False when the legal catalogue has no offence for the violation's rule, vehicle class "
        "and day: the citation is then the device's and no fine is stated."
    )
    summary: str | None = Field(None, description="The behaviour in the decree's words.")
    fine_min_vnd: int | None = Field(None, description="Fine range in force on the violation's day (đồng).")
    fine_max_vnd: int | None = None
    licence_points: int | None = Field(None, description="Points taken off the driving licence.")


class ViolationPublic(BaseModel):
    """A violation with its evidence list, as an officer of its district sees it."""

    id: int
    event_id: str
    rule: str
    legal_reference: str = Field(
        description="The citation the owner and the penalty system are told (`legal_basis.citation`): the "
        "legal catalogue's for the rule, the vehicle class (as corrected on review) and the day."
    )
    legal_reference_signed: str = Field(
        description="The citation the device wrote and signed (evidence, kept as signed); it may differ "
        "from `legal_reference` (another class, an amended decree, or a wrong table on the device)."
    )
    citation_mismatch: bool = Field(
        False,
        description="The legal catalogue has no such citation for the rule and the class the device "
        "detected: the device's decree table may be wrong (audited at ingest as "
        "`violation.citation_mismatch`).",
    )
    legal_basis: LegalBasisPublic
    camera_id: str
    district_id: str | None
    device_id: str
    occurred_at: datetime
    received_at: datetime
    vehicle_class: str = Field(
        description="The class the violation is fined as: the reviewer's correction, else the detector's."
    )
    vehicle_class_detected: str = Field(description="The detector's class, as the device signed it.")
    vehicle_class_corrected: str | None = Field(
        None, description="The class the reviewer set on the decision (null: the detector's stands)."
    )
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
    reviewed_by_name: str | None = Field(None, description="The reviewer's username (None: not decided).")
    reviewed_at: datetime | None
    decision_reason: str | None
    decision_note: str | None = None
    evidence_purged_at: datetime | None = Field(
        None, description="When the retention job deleted this violation's evidence files."
    )
    penalty_delivery: str | None = Field(
        None,
        description="Webhook to the penalty system, its latest message (the confirmation, or its withdrawal "
        "when reopened): pending, delivered, failed, cancelled (or none).",
    )
    penalty_messages: list[PenaltyMessagePublic] = Field(
        default_factory=list,
        description="Every message to the penalty system about this violation, oldest first (its "
        "confirmations and their withdrawals); `penalty_delivery` is the last one's status.",
    )
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


# ---------------------------------------------------------------------------------------------------
# Review
# ---------------------------------------------------------------------------------------------------

DecisionReason = Literal["plate_unreadable", "not_a_violation", "emergency_vehicle", "duplicate", "other"]
#: The classes a reviewer may set: the detector's vehicle classes the legal catalogue fines
#: (`api.notices.catalogue.REGIME_OF_CLASS`, the registry's `VEHICLE_CLASSES`).
VehicleClass = Literal["car", "motorcycle", "bus", "truck", "bicycle"]
DECISION_REASONS: tuple[str, ...] = (
    "plate_unreadable",
    "not_a_violation",
    "emergency_vehicle",
    "duplicate",
    "other",
)
# Free text is stored and shown, so it may hold line breaks and tabs but no other control characters
# (PostgreSQL refuses NUL; the rest only garble logs and CSV files).
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class DecisionBase(BaseModel):
    """What a reviewer decides about a violation."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirm", "reject"]
    reason: DecisionReason | None = Field(
        None, description="Why it is rejected (required to reject, not allowed to confirm)."
    )
    note: str | None = Field(
        None, max_length=1000, pattern=FREE_TEXT, description="Free text; required with reason 'other'."
    )
    plate: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        pattern=FREE_TEXT,
        description="The plate as the reviewer reads it on the evidence (replaces the OCR reading). "
        "Must be a valid Vietnamese plate, e.g. 30A-123.45.",
    )
    vehicle_class: VehicleClass | None = Field(
        None,
        description="The vehicle class as the reviewer sees it on the evidence (replaces the detector's; "
        "confirmations only): the violation is fined as this class. Refused (422) when the legal "
        "catalogue has no single offence of the violation's rule for it.",
    )

    @model_validator(mode="after")
    def _reason_fits(self) -> DecisionBase:
        if self.decision == "reject" and self.reason is None:
            raise ValueError("a rejection needs a reason")
        if self.decision == "confirm" and self.reason is not None:
            raise ValueError("a confirmation takes no reason (use note)")
        if self.decision == "reject" and self.vehicle_class is not None:
            raise ValueError("a rejection takes no vehicle_class")
        if self.reason == "other" and not (self.note and self.note.strip()):
            raise ValueError("reason 'other' needs a note")
        return self


class DecisionCreate(DecisionBase):
    """Body of `POST /api/v1/violations/{id}/decision`."""


class ReopenCreate(BaseModel):
    """Body of `POST /api/v1/violations/{id}/reopen` (supervisors)."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=1000, pattern=FREE_TEXT, description="Why it is reopened.")


class ViolationSummaryPublic(BaseModel):
    """One row of the review list."""

    id: int
    event_id: str
    rule: str
    camera_id: str
    district_id: str | None
    occurred_at: datetime
    vehicle_class: str
    plate: str | None = Field(description="The plate searched and exported (corrected, else as read).")
    plate_formatted: str | None = Field(description="The device's formatted reading.")
    plate_confidence: float | None
    status: str
    reviewed_at: datetime | None
    evidence_purged: bool


class ViolationPagePublic(BaseModel):
    """A page of the review list, newest first."""

    items: list[ViolationSummaryPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    bounded_scan: bool = Field(
        False,
        description="True for fuzzy distance 2: each page examined a bounded number of rows, so a page "
        "may hold fewer items than asked (even none) while next_cursor still leads further.",
    )


# ---------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------


class ViolationStatsGroup(BaseModel):
    """Counts of one group (one rule, camera, district, hour of day or day)."""

    key: str | None
    total: int
    new: int
    confirmed: int
    rejected: int
    plate_read: int = Field(description="Violations whose plate the device read.")


class ViolationStatsPublic(BaseModel):
    """Violation counts, grouped, with the confirmation rate and the plate read rate."""

    group_by: str
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    utc_offset_minutes: int
    total: int
    new: int
    confirmed: int
    rejected: int
    confirmation_rate: float | None = Field(description="confirmed / (confirmed + rejected); null if none.")
    plate_read_rate: float | None = Field(description="Share of violations with a plate read; null if none.")
    groups: list[ViolationStatsGroup]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class FlowStatsGroup(BaseModel):
    """Vehicles counted in one group (one class, camera or hour of day)."""

    key: str
    count: int


class FlowStatsPublic(BaseModel):
    """Flow counts, grouped."""

    group_by: str
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    utc_offset_minutes: int
    total: int
    groups: list[FlowStatsGroup]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


# ---------------------------------------------------------------------------------------------------
# Map (GeoJSON, RFC 7946: coordinates are [longitude, latitude])
# ---------------------------------------------------------------------------------------------------


class PointPublic(BaseModel):
    """A GeoJSON point."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="[longitude, latitude] (WGS 84).")


class ViolationFeatureProperties(BaseModel):
    """What the map shows of a violation (no plate: open the violation for that, which is audited)."""

    id: int
    rule: str
    status: str
    occurred_at: datetime
    camera_id: str
    district_id: str | None
    vehicle_class: str


class ViolationFeature(BaseModel):
    """A violation at its camera's position."""

    type: Literal["Feature"] = "Feature"
    id: int
    geometry: PointPublic
    properties: ViolationFeatureProperties


class ViolationFeatureCollection(BaseModel):
    """Violations for the map, newest first."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[ViolationFeature]
    truncated: bool = Field(description="True when more violations matched than `limit`.")


class CameraFeatureProperties(BaseModel):
    """A camera on the map and whether it is reporting."""

    id: str
    name: str
    district_id: str | None
    last_seen: datetime | None
    status: Literal["online", "stale", "never"] = Field(
        description="online: heard from within the stale period; stale: not since; never: never heard from."
    )
    scene_version: str | None


class CameraFeature(BaseModel):
    """A camera at its position."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointPublic
    properties: CameraFeatureProperties


class CameraFeatureCollection(BaseModel):
    """Cameras for the map (cameras without a position are left out)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[CameraFeature]
