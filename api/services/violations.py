"""Reading violations with object-level access checks (officers see only their own district).

Evidence bytes are read for showing in one place, `verified_bytes`: the stored manifest must still hash
to what was recorded at ingest and verify with the device's Ed25519 key, the file row must be the file
the manifest lists under its name (kind, size, media type, SHA-256, stored at that address), and the
bytes the store returns must hash to it (the store checks that). Anything else raises
`EvidenceIntegrityError`; callers report it with `record_mismatch` (an error in the log and an
`evidence.mismatch` audit entry) and show nothing of the file. So the `X-Content-SHA256` header of a
served file, and every still of the public lookup, is the hash the device signed.

`evidence_package` gives the signed package itself (a zip laid out as the edge's evidence folder, plus
the device's public key) so anyone can verify a violation with `phatnguoi evidence verify`, without
trusting this server.

The staff view (`to_public`) states the legal basis the owner will be told (`legal_basis_public`: the
legal catalogue's citation, fine range and licence points), so a reviewer never confirms on the figures
a device wrote with a wrong decree table; the device's citation stays in `legal_reference_signed`
(evidence) and `citation_mismatch` says when the catalogue does not have it. Likewise the plate: its
`valid` is this server's grammar on the device's reading (`checked_reading`), never the `valid` the
device wrote (that stays in `valid_signed`).
"""

from __future__ import annotations

import io
import logging
import stat
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from api import audit
from api.errors import StorageError
from api.models import Device, EvidenceFile, PenaltyDelivery, User, Violation
from api.notices.catalogue import default_catalogue, legal_basis
from api.schemas import (
    EvidenceFilePublic,
    LegalBasisPublic,
    PenaltyMessagePublic,
    PlatePublic,
    ViolationPublic,
)
from api.storage import ContentMismatchError, EvidenceStore, address_of
from plates.grammar import compact as compact_text
from plates.grammar import parse_vn  # pure Python: no OpenCV / ONNX Runtime behind it
from violations.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    EvidenceError,
    canonical_bytes,
    load_public_key,
    sha256_hex,
    verify_signature,
)

log = logging.getLogger(__name__)

#: Name of the device's public key (PEM) in a downloaded package, beside the evidence folder: inside
#: it, `phatnguoi evidence verify` would count it as an unlisted file.
PUBLIC_KEY_NAME = "device_public_key.pem"


class EvidenceIntegrityError(Exception):
    """Stored evidence that is not what the device signed; nothing of it is shown (routes answer 409).

    Attributes:
        violation_id: the violation.
        name: the evidence file (``manifest.json`` when the manifest itself does not verify).
        reason: what does not match, one line.
    """

    def __init__(self, violation_id: int, name: str, reason: str) -> None:
        super().__init__(
            f"evidence file {name} of violation {violation_id} does not match its signed hash: {reason}"
        )
        self.violation_id = violation_id
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ManifestCheck:
    """A violation's stored manifest checked again: against the hash recorded at ingest (`manifest_ok`)
    and the device's signature (`signature_ok`); `problem` is the first failure, one line."""

    manifest_ok: bool
    signature_ok: bool
    problem: str | None

    @property
    def ok(self) -> bool:
        """Both hold."""
        return self.manifest_ok and self.signature_ok


def check_manifest(v: Violation, device: Device | None) -> ManifestCheck:
    """Check `v`'s stored manifest and signature with `device`'s registered key (None: not registered).

    Never raises: failures are reported in the result.
    """
    problem: str | None = None
    try:
        manifest_bytes = canonical_bytes(v.manifest)
        manifest_ok = sha256_hex(manifest_bytes) == v.manifest_sha256
    except EvidenceError as e:
        manifest_bytes, manifest_ok = b"", False
        problem = str(e)
    if not manifest_ok and problem is None:
        problem = "the stored manifest no longer matches its hash recorded at ingest"
    signature_ok = False
    if device is None:
        problem = problem or f"device {v.device_id} is not registered"
    elif manifest_bytes:
        try:
            verify_signature(manifest_bytes, v.signature, load_public_key(device.public_key_pem))
            signature_ok = True
        except EvidenceError as e:
            problem = problem or str(e)
    return ManifestCheck(manifest_ok, signature_ok, problem)


