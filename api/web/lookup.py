"""The public lookup: plate + notice code → that one violation's time, place, type, stills and status.

A notice (`api.models.Notice`) stores only `lookup_code_hash`, the SHA-256 (hex) of the code printed in
the SMS after `normalise_code` (upper case, no spaces or dashes). A lookup finds the notice by that hash
and answers only when the plate also matches: a wrong code and a wrong plate give the same "not found",
so the page tells nothing about other vehicles. Nothing about the owner is read.

The plate matches when it is the violation's plate, or a plate the notice's code was given out with
(`api.models.NoticePlate`: the SMS or paper notice named it, and the plate was corrected on review
since). Such a plate, given to the notice's current owner, shows the violation with its corrected plate
and the plate it was corrected from (another vehicle of the same owner); given to someone else, the
notice is no longer theirs: the answer is that it was withdrawn (`NoticeWithdrawnError`, 410), with
nothing of the violation.

Notices are made when a violation is confirmed (`api.notices.service.on_confirmed`); the answer
carries the notice's state (never who the owner is), and the legal basis the notice states
(`api.notices.catalogue.legal_basis`), not the citation the device wrote.
Each answered lookup is written to the audit log (actor `public`, with the client IP).

The stills are read through `api.services.violations.verified_bytes`: a still that is not the one the
device signed (replaced in the store, its record edited) is left out, logged and audited
(`evidence.mismatch`), never shown to the owner as evidence.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit
from api.errors import RefusedError, StorageError
from api.models import Camera, Device, District, Notice, NoticePlate, Violation
from api.notices.catalogue import legal_basis
from api.notices.plate import formatted_plate, shown_plate
from api.plate_query import normalise_plate
from api.services.violations import EvidenceIntegrityError, record_mismatch, verified_bytes
from api.storage import EvidenceStore
from api.web.schemas import LookupResult, LookupStill

log = logging.getLogger(__name__)

STILL_KINDS = ("still_before", "still_at", "still_after")
CODE_PATTERN = r"^[A-Za-z0-9 -]{4,64}$"
PLATE_PATTERN = r"^[A-Za-z0-9ĐđÐ .·:_-]{4,32}$"
_CODE_DROP = re.compile(r"[\s-]+")


def normalise_code(code: str) -> str:
    """The code as hashed: upper case without spaces or dashes (`ab12-cd34` → `AB12CD34`)."""
    return _CODE_DROP.sub("", code).upper()


def lookup_code_hash(code: str) -> str:
    """SHA-256 (hex) of the normalised code: what `Notice.lookup_code_hash` holds."""
    return hashlib.sha256(normalise_code(code).encode("utf-8")).hexdigest()


WITHDRAWN = "the notice for this plate was withdrawn: the plate of the violation was corrected on review"


class NoticeWithdrawnError(RefusedError):
    """The plate and code are those of a notice given out for another vehicle, before its plate was
    corrected on review: the violation is not this vehicle's owner's any more (410)."""

    def __init__(self) -> None:
        super().__init__(410, WITHDRAWN)


@dataclass(frozen=True, slots=True)
class LookupMatch:
    """What a plate and code found: the violation and its notice; `corrected_from` is the typed plate
    (formatted) when it is one the notice was given out with and the violation's plate was corrected
    since; `withdrawn` when that notice went to someone other than its current owner."""

    violation: Violation
    notice: Notice
    corrected_from: str | None = None
    withdrawn: bool = False


def find_violation(session: Session, plate: str, code: str) -> LookupMatch | None:
    """The violation of the notice with this code when `plate` (any case, separators allowed) is its
    plate or one the notice was given out with (see the module docstring); None otherwise."""
    notice = session.scalars(
        select(Notice).where(Notice.lookup_code_hash == lookup_code_hash(code))
    ).one_or_none()
    if notice is None:
        return None
    v = session.get(Violation, notice.violation_id)
    if v is None:
        return None
    wanted = normalise_plate(plate)
    if v.plate_key is not None and wanted == v.plate_key.upper():
        return LookupMatch(v, notice)
    given_to = set(
        session.scalars(
            select(NoticePlate.owner_id).where(
                NoticePlate.notice_id == notice.id, NoticePlate.plate_key == wanted
            )
        )
    )
    if not given_to:
        return None
    if notice.owner_id is not None and notice.owner_id in given_to:
        return LookupMatch(v, notice, corrected_from=formatted_plate(wanted))
    return LookupMatch(v, notice, withdrawn=True)


def lookup(session: Session, store: EvidenceStore, plate: str, code: str, ip: str) -> LookupResult | None:
    """The public view of the violation matching `plate` and `code` (audited), or None.

    Stills that cannot be read from the store are left out (logged), rather than failing the page;
    so are stills that are not what the device signed (logged and audited as `evidence.mismatch`).

    Raises:
        NoticeWithdrawnError: the plate and code are those of a notice that is no longer for this plate
            (audited as `lookup.withdrawn`).
    """
    match = find_violation(session, plate, code)
    if match is None:
        session.commit()
        return None
    v = match.violation
    if match.withdrawn:
        audit.record(
            session, actor="public", action="lookup.withdrawn", object_type="violation", object_id=v.id, ip=ip
        )
        session.commit()
        raise NoticeWithdrawnError
    notice_status = match.notice.status
    camera = session.get(Camera, v.camera_id)
    district = session.get(District, v.district_id) if v.district_id else None
    device = session.get(Device, v.device_id)
    files = [f for f in v.files if f.kind in STILL_KINDS and f.deleted_at is None]
    files.sort(key=lambda f: STILL_KINDS.index(f.kind))
    result = LookupResult(
        plate=shown_plate(v),
        occurred_at=v.occurred_at,
        place=camera.name if camera is not None else v.camera_id,
        district=district.name if district is not None else None,
        rule=v.rule,
        legal_reference=legal_basis(v).citation,
        status=v.status,
        notice_status=notice_status,
        corrected_from=match.corrected_from,
        stills=[],
    )
    session.commit()  # no transaction (SQLite: the write lock) held while the store reads
    for f in files:
        try:
            data = verified_bytes(store, v, device, f)
        except EvidenceIntegrityError as e:
            record_mismatch(session, e, actor="public", ip=ip)
            continue
        except StorageError as e:
            log.error("lookup of violation %d: cannot read %s: %s", v.id, f.name, e)
            continue
        data_url = f"data:{f.media_type};base64,{base64.b64encode(data).decode('ascii')}"
        result.stills.append(LookupStill(kind=f.kind, media_type=f.media_type, data_url=data_url))
    audit.record(
        session,
        actor="public",
        action="lookup.view",
        object_type="violation",
        object_id=v.id,
        detail={"stills": len(result.stills), "corrected_from": match.corrected_from},
        ip=ip,
    )
    session.commit()
    return result
