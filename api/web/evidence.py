"""What the evidence viewer needs beyond `GET /api/v1/violations/{id}`: the integrity check done again
now, the plate's alternative readings, the vehicle box, and the camera's and district's names.

The ingest verified the package once; checking again when a reviewer opens the evidence shows that
nothing changed since (a database edit, a swapped blob in the store). The check covers:
- the stored manifest against its hash recorded at ingest, and the device's Ed25519 signature of it;
- every file the manifest lists: its row (name, kind, size, media type, SHA-256, address) and the bytes
  in the store; a file deleted by the retention job passes only when that is recorded (the violation's
  `evidence_purged_at` and the job's `evidence.purge` audit entry naming the file); a row the manifest
  does not list fails;
- the columns shown, confirmed, exported and fined (plate, time, rule, legal reference, camera, device,
  vehicle, signal, speed, place...) against the signed values. The differences allowed are the
  reviewer's plate correction (`plate_corrected`, then `plate_key`) and vehicle-class correction
  (`vehicle_class_corrected`, then `vehicle_class`), and only the ones the latest audited decision
  recorded.
Each failure is reported by name (`EvidenceCheck.problems`). The check is audited like a view.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit
from api.errors import StorageError
from api.models import AuditEntry, Camera, Device, District, EvidenceFile, User, Violation
from api.services.violations import check_manifest, file_row_problem, signed_entries, visible_violation
from api.storage import ContentMismatchError, EvidenceStore
from api.web.schemas import EvidenceCheck, EvidenceExtras, FileCheck

log = logging.getLogger(__name__)

#: Audit actions that set or clear a reviewer's plate correction (`api.services.review`).
_DECISIONS = ("violation.confirm", "violation.reject", "violation.reopen")
_DELETED = "deleted (retention)"


@dataclass(frozen=True, slots=True)
class AuditedRecord:
    """What the audit log says about a violation that its recorded details may differ by.

    Attributes:
        purged_files: files the retention job recorded deleting.
        plate_correction: the plate correction of the latest decision (None when there is none, or
            the violation was reopened since).
        class_correction: the same for the vehicle class.
    """

    purged_files: frozenset[str] = frozenset()
    plate_correction: str | None = None
    class_correction: str | None = None


def audited_record(session: Session, violation_id: int) -> AuditedRecord:
    """Read `AuditedRecord` of a violation from the audit log."""
    rows = session.execute(
        select(AuditEntry.action, AuditEntry.detail)
        .where(
            AuditEntry.object_type == "violation",
            AuditEntry.object_id == str(violation_id),
            AuditEntry.action.in_(("evidence.purge", *_DECISIONS)),
        )
        .order_by(AuditEntry.seq)
    ).all()
    purged: set[str] = set()
    correction: str | None = None
    class_correction: str | None = None
    for action, detail in rows:
        try:
            facts = json.loads(detail)
        except ValueError:
            continue
        if not isinstance(facts, dict):
            continue
        if action == "evidence.purge":
            names = facts.get("files")
            if isinstance(names, list):
                purged.update(n for n in names if isinstance(n, str))
        else:  # a reopening clears the correction; a decision sets its own (or none)
            value = facts.get("plate_corrected") if action != "violation.reopen" else None
            correction = value if isinstance(value, str) else None
            value = facts.get("vehicle_class_corrected") if action != "violation.reopen" else None
            class_correction = value if isinstance(value, str) else None
    return AuditedRecord(frozenset(purged), correction, class_correction)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | str | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)


def _section(manifest: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = manifest.get(key)
    return value if isinstance(value, Mapping) else {}


def signed_columns(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The violation's columns as the ingest derives them from a (verified) manifest
    (`api.services.ingest`), except `plate_key`, which a reviewer's correction replaces."""
    plate = _section(manifest, "plate")
    signal = _section(manifest, "signal")
    details = _section(manifest, "details")
    location = _section(manifest, "location")
    box = manifest.get("box_xyxy")
    return {
        "event_id": manifest.get("event_id"),
        "rule": manifest.get("rule"),
        "legal_reference": manifest.get("legal_reference"),
        "camera_id": manifest.get("camera_id"),
        "device_id": manifest.get("device_id"),
        "occurred_at": _time(manifest.get("occurred_at")),
        "track_id": manifest.get("track_id"),
        "frame_index": manifest.get("frame_index"),
        "vehicle_class": manifest.get("vehicle_class"),
        "box_xyxy": [_number(x) for x in box] if isinstance(box, list) else box,
        "details": dict(details),
        "lat": _number(location.get("lat")),
        "lon": _number(location.get("lon")),
        "scene_version": manifest.get("scene_version"),
        "plate_text": plate.get("raw"),
        "plate_compact": plate.get("text"),
        "plate_formatted": plate.get("formatted"),
        "plate_confidence": _number(plate.get("confidence")),
        "plate_valid": plate.get("valid") if plate else None,
        "plate_lines": plate.get("lines"),
        "plate_colour": plate.get("colour"),
        "plate_alternatives": plate.get("alternatives") if plate else None,
        "speed_kmh": _number(details.get("speed_kmh")),
        "speed_limit_kmh": _number(details.get("limit_kmh")),
        "signal_state": signal.get("state"),
        "red_for_s": _number(signal.get("red_for_s")),
    }