def signed_entries(v: Violation) -> dict[str, Mapping[str, Any]]:
    """The files `v`'s stored manifest lists: name → entry (name, kind, sha256, size, media_type), in
    the manifest's order; empty when the stored manifest has no readable file list."""
    manifest = v.manifest if isinstance(v.manifest, Mapping) else {}
    files = manifest.get("files")
    if not isinstance(files, list):
        return {}
    return {str(f["name"]): f for f in files if isinstance(f, Mapping) and "name" in f}


_ROW_FIELDS = ("kind", "size", "sha256", "media_type")


def file_row_problem(f: EvidenceFile, entry: Mapping[str, Any] | None) -> str | None:
    """Why the row `f` is not the file the manifest lists under its name (`entry`), or None."""
    if entry is None:
        return "not in the signed manifest"
    differ = [k for k in _ROW_FIELDS if getattr(f, k) != entry.get(k)]
    if differ:
        return f"{', '.join(differ)} not as signed"
    try:
        stored_at = address_of(f.storage_uri)
    except StorageError:
        stored_at = None
    if stored_at != f.sha256:
        return "stored under another hash than the signed one"
    return None


def verified_bytes(store: EvidenceStore, v: Violation, device: Device | None, f: EvidenceFile) -> bytes:
    """The bytes of `v`'s evidence file `f`, when they are what `device` signed (see the module
    docstring). Reads the store: call it with no transaction open.

    Raises:
        EvidenceIntegrityError: the manifest, the row or the bytes do not match (report it with
            `record_mismatch`).
        StorageError: the store could not read the file.
    """
    manifest = check_manifest(v, device)
    if not manifest.ok:
        raise EvidenceIntegrityError(v.id, f.name, manifest.problem or "the manifest does not verify")
    problem = file_row_problem(f, signed_entries(v).get(f.name))
    if problem is not None:
        raise EvidenceIntegrityError(v.id, f.name, f"its record is {problem}")
    try:
        return store.get(f.storage_uri)
    except ContentMismatchError as e:
        raise EvidenceIntegrityError(v.id, f.name, f"the stored bytes hash to {e.actual}") from None


def record_mismatch(session: Session, error: EvidenceIntegrityError, *, actor: str, ip: str | None) -> None:
    """Log `error` and write it to the audit log as `evidence.mismatch` (committed)."""
    log.error("%s", error)
    audit.record(
        session,
        actor=actor,
        action="evidence.mismatch",
        object_type="violation",
        object_id=error.violation_id,
        detail={"file": error.name, "problem": error.reason},
        ip=ip,
    )
    session.commit()


def visible_violation(session: Session, user: User, violation_id: int) -> Violation | None:
    """The violation if `user` may see it, else None (the caller answers 404 either way, so an
    officer cannot even learn that another district's violation exists)."""
    stmt = select(Violation).where(Violation.id == violation_id)
    if user.role == "officer":
        stmt = stmt.where(Violation.district_id == user.district_id)
    return session.scalars(stmt).one_or_none()


def view_violation(session: Session, user: User, violation_id: int, ip: str) -> Violation | None:
    """`visible_violation`, recording the view in the audit log (committed)."""
    v = visible_violation(session, user, violation_id)
    if v is not None:
        audit.record(
            session,
            actor=f"user:{user.username}",
            action="violation.view",
            object_type="violation",
            object_id=v.id,
            ip=ip,
        )
        session.commit()
    return v


