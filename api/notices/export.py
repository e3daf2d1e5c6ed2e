"""The notice columns of the confirmed-violations CSV export (`GET /api/v1/exports/confirmed.csv`).

`with_notice_columns` appends `notice_status` and `lookup_code` to every row of the export's CSV
stream (`api.services.exports.csv_chunks`): one query for the notices of each chunk's violations, so
the export stays streamed in batches. `notice_status` is the notice's current state (empty when the
violation has none yet); `lookup_code` is the code printed on it (empty when it cannot be shown, see
`api.notices.workflow.derived_lookup_code`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.models import Notice
from api.notices.workflow import lookup_code_of

NOTICE_COLUMNS = ("notice_status", "lookup_code")


def with_notice_columns(
    chunks: Iterable[str], sessions: sessionmaker[Session], code_key: bytes
) -> Iterator[str]:
    """The CSV chunks with the notice columns appended (the first chunk is the header row).

    Raises:
        ValueError: a row whose first cell is not a violation id.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    header = True
    for chunk in chunks:
        rows = list(csv.reader(io.StringIO(chunk, newline="")))
        buf.seek(0)
        buf.truncate()
        if header:
            for row in rows:
                writer.writerow([*row, *NOTICE_COLUMNS])
            header = False
            yield buf.getvalue()
            continue
        ids = [int(row[0]) for row in rows]
        with sessions() as session:
            notices = {
                n.violation_id: n for n in session.scalars(select(Notice).where(Notice.violation_id.in_(ids)))
            }
            session.commit()
        for row, vid in zip(rows, ids, strict=True):
            notice = notices.get(vid)
            if notice is None:
                writer.writerow([*row, "", ""])
            else:
                writer.writerow([*row, notice.status, lookup_code_of(code_key, notice) or ""])
        yield buf.getvalue()
