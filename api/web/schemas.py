"""Response bodies of the web app's own JSON routes (the review API's bodies are in `api.schemas`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DistrictPublic(BaseModel):
    """A district as the filter lists show it."""

    id: str
    name: str


class CameraOption(BaseModel):
    """A camera as the filter lists show it (with a position on the map or not)."""

    id: str
    name: str
    district_id: str | None


class LookupStill(BaseModel):
    """One still of the looked-up violation, inline (one request, no second credential-bearing URL)."""

    kind: str = Field(description="still_before, still_at or still_after.")
    media_type: str
    data_url: str = Field(description="data: URL of the image.")


class LookupResult(BaseModel):
    """What a vehicle owner may see of one violation: no owner data, no other violation."""

    plate: str = Field(description="The plate the violation is recorded under (formatted when known).")
    occurred_at: datetime
    place: str = Field(description="The camera's name (its intersection).")
    district: str | None = Field(description="The district's name.")
    rule: str
    legal_reference: str
    status: str = Field(description="new, confirmed or rejected.")
    notice_status: str | None = Field(
        None, description="State of the owner notice (awaiting_owner, created, sms_sent, posted, ...)."
    )
    corrected_from: str | None = Field(
        None,
        description="The plate looked up, when the notice named it and the plate was corrected on review "
        "since (`plate` is the corrected one); null otherwise.",
    )
    stills: list[LookupStill] = Field(description="Empty when the evidence was deleted (retention).")


class FileCheck(BaseModel):
    """One evidence file checked against the signed manifest (every file it lists, and any other row)."""

    name: str
    kind: str
    ok: bool | None = Field(
        description="Its record and bytes are the signed ones; null when deleted by retention (recorded)."
    )
    problem: str | None = None


class EvidenceCheck(BaseModel):
    """The signature and hash check of a stored evidence package, and of the violation's recorded
    details against it, done again now."""

    device_id: str
    manifest_ok: bool = Field(description="The stored manifest still hashes to the hash stored at ingest.")
    signature_ok: bool = Field(description="The device's Ed25519 signature verifies with its registered key.")
    files: list[FileCheck]
    ok: bool = Field(description="Everything checked verified (deleted files are not counted against it).")
    problem: str | None = Field(None, description="The first failure, one line.")
    problems: list[str] = Field(
        default_factory=list,
        description="Every failure, one line each, starting with what failed: the manifest, a file name or "
        "a column recorded otherwise than signed (plate_key, occurred_at, rule, ...).",
    )


class EvidenceExtras(BaseModel):
    """What the evidence viewer shows beyond `ViolationPublic`."""

    violation_id: int
    camera_name: str | None
    district_name: str | None
    plate_alternatives: list[tuple[str, float]] = Field(
        description="The device's alternative readings with their probabilities, best first."
    )
    box_xyxy: list[float] = Field(description="The offending vehicle's box in the 'at' still, pixels.")
    check: EvidenceCheck


class PlateCheck(BaseModel):
    """A plate typed by a reviewer, judged by the Vietnamese plate grammar (as the decision will be)."""

    valid: bool
    compact: str | None
    formatted: str | None
    problem: str | None = Field(description="Why it is not accepted; null when valid.")