def read_evidence(
    session: Session, store: EvidenceStore, user: User, violation_id: int, name: str, ip: str
) -> tuple[EvidenceFile, bytes] | None:
    """One evidence file's row and bytes if `user` may see the violation (audited), else None. The
    bytes are the ones the device signed (`verified_bytes`), so `row.sha256` is their hash.

    Raises:
        FileNotFoundError: the file was deleted by the retention job.
        EvidenceIntegrityError: the file is not what the device signed (logged and audited).
        StorageError: the store could not read it.
    """
    v = visible_violation(session, user, violation_id)
    f = next((f for f in v.files if f.name == name), None) if v is not None else None
    if v is None or f is None:
        return None
    if f.deleted_at is not None:
        raise FileNotFoundError(f"{name} was deleted on {f.deleted_at.date().isoformat()} (retention)")
    device = session.get(Device, v.device_id)
    session.commit()  # not holding a transaction (SQLite: the write lock) while the store reads
    try:
        data = verified_bytes(store, v, device, f)
    except EvidenceIntegrityError as e:
        record_mismatch(session, e, actor=f"user:{user.username}", ip=ip)
        raise
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="evidence.view",
        object_type="violation",
        object_id=violation_id,
        detail={"file": name},
        ip=ip,
    )
    session.commit()
    return f, data


@dataclass(frozen=True, slots=True)
class EvidencePackage:
    """A violation's signed evidence package as a zip (see `evidence_package`)."""

    filename: str
    data: bytes
    manifest_sha256: str


def _zip_info(name: str, when: datetime, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    info.compress_type = compress
    info.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain read-only-for-others file when unzipped
    return info


def _signed_event_id(v: Violation) -> str:
    # the manifest's (signed, a UUID checked at ingest), not the column: the folder is named as on the edge
    return str(v.manifest["event_id"])


def _package_zip(v: Violation, device: Device, files: Mapping[str, bytes]) -> bytes:
    when = datetime(1980, 1, 1, tzinfo=UTC)  # the earliest date a zip can hold
    try:  # the files' dates: when the device wrote the package
        created = datetime.fromisoformat(str(v.manifest["created_at"])).astimezone(UTC)
        if 1980 <= created.year <= 2107:
            when = created
    except (KeyError, ValueError):
        pass
    folder = _signed_event_id(v)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            _zip_info(f"{folder}/{MANIFEST_NAME}", when, zipfile.ZIP_DEFLATED), canonical_bytes(v.manifest)
        )
        z.writestr(_zip_info(f"{folder}/{SIGNATURE_NAME}", when, zipfile.ZIP_DEFLATED), v.signature + "\n")
        for name, data in files.items():  # JPEG and MP4 are compressed already
            z.writestr(_zip_info(f"{folder}/{name}", when, zipfile.ZIP_STORED), data)
        z.writestr(_zip_info(PUBLIC_KEY_NAME, when, zipfile.ZIP_DEFLATED), device.public_key_pem)
    return buf.getvalue()


def evidence_package(
    session: Session, store: EvidenceStore, user: User, violation_id: int, ip: str
) -> EvidencePackage | None:
    """The signed evidence package of a violation `user` may see (audited as `evidence.package`), else
    None.

    The zip holds ``<event_id>/`` exactly as the edge device wrote it (``manifest.json``: the signed
    canonical bytes; ``manifest.sig``; every file the manifest lists) and, beside that folder, the
    device's registered public key (`PUBLIC_KEY_NAME`), so that
    ``phatnguoi evidence verify <event_id> --public-key device_public_key.pem`` checks it end to end.
    Every file goes through `verified_bytes`: the server never hands out a package it knows is altered.

    Raises:
        FileNotFoundError: the evidence was deleted by the retention job.
        EvidenceIntegrityError: a file (or the manifest) is not what the device signed (logged, audited).
        StorageError: the store could not read a file.
    """
    v = visible_violation(session, user, violation_id)
    if v is None:
        return None
    deleted = sorted({f.deleted_at for f in v.files if f.deleted_at is not None})
    purged = v.evidence_purged_at or (deleted[0] if deleted else None)
    if purged is not None:
        raise FileNotFoundError(
            f"the evidence of violation {v.id} was deleted on {purged.date().isoformat()} (retention)"
        )
    device = session.get(Device, v.device_id)
    session.commit()  # not holding a transaction (SQLite: the write lock) while the store reads
    rows = {f.name: f for f in v.files}
    contents: dict[str, bytes] = {}
    try:
        for name in signed_entries(v):
            f = rows.get(name)
            if f is None:
                raise EvidenceIntegrityError(v.id, name, "it has no file row")
            contents[name] = verified_bytes(store, v, device, f)
        if not contents:  # a manifest without files does not verify either: say why
            raise EvidenceIntegrityError(v.id, MANIFEST_NAME, "the stored manifest lists no files")
    except EvidenceIntegrityError as e:
        record_mismatch(session, e, actor=f"user:{user.username}", ip=ip)
        raise
    assert device is not None  # verified_bytes checked the signature with its key
    data = _package_zip(v, device, contents)
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="evidence.package",
        object_type="violation",
        object_id=v.id,
        detail={"files": sorted(contents), "manifest_sha256": v.manifest_sha256},
        ip=ip,
    )
    session.commit()
    return EvidencePackage(f"{_signed_event_id(v)}.zip", data, v.manifest_sha256)


