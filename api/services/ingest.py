"""Evidence ingest: verify a device's signed package, store its files, record the violation once.

Order of work (each step refuses with a one-line reason and stores nothing):
1. limits: number of files;
2. the manifest's Ed25519 signature with the device's registered key;
3. the manifest schema, and values both databases can hold (no NUL, 64-bit integers);
4. the manifest names the calling device and one of its cameras;
5. every file's presence, size and SHA-256 (no unlisted files);
6. media types (declared, allowed, and the bytes start like that type);
7. a stored violation with the same `event_id`: the same manifest → the stored result (200), another
   manifest → 409.
A legal reference the catalogue does not have for the rule and vehicle class is not refused (the
evidence is signed as it is) but flagged: logged and audited as `violation.citation_mismatch`; owners
and the penalty system are told the catalogue's (`_flag_citation`).
Then the files go to the content-addressed store (all at once, outside any database transaction:
SQLite's write lock is not held during disk writes), and the rows are written in ONE transaction. A
failure after the files are stored leaves only unreferenced blobs, never a row without its files. Two
uploads of the same event racing each other meet at the unique `event_id`: the loser returns the
winner's result.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import audit
from api.db import utcnow
from api.errors import RefusedError
from api.models import Camera, Device, District, EvidenceFile, Violation
from api.notices.catalogue import default_catalogue, legal_basis
from api.services import cameras
from api.services.auth import AuthenticatedDevice
from api.settings import Settings
from api.storage import EvidenceStore
from violations.manifest import EvidenceError, load_public_key, parse_manifest, verify_files, verify_signature

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One uploaded evidence file: its bytes and the media type its multipart part declared."""

    data: bytes
    part_media_type: str | None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """The stored violation and whether it was stored before this request."""

    violation: Violation
    duplicate: bool


# First bytes of the evidence types we know (the rest of `upload_media_types` is accepted as declared).
_MAGIC: dict[str, tuple[int, bytes]] = {
    "image/jpeg": (0, b"\xff\xd8\xff"),
    "image/png": (0, b"\x89PNG\r\n\x1a\n"),
    "video/mp4": (4, b"ftyp"),
}
# Part types that say nothing about the content (clients that do not set one).
_GENERIC_PART_TYPES = {"", "application/octet-stream"}


def media_type_matches(data: bytes, media_type: str) -> bool:
    """Whether `data` starts like `media_type` (True for types without a known signature)."""
    magic = _MAGIC.get(media_type)
    if magic is None:
        return True
    offset, signature = magic
    return data[offset : offset + len(signature)] == signature


def _check_limits(settings: Settings, files: Mapping[str, UploadedFile]) -> None:
    if len(files) > settings.upload_max_files:
        raise RefusedError(413, f"too many files: {len(files)} > {settings.upload_max_files}")


def _verify_package(
    settings: Settings,
    device: AuthenticatedDevice,
    manifest_bytes: bytes,
    signature: str,
    files: Mapping[str, UploadedFile],
) -> dict[str, Any]:
    _check_limits(settings, files)
    try:
        verify_signature(manifest_bytes, signature.strip(), load_public_key(device.public_key_pem.encode()))
    except EvidenceError as e:
        raise RefusedError(400, f"signature: {e}") from None
    try:
        manifest = parse_manifest(manifest_bytes)
    except EvidenceError as e:
        raise RefusedError(422, f"manifest: {e}") from None
    problem = _unstorable(manifest)
    if problem:
        raise RefusedError(422, f"manifest: {problem}")
    if manifest["device_id"] != device.id:
        raise RefusedError(
            403, f"manifest device_id {manifest['device_id']!r} is not the calling device {device.id!r}"
        )
    if manifest["camera_id"] not in device.camera_ids:
        raise RefusedError(403, f"device {device.id} may not post for camera {manifest['camera_id']!r}")
    try:
        verify_files(manifest, {name: f.data for name, f in files.items()})
    except EvidenceError as e:
        raise RefusedError(400, f"files: {e}") from None
    allowed = set(settings.upload_media_types)
    for entry in manifest["files"]:
        name, declared = entry["name"], entry["media_type"]
        if declared not in allowed:
            accepted = ", ".join(sorted(allowed))
            raise RefusedError(415, f"file {name}: media type {declared} not accepted ({accepted})")
        part_type = (files[name].part_media_type or "").split(";")[0].strip().lower()
        if part_type not in _GENERIC_PART_TYPES and part_type != declared:
            raise RefusedError(415, f"file {name}: sent as {part_type} but the manifest says {declared}")
        if not media_type_matches(files[name].data, declared):
            raise RefusedError(415, f"file {name}: content is not {declared}")
    return manifest


_INT64 = (-(2**63), 2**63 - 1)


