"""Statistics: violation counts by rule / camera / district / hour of day / day, and flow counts.

Hours and days are local time at a fixed UTC offset (Vietnam: +07:00 all year, no daylight saving), so
"hour 17" means 17:00-17:59 in Hanoi whatever the server's time zone. `hour` groups by hour of the day
(0-23, summed over the period: when do violations happen); `day` by calendar day (YYYY-MM-DD).

`day` groups hold every day of the period, those without a violation with zeros: a day a camera was
down must show as a gap in the trend, not vanish from it. The period is [from, to); without `from` it
starts on the day of the first violation, without `to` it ends today (or on the day of the last
violation, if that is later). At most the last `MAX_DAYS` days are counted (a ten-year period would
be thousands of points): then the answer's `from` is the start of the first day counted.

Officers get their own district only; supervisors and admins any district, or all. Counts carry no
personal data, so they are not audited.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, String, case, func, literal_column, select
from sqlalchemy.orm import Session

from api.db import is_postgresql
from api.errors import RefusedError
from api.models import Camera, FlowCount, User, Violation
from api.schemas import FlowStatsGroup, FlowStatsPublic, ViolationStatsGroup, ViolationStatsPublic
from api.services.review import scope_district

log = logging.getLogger(__name__)

ViolationGroup = Literal["rule", "camera", "district", "hour", "day"]
FlowGroup = Literal["class", "camera", "hour"]
VN_UTC_OFFSET_MINUTES = 7 * 60
#: Most days that `day` groups cover: a leap year.
MAX_DAYS = 366


def local_bucket(
    column_sql: str, unit: Literal["hour", "day"], utc_offset_minutes: int, postgresql: bool
) -> ColumnElement[str]:
    """SQL for the local hour of day ("00".."23") or day ("YYYY-MM-DD") of a UTC timestamp column.

    Rendered as literal SQL (no bound parameters) so that the same expression can appear in SELECT and
    GROUP BY on PostgreSQL. `utc_offset_minutes` must be an int (it is formatted into the SQL).
    """
    offset = int(utc_offset_minutes)
    if postgresql:
        fmt = "HH24" if unit == "hour" else "YYYY-MM-DD"
        sql = f"to_char(timezone('UTC', {column_sql}) + interval '{offset} minutes', '{fmt}')"
    else:
        fmt = "%H" if unit == "hour" else "%Y-%m-%d"
        sql = f"strftime('{fmt}', {column_sql}, '{offset:+d} minutes')"
    return literal_column(sql, String)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def check_range(start: datetime | None, end: datetime | None) -> None:
    """Refuse a period that ends before it starts (an empty one, [t, t), is fine: nothing is in it).

    Raises:
        RefusedError: 422 when `start` is later than `end`.
    """
    if start is not None and end is not None and start > end:
        raise RefusedError(422, "from is later than to")


def _local_day(t: datetime, offset: timedelta) -> date:
    return (t.astimezone(UTC) + offset).date()


def _day_span(
    session: Session,
    conds: list[ColumnElement[bool]],
    occurred_from: datetime | None,
    occurred_to: datetime | None,
    offset: timedelta,
    now: datetime,
) -> tuple[date, date] | None:
    """The first and last local day of the period, or None when it has none (an empty range; no `from`
    and no violation). `conds`: the query's conditions other than `from`."""
    first = _local_day(occurred_from, offset) if occurred_from is not None else None
    last = _local_day(occurred_to - timedelta(microseconds=1), offset) if occurred_to is not None else None
    if first is None or last is None:
        earliest, latest = session.execute(
            select(func.min(Violation.occurred_at), func.max(Violation.occurred_at)).where(*conds)
        ).one()
        if first is None:
            if earliest is None:
                return None
            first = _local_day(earliest, offset)
        if last is None:
            last = _local_day(now, offset)
            if latest is not None:
                last = max(last, _local_day(latest, offset))
    if first > last:
        return None
    return first, last