def _shown(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def column_problems(v: Violation, record: AuditedRecord) -> list[str]:
    """Each column of `v` recorded otherwise than its manifest says (call it on a verified manifest),
    as ``column: <recorded> recorded, the device signed <signed>``."""
    manifest = v.manifest if isinstance(v.manifest, Mapping) else {}
    signed_class = manifest.get("vehicle_class")
    reclassed = v.vehicle_class_corrected
    problems = [
        f"{column}: {_shown(getattr(v, column))} recorded, the device signed {_shown(signed)}"
        for column, signed in signed_columns(manifest).items()
        if getattr(v, column) != signed and not (column == "vehicle_class" and reclassed is not None)
    ]
    if reclassed is not None and (v.status == "new" or reclassed != record.class_correction):
        problems.append(
            f"vehicle_class_corrected: {_shown(reclassed)} recorded, the audited decision corrected "
            f"{_shown(record.class_correction)}, the device signed {_shown(signed_class)}"
        )
    if reclassed is not None and v.vehicle_class != reclassed:
        problems.append(
            f"vehicle_class: {_shown(v.vehicle_class)} recorded, the device signed {_shown(signed_class)}, "
            f"the reviewer corrected {_shown(reclassed)}"
        )
    read = _section(manifest, "plate").get("text")
    corrected = v.plate_corrected
    if corrected is not None and (v.status == "new" or corrected != record.plate_correction):
        problems.append(
            f"plate_corrected: {_shown(corrected)} recorded, the audited decision corrected "
            f"{_shown(record.plate_correction)}, the device signed {_shown(read)}"
        )
    if v.plate_key != (read if corrected is None else corrected):
        reviewed = "" if corrected is None else f", the reviewer corrected {_shown(corrected)}"
        problems.append(
            f"plate_key: {_shown(v.plate_key)} recorded, the device signed {_shown(read)}{reviewed}"
        )
    return problems


def _file_problem(
    v: Violation,
    f: EvidenceFile | None,
    entry: Mapping[str, Any],
    store: EvidenceStore,
    purged: Collection[str],
) -> str | None:
    """What is wrong with the signed file `entry` as stored (row `f`), `_DELETED`, or None."""
    deleted_by_retention = v.evidence_purged_at is not None and str(entry.get("name")) in purged
    if f is None:
        return _DELETED if deleted_by_retention else "no file row (removed from the database)"
    problem = file_row_problem(f, entry)
    if problem is not None:
        return f"its record is {problem}"
    if f.deleted_at is not None:
        return (
            _DELETED if deleted_by_retention else "marked deleted, but no retention purge of it is recorded"
        )
    try:
        store.get(f.storage_uri)
    except ContentMismatchError:
        return "content changed"
    except StorageError as e:
        log.error("violation %d: cannot read %s for the check: %s", v.id, f.name, e)
        return "cannot be read"
    return None


def file_checks(v: Violation, store: EvidenceStore, purged: Collection[str]) -> list[FileCheck]:
    """Every file the stored manifest lists (in its order), then every row it does not list. Reads
    every file that is not deleted from the store. `purged`: the files the retention job recorded
    deleting (`AuditedRecord.purged_files`)."""
    rows = {f.name: f for f in v.files}
    signed = signed_entries(v)
    out: list[FileCheck] = []
    for name, entry in signed.items():
        f = rows.get(name)
        problem = _file_problem(v, f, entry, store, purged)
        ok = None if problem == _DELETED else problem is None
        kind = f.kind if f is not None else str(entry.get("kind"))
        out.append(FileCheck(name=name, kind=kind, ok=ok, problem=problem))
    out += [
        FileCheck(name=f.name, kind=f.kind, ok=False, problem="not in the signed manifest")
        for f in v.files
        if f.name not in signed
    ]
    return out


def check_violation(
    v: Violation, device: Device | None, store: EvidenceStore, record: AuditedRecord | None = None
) -> EvidenceCheck:
    """Verify a stored violation against its signed manifest: the manifest and signature, every file
    (reads every file from the store) and the recorded columns (see the module docstring). `record`:
    what the audit log allows to differ (`audited_record`; None: nothing).

    Never raises: failures are reported in the result.
    """
    record = record or AuditedRecord()
    manifest = check_manifest(v, device)
    problems = [manifest.problem] if manifest.problem else []
    files = file_checks(v, store, record.purged_files)
    problems += [f"{f.name}: {f.problem}" for f in files if f.ok is False]
    if manifest.manifest_ok:  # against an altered manifest the comparison would prove nothing
        problems += column_problems(v, record)
    return EvidenceCheck(
        device_id=v.device_id,
        manifest_ok=manifest.manifest_ok,
        signature_ok=manifest.signature_ok,
        files=files,
        ok=manifest.ok and not problems,
        problem=problems[0] if problems else None,
        problems=problems,
    )


def _alternatives(raw: Any) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in raw or []:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], int | float):
            out.append((str(item[0]), float(item[1])))
    return out