def _unstorable(value: Any, path: str = "") -> str | None:
    """The first field the databases cannot hold: a NUL character (PostgreSQL text refuses it) or an
    integer beyond 64 bits. None when everything is storable."""
    if isinstance(value, str):
        return f"{path or 'value'} contains a NUL character" if "\x00" in value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if _INT64[0] <= value <= _INT64[1] else f"{path} is beyond a 64-bit integer"
    if isinstance(value, dict):
        for k, v in value.items():
            problem = _unstorable(k, f"{path}.{k}".lstrip(".")) or _unstorable(v, f"{path}.{k}".lstrip("."))
            if problem:
                return problem
    if isinstance(value, list):
        for i, v in enumerate(value):
            problem = _unstorable(v, f"{path}[{i}]")
            if problem:
                return problem
    return None


def _stored_result(existing: Violation, manifest_sha256: str) -> IngestOutcome:
    if existing.manifest_sha256 != manifest_sha256:
        stored = existing.manifest_sha256[:12]
        reason = f"event {existing.event_id} is already stored with another manifest ({stored}…)"
        raise RefusedError(409, reason)
    return IngestOutcome(existing, duplicate=True)


def _parse_time(value: Any) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


#: No camera evidence is older than this; earlier dates are a device clock gone wrong.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _check_time(settings: Settings, occurred: datetime, now: datetime) -> None:
    """Refuse a violation time a device clock cannot have meant (in the future, before 2000) or older
    than the server is told to take: such dates broke deadlines and paging."""
    if occurred > now + timedelta(seconds=settings.ingest_future_skew_s):
        raise RefusedError(
            422, f"occurred_at {occurred.isoformat()} is in the future: check the device clock"
        )
    if occurred < EARLIEST:
        raise RefusedError(422, f"occurred_at {occurred.isoformat()} is before 2000: check the device clock")
    days = settings.ingest_max_age_days
    if days is not None and occurred < now - timedelta(days=days):
        raise RefusedError(
            422,
            f"occurred_at {occurred.isoformat()} is older than {days} days "
            "(PHATNGUOI_INGEST_MAX_AGE_DAYS): check the device clock",
        )


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _violation_row(
    manifest: dict[str, Any], manifest_sha256: str, signature: str, camera: Camera, now: datetime
) -> Violation:
    plate = manifest.get("plate") or {}
    signal = manifest.get("signal") or {}
    details = dict(manifest.get("details") or {})
    location = manifest.get("location") or {}
    compact = plate.get("text")
    return Violation(
        event_id=manifest["event_id"],
        rule=manifest["rule"],
        legal_reference=manifest["legal_reference"],
        camera_id=camera.id,
        district_id=camera.district_id,
        device_id=manifest["device_id"],
        occurred_at=_parse_time(manifest["occurred_at"]),
        track_id=int(manifest["track_id"]),
        frame_index=int(manifest["frame_index"]),
        vehicle_class=manifest["vehicle_class"],
        box_xyxy=[float(v) for v in manifest["box_xyxy"]],
        details=details,
        lat=_float_or_none(location.get("lat")),
        lon=_float_or_none(location.get("lon")),
        scene_version=manifest["scene_version"],
        plate_text=plate.get("raw"),
        plate_compact=compact,
        plate_formatted=plate.get("formatted"),
        plate_confidence=_float_or_none(plate.get("confidence")),
        plate_valid=plate.get("valid") if plate else None,
        plate_lines=plate.get("lines"),
        plate_colour=plate.get("colour"),
        plate_alternatives=plate.get("alternatives") if plate else None,
        plate_key=compact,
        speed_kmh=_float_or_none(details.get("speed_kmh")),
        speed_limit_kmh=_float_or_none(details.get("limit_kmh")),
        signal_state=signal.get("state"),
        red_for_s=_float_or_none(signal.get("red_for_s")),
        status="new",
        manifest=manifest,
        manifest_sha256=manifest_sha256,
        signature=signature.strip(),
        received_at=now,
    )


def _update_camera(session: Session, camera: Camera, manifest: dict[str, Any], now: datetime) -> None:
    camera.last_seen = now
    camera.scene_version = manifest["scene_version"]
    location = manifest.get("location") or {}
    if camera.lat is None and camera.lon is None and location:
        camera.lat, camera.lon = _float_or_none(location.get("lat")), _float_or_none(location.get("lon"))
    district = manifest.get("district")
    if camera.district_id is None and district:
        # First use decides only among districts an admin registered: a device cannot create one.
        found = cameras.district_named(session, district)
        if found is not None:
            # Its violations stored without a district (before it was registered) get it too.
            actor = f"device:{manifest['device_id']}"
            cameras.assign_district(session, camera, found.id, actor=actor, source="manifest")
            log.info("camera %s: district %s taken from its first manifest", camera.id, found.id)
        else:
            log.warning(
                "camera %s: manifest names unknown district %r; left unassigned until it is registered "
                "(phatnguoi districts add) or the camera's is set (phatnguoi cameras set)",
                camera.id,
                district,
            )
    elif district and district != camera.district_id:
        registered = session.get(District, camera.district_id)
        if registered is None or not cameras.names(registered, district):  # not its name either
            log.warning(
                "camera %s: manifest says district %r, registered %r (kept)",
                camera.id,
                district,
                camera.district_id,
            )