def violation_stats(
    session: Session,
    user: User,
    group_by: ViolationGroup,
    *,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    district_id: str | None = None,
    utc_offset_minutes: int = VN_UTC_OFFSET_MINUTES,
    now: datetime | None = None,
) -> ViolationStatsPublic:
    """Counts of violations per group, by status, with the confirmation and plate read rates.

    `now` decides which day is today (the end of `day` groups without `to`; default: the clock).

    Raises:
        RefusedError: 403 when an officer asks for another district; 422 when `from` is after `to`.
    """
    check_range(occurred_from, occurred_to)
    district = scope_district(user, district_id)
    postgresql = is_postgresql(session)
    key: Any
    if group_by == "rule":
        key = Violation.rule
    elif group_by == "camera":
        key = Violation.camera_id
    elif group_by == "district":
        key = Violation.district_id
    else:
        key = local_bucket("violations.occurred_at", group_by, utc_offset_minutes, postgresql)
    conds: list[ColumnElement[bool]] = []
    if district is not None:
        conds.append(Violation.district_id == district)
    if occurred_to is not None:
        conds.append(Violation.occurred_at < occurred_to)
    days: list[str] = []
    if group_by == "day":
        offset = timedelta(minutes=int(utc_offset_minutes))
        span = _day_span(session, conds, occurred_from, occurred_to, offset, now or datetime.now(UTC))
        if span is not None:
            first, last = span
            if (last - first).days >= MAX_DAYS:  # the older days are cut off; the answer's `from` says so
                first = last - timedelta(days=MAX_DAYS - 1)
                occurred_from = datetime.combine(first, time(), tzinfo=timezone(offset))
            days = [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    if occurred_from is not None:
        conds.append(Violation.occurred_at >= occurred_from)

    def n_status(status: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((Violation.status == status, 1), else_=0)), 0).cast(Integer)

    rows = session.execute(
        select(
            key.label("key"),
            func.count().label("total"),
            n_status("new").label("new"),
            n_status("confirmed").label("confirmed"),
            n_status("rejected").label("rejected"),
            func.count(Violation.plate_compact).label("plate_read"),
        )
        .where(*conds)
        .group_by(key)
    ).all()
    session.commit()
    groups = [
        ViolationStatsGroup(
            key=r.key,
            total=r.total,
            new=r.new,
            confirmed=r.confirmed,
            rejected=r.rejected,
            plate_read=r.plate_read,
        )
        for r in rows
    ]
    present = {g.key for g in groups}
    groups += [
        ViolationStatsGroup(key=day, total=0, new=0, confirmed=0, rejected=0, plate_read=0)
        for day in days
        if day not in present
    ]
    groups.sort(key=_order(group_by))
    total = sum(g.total for g in groups)
    confirmed = sum(g.confirmed for g in groups)
    rejected = sum(g.rejected for g in groups)
    return ViolationStatsPublic(
        group_by=group_by,
        from_=occurred_from,
        to=occurred_to,
        utc_offset_minutes=utc_offset_minutes,
        total=total,
        new=sum(g.new for g in groups),
        confirmed=confirmed,
        rejected=rejected,
        confirmation_rate=_rate(confirmed, confirmed + rejected),
        plate_read_rate=_rate(sum(g.plate_read for g in groups), total),
        groups=groups,
    )


def _order(group_by: str) -> Any:
    """Time groups in time order; the others largest first (then by key, for a stable order)."""
    if group_by in ("hour", "day"):
        return lambda g: g.key or ""
    return lambda g: (-g.total if hasattr(g, "total") else -g.count, g.key or "")


def flow_stats(
    session: Session,
    user: User,
    group_by: FlowGroup,
    *,
    interval_from: datetime | None = None,
    interval_to: datetime | None = None,
    district_id: str | None = None,
    utc_offset_minutes: int = VN_UTC_OFFSET_MINUTES,
) -> FlowStatsPublic:
    """Vehicles counted per class, camera or hour of day, over intervals starting in [from, to).

    Raises:
        RefusedError: 403 when an officer asks for another district; 422 when `from` is after `to`.
    """
    check_range(interval_from, interval_to)
    district = scope_district(user, district_id)
    key: Any
    if group_by == "class":
        key = FlowCount.vehicle_class
    elif group_by == "camera":
        key = FlowCount.camera_id
    else:
        key = local_bucket("flow_counts.interval_start", "hour", utc_offset_minutes, is_postgresql(session))
    stmt = select(key.label("key"), func.coalesce(func.sum(FlowCount.count), 0).label("count"))
    conds: list[ColumnElement[bool]] = []
    if district is not None:
        stmt = stmt.join(Camera, Camera.id == FlowCount.camera_id)
        conds.append(Camera.district_id == district)
    if interval_from is not None:
        conds.append(FlowCount.interval_start >= interval_from)
    if interval_to is not None:
        conds.append(FlowCount.interval_start < interval_to)
    rows: Sequence[Any] = session.execute(stmt.where(*conds).group_by(key)).all()
    session.commit()
    groups = sorted((FlowStatsGroup(key=str(r.key), count=int(r.count)) for r in rows), key=_order(group_by))
    return FlowStatsPublic(
        group_by=group_by,
        from_=interval_from,
        to=interval_to,
        utc_offset_minutes=utc_offset_minutes,
        total=sum(g.count for g in groups),
        groups=groups,
    )
