"""What the evidence viewer needs beyond `GET /api/v1/violations/{id}`: the integrity check done again
now (manifest hash, the device's Ed25519 signature, every stored file's bytes against its signed hash),
the plate's alternative readings, the vehicle box, and the camera's and district's names.

The ingest verified all of this once; checking again when a reviewer opens the evidence shows that
nothing changed since (a database edit, a swapped blob in the store). The check is audited like a view.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy.orm import Session

from api import audit
from api.errors import StorageError
from api.models import Camera, Device, District, User, Violation
from api.services.violations import visible_violation
from api.storage import EvidenceStore
from api.web.schemas import EvidenceCheck, EvidenceExtras, FileCheck
from violations.manifest import EvidenceError, canonical_bytes, load_public_key, verify_signature

log = logging.getLogger(__name__)


def check_violation(v: Violation, device: Device | None, store: EvidenceStore) -> EvidenceCheck:
    """Verify a stored violation's manifest, signature and files (reads every file from the store).

    Never raises for a failed check: failures are reported in the result.
    """
    problem: str | None = None
    try:
        manifest_bytes = canonical_bytes(v.manifest)
        manifest_ok = hashlib.sha256(manifest_bytes).hexdigest() == v.manifest_sha256
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
    signed: dict[str, Any] = {f["name"]: f for f in v.manifest.get("files", []) if isinstance(f, dict)}
    files: list[FileCheck] = []
    for f in v.files:
        entry = signed.get(f.name)
        if entry is None or entry.get("sha256") != f.sha256:
            files.append(FileCheck(name=f.name, kind=f.kind, ok=False, problem="not in the signed manifest"))
            continue
        if f.deleted_at is not None:
            files.append(FileCheck(name=f.name, kind=f.kind, ok=None, problem="deleted (retention)"))
            continue
        try:
            actual = hashlib.sha256(store.get(f.storage_uri)).hexdigest()
        except StorageError as e:
            log.error("violation %d: cannot read %s for the check: %s", v.id, f.name, e)
            files.append(FileCheck(name=f.name, kind=f.kind, ok=False, problem="cannot be read"))
            continue
        ok = actual == f.sha256
        files.append(FileCheck(name=f.name, kind=f.kind, ok=ok, problem=None if ok else "content changed"))
    bad_file = next((f for f in files if f.ok is False), None)
    if bad_file is not None and problem is None:
        problem = f"{bad_file.name}: {bad_file.problem}"
    return EvidenceCheck(
        device_id=v.device_id,
        manifest_ok=manifest_ok,
        signature_ok=signature_ok,
        files=files,
        ok=manifest_ok and signature_ok and bad_file is None,
        problem=problem,
    )


def _alternatives(raw: Any) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in raw or []:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], int | float):
            out.append((str(item[0]), float(item[1])))
    return out


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
    session.commit()  # not holding a transaction (SQLite: the write lock) while the store reads
    check = check_violation(v, device, store)
    if not check.ok:
        log.warning("violation %d: evidence check failed: %s", v.id, check.problem)
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="evidence.check",
        object_type="violation",
        object_id=v.id,
        detail={"ok": check.ok, "problem": check.problem},
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
