"""Flow-count ingest: idempotent on (camera, lane, direction, class, interval).

A repeated count is a no-op; a count that differs from the stored one for the same key is reported as
a conflict and the stored value is kept (first write wins: nothing is silently overwritten).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.db import is_postgresql, utcnow
from api.errors import RefusedError
from api.models import Camera, Device, FlowCount
from api.schemas import FlowBatchIn, FlowBatchResult, FlowConflict
from api.services.auth import AuthenticatedDevice

log = logging.getLogger(__name__)

_KEY_COLUMNS = ("camera_id", "lane", "direction", "vehicle_class", "interval_start", "interval_end")
FlowKey = tuple[str, str, str, datetime, datetime]


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def ingest_flows(session: Session, device: AuthenticatedDevice, batch: FlowBatchIn) -> FlowBatchResult:
    """Store a batch of flow counts in one transaction.

    Raises:
        RefusedError: 403 when the device may not post for the camera, 422 for repeated keys.
    """
    if batch.camera_id not in device.camera_ids:
        raise RefusedError(403, f"device {device.id} may not post for camera {batch.camera_id!r}")
    posted: dict[FlowKey, int] = {}
    for c in batch.counts:
        key = (c.lane, c.direction, c.vehicle_class, _utc(c.interval_start), _utc(c.interval_end))
        if key in posted:
            raise RefusedError(
                422,
                f"counts: {c.lane}/{c.direction}/{c.vehicle_class}/{key[3].isoformat()} appears twice",
            )
        posted[key] = c.count
    now = utcnow()
    rows = [
        {
            "camera_id": batch.camera_id,
            "lane": k[0],
            "direction": k[1],
            "vehicle_class": k[2],
            "interval_start": k[3],
            "interval_end": k[4],
            "count": n,
            "device_id": device.id,
            "received_at": now,
        }
        for k, n in posted.items()
    ]
    insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    stmt = (
        insert(FlowCount)
        .on_conflict_do_nothing(index_elements=list(_KEY_COLUMNS))
        .returning(
            FlowCount.lane,
            FlowCount.direction,
            FlowCount.vehicle_class,
            FlowCount.interval_start,
            FlowCount.interval_end,
        )
    )
    try:
        inserted = {(r[0], r[1], r[2], _utc(r[3]), _utc(r[4])) for r in session.execute(stmt, rows)}
        rest = [k for k in posted if k not in inserted]
        conflicts: list[FlowConflict] = []
        if rest:
            stored = session.execute(
                select(
                    FlowCount.lane,
                    FlowCount.direction,
                    FlowCount.vehicle_class,
                    FlowCount.interval_start,
                    FlowCount.interval_end,
                    FlowCount.count,
                ).where(
                    FlowCount.camera_id == batch.camera_id,
                    tuple_(FlowCount.lane, FlowCount.direction, FlowCount.vehicle_class).in_(
                        {(k[0], k[1], k[2]) for k in rest}
                    ),
                    FlowCount.interval_start >= min(k[3] for k in rest),
                    FlowCount.interval_start <= max(k[3] for k in rest),
                )
            ).all()
            stored_counts = {(r[0], r[1], r[2], _utc(r[3]), _utc(r[4])): r[5] for r in stored}
            for k in rest:
                if stored_counts.get(k) != posted[k]:
                    conflicts.append(
                        FlowConflict(
                            lane=k[0],
                            direction=k[1],
                            vehicle_class=k[2],
                            interval_start=k[3],
                            interval_end=k[4],
                            stored_count=stored_counts.get(k, -1),
                            posted_count=posted[k],
                        )
                    )
        camera = session.get(Camera, batch.camera_id)
        if camera is not None:
            camera.last_seen = now
        dev = session.get(Device, device.id)
        if dev is not None:
            dev.last_seen = now
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if conflicts:
        log.warning(
            "camera %s: %d flow counts differ from stored ones (kept stored)", batch.camera_id, len(conflicts)
        )
    return FlowBatchResult(inserted=len(inserted), duplicates=len(rest) - len(conflicts), conflicts=conflicts)