def penalty_messages(session: Session, violation_id: int) -> list[PenaltyMessagePublic]:
    """The violation's messages to the penalty system (its confirmations, and the withdrawals of them
    when reopened), oldest first; empty when there is none."""
    rows = session.execute(
        select(
            PenaltyDelivery.kind,
            PenaltyDelivery.status,
            PenaltyDelivery.attempts,
            PenaltyDelivery.created_at,
            PenaltyDelivery.delivered_at,
            PenaltyDelivery.next_attempt_at,
            PenaltyDelivery.last_status_code,
            PenaltyDelivery.last_error,
        )
        .where(PenaltyDelivery.violation_id == violation_id)
        .order_by(PenaltyDelivery.id)
    ).all()
    return [PenaltyMessagePublic.model_validate(row._asdict()) for row in rows]


def reviewer_name(v: Violation) -> str | None:
    """The username of whoever decided `v` (None: not decided, or `v` belongs to no session)."""
    session = object_session(v)
    if v.reviewed_by is None or session is None:
        return None
    reviewer = session.get(User, v.reviewed_by)
    return reviewer.username if reviewer is not None else None


def detected_class(v: Violation) -> str:
    """The detector's vehicle class of `v`, as its device signed it (`vehicle_class` is the class it is
    fined as, which a reviewer may have corrected)."""
    manifest = v.manifest if isinstance(v.manifest, Mapping) else {}
    signed = manifest.get("vehicle_class")
    return signed if isinstance(signed, str) else v.vehicle_class


def legal_basis_public(v: Violation) -> LegalBasisPublic:
    """What `v`'s owner and the penalty system are told of its legal basis (`legal_basis`: the
    catalogue's citation, fine range and licence points for its rule, class and day), so that the
    reviewer confirms what the notice will state, not the figures the device wrote."""
    basis = legal_basis(v)
    entry = basis.entry
    if entry is None:
        return LegalBasisPublic(citation=basis.citation, in_catalogue=False)
    return LegalBasisPublic(
        citation=basis.citation,
        in_catalogue=True,
        summary=entry.summary,
        fine_min_vnd=entry.fine_min_vnd,
        fine_max_vnd=entry.fine_max_vnd,
        licence_points=entry.licence_points,
    )


def citation_mismatch(v: Violation) -> bool:
    """Whether the catalogue lacks `v`'s signed citation for its rule and the class the device
    detected: the check ingest flags (`violation.citation_mismatch`), so a wrong decree table on a
    device shows on the review page too."""
    return default_catalogue().citation_problem(v.rule, detected_class(v), v.legal_reference) is not None


@dataclass(frozen=True, slots=True)
class ReadingCheck:
    """A device's plate reading judged by this server's Vietnamese plate grammar (`checked_reading`).

    Attributes:
        valid: the reading is a plate that can be fined as it is.
        formatted: that plate the Vietnamese way (`30A-123.45`); None when not valid.
        problem: why it is not valid, one line (English; the web UI translates it); None when valid.
    """

    valid: bool
    formatted: str | None
    problem: str | None


