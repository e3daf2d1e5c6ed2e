"""The confirmed-violations CSV opens right in Excel: a UTF-8 byte order mark first (without it Excel reads
the Vietnamese legal references as Windows-1252), and times in Vietnam time (+07:00), still ISO 8601
with their offset, so a program reads the same instants as before."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from api.db import utcnow
from api.notices.export import NOTICE_COLUMNS
from api.services.exports import COLUMNS
from tests.api.conftest import World
from tests.api.evidence import ingest

Auth = Callable[[str], dict[str, str]]


def test_the_export_has_a_bom_and_vietnam_times(client: TestClient, world: World, auth: Auth) -> None:
    vid = ingest(client, world)  # occurred_at 2026-11-23T05:16:24.123Z: 12:16 in Hà Nội
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    confirmed = utcnow()

    r = client.get("/api/v1/exports/confirmed.csv", headers=auth("sup"))
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    body = r.content
    assert body.startswith(codecs.BOM_UTF8) and not body[3:].startswith(codecs.BOM_UTF8)
    text = body.decode("utf-8-sig")
    assert text.startswith("violation_id,")
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == [*COLUMNS, *NOTICE_COLUMNS]
    [row] = [dict(zip([*COLUMNS, *NOTICE_COLUMNS], cells, strict=True)) for cells in reader]
    assert row["legal_reference"] == "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"
    assert row["occurred_at"] == "2026-11-23T12:16:24.123+07:00"
    assert datetime.fromisoformat(row["occurred_at"]) == datetime(2026, 11, 23, 5, 16, 24, 123000, UTC)
    assert row["confirmed_at"].endswith("+07:00") and len(row["confirmed_at"]) == 29
    assert abs(datetime.fromisoformat(row["confirmed_at"]) - confirmed) < timedelta(seconds=30)