def confirm_problems(session: Session, store: EvidenceStore, user: User, violation_id: int) -> list[str]:
    """What the integrity check finds wrong with a violation about to be confirmed (empty: its evidence
    is as the device signed it, or there is nothing to check here: not visible, decided, purged; the
    decision itself answers those). A fine must not rest on evidence that is not what was signed."""
    v = visible_violation(session, user, violation_id)
    if v is None or v.status != "new" or v.evidence_purged_at is not None:
        return []
    device = session.get(Device, v.device_id)
    record = audited_record(session, v.id)
    session.commit()  # not holding a transaction (SQLite: the write lock) while the store reads
    problems = check_violation(v, device, store, record).problems
    if problems:
        log.error("violation %d: not confirmed, evidence check failed: %s", v.id, "; ".join(problems))
    return problems


def evidence_extras(
    session: Session, store: EvidenceStore, user: User, violation_id: int, ip: str
) -> EvidenceExtras | None:
    """The viewer's extras for a violation `user` may see (audited), else None (the caller's 404)."""
    v = visible_violation(session, user, violation_id)
    if v is None:
        return None
    device = session.get(Device, v.device_id)
    camera = session.get(Camera, v.camera_id)
    district = session.get(District, v.district_id) if v.district_id else None
    record = audited_record(session, v.id)
    session.commit()  # not holding a transaction (SQLite: the write lock) while the store reads
    check = check_violation(v, device, store, record)
    if not check.ok:
        log.error("violation %d: evidence check failed: %s", v.id, "; ".join(check.problems))
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="evidence.check",
        object_type="violation",
        object_id=v.id,
        detail={"ok": check.ok, "problem": check.problem, "problems": check.problems},
        ip=ip,
    )
    session.commit()
    return EvidenceExtras(
        violation_id=v.id,
        camera_name=camera.name if camera is not None else None,
        district_name=district.name if district is not None else None,
        plate_alternatives=_alternatives(v.plate_alternatives),
        box_xyxy=list(v.box_xyxy),
        check=check,
    )
