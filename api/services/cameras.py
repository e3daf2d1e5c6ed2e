"""A camera's district, and the violations that follow it.

A violation is stored with its camera's district: the review list, the search and the statistics of an
officer filter on that copy. A camera can be without a district for a while: `devices add` registers it
with none, and a manifest's district (the scene's `district`, an id like "ba-dinh" or a name like
"Ba Đình") is taken only if it names a registered district (a device cannot create one). Violations
stored meanwhile have no district, and no officer sees them.

So whenever a camera gets its district, its violations that have none are given it in the same
transaction, audited as `camera.district`:
- an admin sets it (`phatnguoi cameras set --district`);
- an upload's manifest names a registered district (`api.services.ingest`);
- the district its stored manifests named is registered later, or given the name they used
  (`districts add`, or `users add` creating it): what ingest would have done, had the district existed
  then.

Violations that already have a district keep it: moving a camera to another district does not move what
the first district's officers were given.
"""

from __future__ import annotations

import logging
import unicodedata

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import audit
from api.models import Camera, District, Violation

log = logging.getLogger(__name__)


def assign_district(session: Session, camera: Camera, district_id: str, *, actor: str, source: str) -> int:
    """Set `camera`'s district (which must exist) and give it to the camera's violations that have none.

    Flushed and audited in the session's transaction, not committed.

    Args:
        actor: who, as in `api.audit.record` ("system:cli", "device:<id>").
        source: why, for the audit entry: "admin" or "manifest".

    Returns:
        How many violations were given the district.
    """
    previous = camera.district_id
    camera.district_id = district_id
    result = session.execute(
        update(Violation)
        .where(Violation.camera_id == camera.id, Violation.district_id.is_(None))
        .values(district_id=district_id)
        .execution_options(synchronize_session=False)
    )
    filled = int(result.rowcount)  # type: ignore[attr-defined]
    audit.record(
        session,
        actor=actor,
        action="camera.district",
        object_type="camera",
        object_id=camera.id,
        detail={"district": district_id, "previous": previous, "source": source, "violations_filled": filled},
    )
    if filled:
        log.info("camera %s: district %s given to %d earlier violations", camera.id, district_id, filled)
    return filled


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


def names(district: District, named: str) -> bool:
    """Whether a manifest's `district` (`named`) names `district`: its id or its name, ignoring case."""
    return _key(named) in (_key(district.id), _key(district.name))


def district_named(session: Session, named: str) -> District | None:
    """The registered district a manifest's `district` names (see `names`); None when none does, or
    when several do (two districts with the same name)."""
    exact = session.get(District, named)
    if exact is not None:
        return exact
    found = [d for d in session.scalars(select(District)) if names(d, named)]
    return found[0] if len(found) == 1 else None


def claim_cameras(session: Session, district: District, *, actor: str) -> dict[str, int]:
    """Give `district` (just registered or renamed) to the cameras without a district whose violations
    without one have manifests that name it.

    Call it before recording anything else in the audit log in this transaction: on PostgreSQL an upload
    locks its camera, then the audit log; this locks the cameras first too, all at once, so the two
    cannot wait for each other.

    Returns:
        Camera id → violations given the district, for each camera that got it.
    """
    named = Violation.manifest["district"].as_string()
    rows = session.execute(
        select(Violation.camera_id, named)
        .join(Camera, Camera.id == Violation.camera_id)
        .where(Camera.district_id.is_(None), Violation.district_id.is_(None), named.is_not(None))
        .distinct()
    ).all()
    candidates = {camera_id for camera_id, name in rows if names(district, name)}
    if not candidates:
        return {}
    locked = session.scalars(
        select(Camera)
        .where(Camera.id.in_(candidates), Camera.district_id.is_(None))
        .order_by(Camera.id)
        .with_for_update()
    ).all()
    return {
        camera.id: assign_district(session, camera, district.id, actor=actor, source="manifest")
        for camera in locked
    }