def _store_files(
    store: EvidenceStore, manifest: dict[str, Any], files: Mapping[str, UploadedFile]
) -> dict[str, str]:
    """Put every evidence file in the store at once; returns name → URI.

    In parallel because each durable write waits for the disk twice (file, then directory): four
    files one after the other cost ~10 ms here, at once ~2 ms (fsync releases the GIL).

    Raises:
        StorageError: the first failure (files already written stay as unreferenced blobs).
    """
    entries = manifest["files"]
    with ThreadPoolExecutor(max_workers=min(len(entries), 8), thread_name_prefix="evidence-put") as pool:
        uris = pool.map(lambda e: store.put(files[e["name"]].data, e["sha256"]), entries)
        return {e["name"]: uri for e, uri in zip(entries, uris, strict=True)}


def _flag_citation(session: Session, row: Violation, *, actor: str, ip: str | None) -> None:
    """Flag (log and audit log, `violation.citation_mismatch`) a device citation that the legal
    catalogue does not have for the rule and vehicle class. It is stored as signed — the evidence
    stays checkable, and the device's own decree table may be wrong without the violation being so —
    but no one is told it: the notice, the lookup, the webhook and the export state the catalogue's
    (`api.notices.catalogue.legal_basis`)."""
    catalogue = default_catalogue()
    problem = catalogue.citation_problem(row.rule, row.vehicle_class, row.legal_reference)
    if problem is None:
        return
    stated = legal_basis(row, catalogue).citation
    log.warning("violation %s: device citation flagged: %s; stated instead: %s", row.id, problem, stated)
    audit.record(
        session,
        actor=actor,
        action="violation.citation_mismatch",
        object_type="violation",
        object_id=row.id,
        detail={"problem": problem, "device": row.legal_reference, "stated": stated},
        ip=ip,
    )


def ingest_violation(
    session: Session,
    store: EvidenceStore,
    settings: Settings,
    device: AuthenticatedDevice,
    manifest_bytes: bytes,
    signature: str,
    files: Mapping[str, UploadedFile],
    ip: str | None = None,
) -> IngestOutcome:
    """Verify and store one evidence package (see the module docstring for the order of checks).

    Raises:
        RefusedError: with the HTTP status and a one-line reason; nothing was stored.
        StorageError: the evidence store failed; nothing was recorded.
    """
    manifest = _verify_package(settings, device, manifest_bytes, signature, files)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    event_id = manifest["event_id"]

    existing = session.scalars(select(Violation).where(Violation.event_id == event_id)).one_or_none()
    # End the read transaction before writing files (on SQLite it holds the write lock). Commit, not
    # rollback: a rollback would expire `existing`.
    session.commit()
    if existing is not None:
        return _stored_result(existing, manifest_sha256)
    _check_time(settings, _parse_time(manifest["occurred_at"]), utcnow())

    uris = _store_files(store, manifest, files)

    now = utcnow()
    try:
        # Locked (PostgreSQL) until this commit: an admin giving the camera its district meanwhile
        # waits, then files this violation under it too; or this one waits and reads the district.
        camera = session.get(Camera, manifest["camera_id"], with_for_update=True)
        if camera is None:  # deleted since the device was authorised
            raise RefusedError(403, f"camera {manifest['camera_id']!r} is not registered")
        _update_camera(session, camera, manifest, now)
        row = _violation_row(manifest, manifest_sha256, signature, camera, now)
        row.files = [
            EvidenceFile(
                name=entry["name"],
                kind=entry["kind"],
                sha256=entry["sha256"],
                size=int(entry["size"]),
                media_type=entry["media_type"],
                storage_uri=uris[entry["name"]],
            )
            for entry in manifest["files"]
        ]
        session.add(row)
        dev = session.get(Device, device.id)
        if dev is not None:
            dev.last_seen = now
        session.flush()
        audit.record(
            session,
            actor=f"device:{device.id}",
            action="violation.received",
            object_type="violation",
            object_id=row.id,
            detail={"event_id": event_id, "manifest_sha256": manifest_sha256, "files": len(row.files)},
            ip=ip,
        )
        _flag_citation(session, row, actor=f"device:{device.id}", ip=ip)
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = session.scalars(select(Violation).where(Violation.event_id == event_id)).one_or_none()
        session.commit()
        if winner is None:
            raise
        log.info("event %s: stored by a concurrent upload", event_id)
        return _stored_result(winner, manifest_sha256)
    except BaseException:
        session.rollback()
        raise
    log.info("violation %s (%s, camera %s) stored as id %d", event_id, row.rule, row.camera_id, row.id)
    return IngestOutcome(row, duplicate=False)