def checked_reading(compact: str | None, formatted: str | None) -> ReadingCheck:
    """Whether a device's reading is a plate, by the server's own grammar (the manifest's `valid` is
    the device's claim, and a device may be wrong or hostile).

    Valid when `compact` (the plate searched, fined and sent to the owner's registry) is a Vietnamese
    plate exactly as written, in its canonical compact form (no OCR confusion repaired), and
    `formatted` (the reading the reviewer and the owner see), when there is one, is the same plate.
    """
    if not compact:
        return ReadingCheck(False, None, "no plate read")
    parsed = parse_vn(compact)
    if not parsed.valid or parsed.compact is None:
        return ReadingCheck(False, None, parsed.problem or "not a plate")
    if parsed.corrections or parsed.compact != compact:
        return ReadingCheck(False, None, f"not a plate as written (the grammar reads {parsed.formatted})")
    if formatted is not None and compact_text(formatted) != compact:
        return ReadingCheck(False, None, f"it is recorded as another plate, {parsed.formatted}")
    return ReadingCheck(True, parsed.formatted, None)


def to_public(v: Violation, penalty: Sequence[PenaltyMessagePublic] = ()) -> ViolationPublic:
    """The API view of a violation (`penalty`: its messages to the penalty system, see
    `penalty_messages`; the reviewer's username is read through `v`'s session). `legal_reference`
    is the citation the owner is told (`legal_basis_public`), `legal_reference_signed` the device's."""
    basis = legal_basis_public(v)
    plate = None
    if v.plate_text is not None or v.plate_compact is not None or v.plate_corrected is not None:
        reading = checked_reading(v.plate_compact, v.plate_formatted)
        plate = PlatePublic(
            text=v.plate_text,
            compact=v.plate_compact,
            formatted=v.plate_formatted,
            confidence=v.plate_confidence,
            valid=reading.valid,
            valid_signed=v.plate_valid,
            canonical=reading.formatted,
            problem=reading.problem,
            lines=v.plate_lines,
            colour=v.plate_colour,
            corrected=v.plate_corrected,
            key=v.plate_key,
        )
    return ViolationPublic(
        id=v.id,
        event_id=v.event_id,
        rule=v.rule,
        legal_reference=basis.citation,
        legal_reference_signed=v.legal_reference,
        citation_mismatch=citation_mismatch(v),
        legal_basis=basis,
        camera_id=v.camera_id,
        district_id=v.district_id,
        device_id=v.device_id,
        occurred_at=v.occurred_at,
        received_at=v.received_at,
        vehicle_class=v.vehicle_class,
        vehicle_class_detected=detected_class(v),
        vehicle_class_corrected=v.vehicle_class_corrected,
        lat=v.lat,
        lon=v.lon,
        plate=plate,
        speed_kmh=v.speed_kmh,
        speed_limit_kmh=v.speed_limit_kmh,
        signal_state=v.signal_state,
        red_for_s=v.red_for_s,
        details=v.details,
        status=v.status,
        reviewed_by=v.reviewed_by,
        reviewed_by_name=reviewer_name(v),
        reviewed_at=v.reviewed_at,
        decision_reason=v.decision_reason,
        decision_note=v.decision_note,
        evidence_purged_at=v.evidence_purged_at,
        penalty_delivery=penalty[-1].status if penalty else None,
        penalty_messages=list(penalty),
        manifest_sha256=v.manifest_sha256,
        files=[file_public(f) for f in v.files],
    )


def file_public(f: EvidenceFile) -> EvidenceFilePublic:
    """The API view of an evidence file."""
    return EvidenceFilePublic(
        name=f.name,
        kind=f.kind,
        sha256=f.sha256,
        size=f.size,
        media_type=f.media_type,
        deleted=f.deleted_at is not None,
    )
