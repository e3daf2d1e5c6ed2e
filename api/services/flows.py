"""Flow-count ingest: idempotent on (camera, lane, direction, class, interval).

A repeated count is a no-op; a count that differs from the stored one for the same key is reported as
a conflict and the stored value is kept (first write wins: nothing is silently overwritten).

The intervals of one camera, lane, direction and class never overlap: an interval that overlaps a
stored one without being the same interval ([10:00, 10:15) after [10:00, 10:05)) would count the same
vehicles twice in every sum, so its batch is refused whole (409, nothing stored), and a batch whose own
intervals overlap is refused as malformed (422). The edge never sends such (`phatnguoi.flows`: one
interval length per camera, aligned to the hour, and an interval is never emitted again after a
restart). Adjacent intervals ([10:00, 10:05) then [10:05, 10:10)) do not overlap. The batches of one
camera are serialised (SQLite: one writer at a time; PostgreSQL: a transaction-scoped advisory lock per
camera), so two racing batches cannot both pass the check.

An interval that starts more than ``ingest_future_skew_s`` after the server's time holds no vehicle
seen yet: its device's clock runs ahead, and its batch is refused whole (422, "check the device
clock"), as such violations are; stored, it would clash with the real counts of that interval once
they come. The check is on the start: the edge flushes the interval under way, partial, when it stops,
and that one ends up to an interval length (an hour) ahead.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, tuple_
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
# First key of the two-key PostgreSQL advisory lock that serialises one camera's batches ("flow"); the
# two-key space is apart from the one-key lock of the audit chain.
_PG_LOCK_CLASS = 0x666C6F77


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _lock_camera(session: Session, camera_id: str) -> None:
    """Serialise this camera's flow batches until the transaction ends (PostgreSQL; SQLite's writing
    transactions are serial already, `api.db`)."""
    if is_postgresql(session):
        key = int.from_bytes(hashlib.sha256(camera_id.encode()).digest()[:4], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _PG_LOCK_CLASS, "b": key})


def _describe(k: FlowKey) -> str:
    return f"{k[0]}/{k[1]}/{k[2]} [{k[3].isoformat()}, {k[4].isoformat()})"


def _span(k: FlowKey) -> tuple[datetime, datetime]:
    return k[3], k[4]


def _overlap_in_batch(posted: Iterable[FlowKey]) -> tuple[FlowKey, FlowKey] | None:
    """Two posted intervals of one lane, direction and class that overlap: (the later, the earlier)."""
    groups: dict[tuple[str, str, str], list[FlowKey]] = defaultdict(list)
    for k in posted:
        groups[k[:3]].append(k)
    for keys in groups.values():
        latest: FlowKey | None = None  # of the intervals seen, the one that ends last
        for k in sorted(keys, key=_span):
            if latest is not None and k[3] < latest[4]:
                return k, latest
            if latest is None or k[4] > latest[4]:
                latest = k
    return None


def _overlap_with_stored(posted: Iterable[FlowKey], stored: set[FlowKey]) -> tuple[FlowKey, FlowKey] | None:
    """A posted interval that overlaps a stored one of its lane, direction and class without being the
    same interval: (posted, stored). Stored intervals that overlap each other are not looked at.

    One sweep per group in start order: an interval overlaps one that started no later exactly when it
    starts before that one ends, so each kind (posted, stored) keeps the latest end seen.
    """
    groups: dict[tuple[str, str, str], list[tuple[FlowKey, bool]]] = defaultdict(list)
    for k in posted:
        if k not in stored:  # a repeat of a stored interval is a duplicate or a conflict
            groups[k[:3]].append((k, False))
    for k in stored:
        if k[:3] in groups:
            groups[k[:3]].append((k, True))
    for items in groups.values():
        latest: dict[bool, FlowKey] = {}  # is stored → the interval of that kind that ends last
        for k, is_stored in sorted(items, key=lambda item: _span(item[0])):
            other = latest.get(not is_stored)
            if other is not None and k[3] < other[4]:
                return (other, k) if is_stored else (k, other)
            mine = latest.get(is_stored)
            if mine is None or k[4] > mine[4]:
                latest[is_stored] = k
    return None


def _stored(session: Session, camera_id: str, posted: dict[FlowKey, int]) -> dict[FlowKey, int]:
    """The stored counts of the posted lanes, directions and classes whose intervals meet the batch's
    time span (every one a posted interval can overlap or repeat)."""
    rows = session.execute(
        select(
            FlowCount.lane,
            FlowCount.direction,
            FlowCount.vehicle_class,
            FlowCount.interval_start,
            FlowCount.interval_end,
            FlowCount.count,
        ).where(
            FlowCount.camera_id == camera_id,
            tuple_(FlowCount.lane, FlowCount.direction, FlowCount.vehicle_class).in_({k[:3] for k in posted}),
            FlowCount.interval_start < max(k[4] for k in posted),
            FlowCount.interval_end > min(k[3] for k in posted),
        )
    ).all()
    return {(r[0], r[1], r[2], _utc(r[3]), _utc(r[4])): r[5] for r in rows}


def _check_future(posted: Iterable[FlowKey], now: datetime, future_skew_s: float) -> None:
    """Refuse the batch when one of its intervals starts more than `future_skew_s` after `now`."""
    latest = max(posted, key=lambda k: k[3])
    if latest[3] > now + timedelta(seconds=future_skew_s):
        raise RefusedError(
            422,
            f"counts: {_describe(latest)} starts in the future (server time {now.isoformat()}): "
            "check the device clock",
        )


def ingest_flows(
    session: Session, device: AuthenticatedDevice, batch: FlowBatchIn, *, future_skew_s: float
) -> FlowBatchResult:
    """Store a batch of flow counts in one transaction.

    Args:
        future_skew_s: intervals may start at most this long after the server's time
            (``Settings.ingest_future_skew_s``).

    Raises:
        RefusedError: 403 when the device may not post for the camera; 422 for repeated keys,
            overlapping intervals within the batch or an interval that starts in the future; 409 when
            an interval overlaps a stored one that is not the same interval (nothing of the batch is
            stored).
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
    clash = _overlap_in_batch(posted)
    if clash is not None:
        later, earlier = clash
        overlap = f"[{earlier[3].isoformat()}, {earlier[4].isoformat()})"
        raise RefusedError(422, f"counts: {_describe(later)} overlaps {overlap} in the same batch")
    now = utcnow()
    _check_future(posted, now, future_skew_s)
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
        _lock_camera(session, batch.camera_id)
        stored = _stored(session, batch.camera_id, posted)
        clash = _overlap_with_stored(posted, set(stored))
        if clash is not None:
            mine, theirs = clash
            stored_interval = f"[{theirs[3].isoformat()}, {theirs[4].isoformat()})"
            raise RefusedError(
                409, f"counts: {_describe(mine)} overlaps the stored interval {stored_interval}"
            )
        inserted = {(r[0], r[1], r[2], _utc(r[3]), _utc(r[4])) for r in session.execute(stmt, rows)}
        rest = [k for k in posted if k not in inserted]
        conflicts = [
            FlowConflict(
                lane=k[0],
                direction=k[1],
                vehicle_class=k[2],
                interval_start=k[3],
                interval_end=k[4],
                stored_count=stored.get(k, -1),
                posted_count=posted[k],
            )
            for k in rest
            if stored.get(k) != posted[k]
        ]
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
