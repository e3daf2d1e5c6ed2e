"""CSV export of confirmed violations for the penalty system (streamed, keyset batches).

One row per confirmed violation that happened in [from, to), oldest first. The plate is the one
searched and fined: the reviewer's correction when there is one. `legal_reference` is the catalogue's
citation in force at the violation's time (`api.notices.catalogue.legal_basis`, as on the owner's
notice and in the penalty webhook), not necessarily the one the device wrote into its evidence. The
export lists plates, so it is audited (who, which period, how many rows) before the first byte is sent.

Cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) are
prefixed with `'` (OWASP's CSV-injection advice); numbers are written as numbers.

Made for Excel as much as for programs:
- UTF-8 with a byte order mark first: without it Excel opens the file as the Windows code page and the
  Vietnamese legal references come out garbled. Programs decode it as `utf-8-sig` (Python), or skip
  the three bytes EF BB BF.
- `occurred_at` and `confirmed_at` are Vietnam time (`2026-11-23T12:16:24.123+07:00`): officers read the
  clock time of the intersection, and each value is still ISO 8601 with its offset, so a program
  reads the same instant as from UTC. No column was added or moved (consumers reading by position
  keep working), and with one offset and milliseconds throughout, the text sorts as the time does.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.db import is_postgresql
from api.models import User, Violation
from api.notices.catalogue import VIETNAM_TZ, legal_basis
from api.pagination import Cursor
from api.services.review import keyset_after

log = logging.getLogger(__name__)

COLUMNS = (
    "violation_id",
    "event_id",
    "occurred_at",
    "rule",
    "legal_reference",
    "camera_id",
    "district_id",
    "lat",
    "lon",
    "plate",
    "plate_formatted",
    "plate_corrected",
    "vehicle_class",
    "speed_kmh",
    "speed_limit_kmh",
    "signal_state",
    "confirmed_at",
    "confirmed_by",
    "manifest_sha256",
)
BATCH_ROWS = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Written before the header: the UTF-8 byte order mark, which tells Excel the encoding.
BOM = "\ufeff"


def local_time(t: datetime | None) -> str | None:
    """`t` in Vietnam time, ISO 8601 with milliseconds and offset: `2026-11-23T12:16:24.123+07:00`."""
    return None if t is None else t.astimezone(VIETNAM_TZ).isoformat(timespec="milliseconds")


def safe_cell(value: Any) -> Any:
    """`value` unchanged unless it is text a spreadsheet would evaluate; then prefixed with `'`."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _conditions(
    occurred_from: datetime | None, occurred_to: datetime | None, district: str | None
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [Violation.status == "confirmed"]
    if occurred_from is not None:
        conds.append(Violation.occurred_at >= occurred_from)
    if occurred_to is not None:
        conds.append(Violation.occurred_at < occurred_to)
    if district is not None:
        conds.append(Violation.district_id == district)
    return conds


def start_export(
    session: Session,
    user: User,
    *,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
    district_id: str | None,
    ip: str | None,
) -> int:
    """Count the rows to export and record the export in the audit log (committed). Returns the count."""
    conds = _conditions(occurred_from, occurred_to, district_id)
    rows = session.scalar(select(func.count()).select_from(Violation).where(*conds))
    audit.record(
        session,
        actor=f"user:{user.username}",
        action="export.confirmed_csv",
        object_type="violation",
        detail={
            "from": occurred_from.isoformat() if occurred_from else None,
            "to": occurred_to.isoformat() if occurred_to else None,
            "district": district_id,
            "rows": int(rows or 0),
        },
        ip=ip,
    )
    session.commit()
    return int(rows or 0)


def _formatted(v: Any) -> str | None:
    if v.plate_corrected is None:
        return str(v.plate_formatted) if v.plate_formatted is not None else None
    from plates.grammar import parse_vn  # light: no OpenCV / ONNX Runtime behind it

    return parse_vn(v.plate_corrected).formatted


def csv_chunks(
    sessions: sessionmaker[Session],
    *,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
    district_id: str | None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[str]:
    """The CSV text (byte order mark and header first), one chunk per batch of rows, read with its own
    session.

    Each batch is one short query (`(occurred_at, id) > last` on the status/time index), so an export
    of a million rows holds no long transaction and no growing memory.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield BOM + buf.getvalue()
    conds = _conditions(occurred_from, occurred_to, district_id)
    after: Cursor | None = None
    reviewer = User.__table__.alias("reviewer")
    with sessions() as session:
        postgresql = is_postgresql(session)
    while True:
        page = list(conds)
        if after is not None:
            page.append(keyset_after(after, postgresql, newest_first=False))
        with sessions() as session:
            rows = session.execute(
                select(
                    Violation.id,
                    Violation.event_id,
                    Violation.occurred_at,
                    Violation.rule,
                    Violation.legal_reference,
                    Violation.camera_id,
                    Violation.district_id,
                    Violation.lat,
                    Violation.lon,
                    Violation.plate_key,
                    Violation.plate_formatted,
                    Violation.plate_corrected,
                    Violation.vehicle_class,
                    Violation.speed_kmh,
                    Violation.speed_limit_kmh,
                    Violation.signal_state,
                    Violation.reviewed_at,
                    reviewer.c.username,
                    Violation.manifest_sha256,
                    Violation.details,  # the speeding excess, for `legal_basis`
                )
                .outerjoin(reviewer, reviewer.c.id == Violation.reviewed_by)
                .where(*page)
                .order_by(Violation.occurred_at, Violation.id)
                .limit(batch_rows)
            ).all()
            session.commit()
        if not rows:
            return
        buf.seek(0)
        buf.truncate()
        for r in rows:
            writer.writerow(
                [
                    safe_cell(v)
                    for v in (
                        r.id,
                        r.event_id,
                        local_time(r.occurred_at),
                        r.rule,
                        legal_basis(r).citation,
                        r.camera_id,
                        r.district_id,
                        r.lat,
                        r.lon,
                        r.plate_key,
                        _formatted(r),
                        "yes" if r.plate_corrected is not None else "no",
                        r.vehicle_class,
                        r.speed_kmh,
                        r.speed_limit_kmh,
                        r.signal_state,
                        local_time(r.reviewed_at),
                        r.username,
                        r.manifest_sha256,
                    )
                ]
            )
        yield buf.getvalue()
        last = rows[-1]
        after = Cursor(last.occurred_at, last.id)
        if len(rows) < batch_rows:
            return
