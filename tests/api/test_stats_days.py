"""Statistics by day (`GET /api/v1/stats/violations?group_by=day`): every Vietnamese day of the period is
a group, the days without a violation with zeros, at most the last `MAX_DAYS`; a period that ends before
it starts is refused. On SQLite and PostgreSQL, with rows written straight into the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.services.stats import MAX_DAYS
from api.web import i18n
from tests.api.conftest import Db
from tests.api.factories import add_violations, violation_row

Auth = Callable[[str], dict[str, str]]
VN = timezone(timedelta(hours=7))


def at_vn(day: date, hour: int, minute: int = 0) -> datetime:
    """A Vietnamese wall-clock time, as the device sends it (stored in UTC)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN)


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]


def by_day(client: TestClient, auth: Auth, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/stats/violations", params={"group_by": "day", **params}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def totals(body: dict[str, Any]) -> dict[str, int]:
    return {g["key"]: g["total"] for g in body["groups"]}


NOV = [date(2026, 11, d) for d in (10, 15, 22, 23)]


@pytest.fixture
def november(db: Db) -> None:
    """The reviewer's month: violations on Nov 10, 15, 22 and 23 (three), Hanoi time; the one of Nov 15
    at 00:30 Hanoi (17:30 UTC on Nov 14) counts for Nov 15. One in 2020 and one in December, outside."""
    add_violations(
        db.url,
        [
            violation_row(occurred_at=at_vn(NOV[0], 9)),
            violation_row(occurred_at=at_vn(NOV[1], 0, 30), status="confirmed"),
            violation_row(occurred_at=at_vn(NOV[2], 23, 59)),
            *(violation_row(occurred_at=at_vn(NOV[3], h)) for h in (7, 8, 17)),
            violation_row(occurred_at=at_vn(date(2020, 6, 1), 12)),
            violation_row(occurred_at=at_vn(date(2026, 12, 5), 12)),
        ],
    )


def test_every_day_of_the_period_is_a_group_the_empty_ones_with_zeros(
    client: TestClient, auth: Auth, november: None
) -> None:
    body = by_day(client, auth, **{"from": "2026-11-01T00:00:00+07:00", "to": "2026-12-01T00:00:00+07:00"})
    assert [g["key"] for g in body["groups"]] == days(date(2026, 11, 1), date(2026, 11, 30))
    counted = {"2026-11-10": 1, "2026-11-15": 1, "2026-11-22": 1, "2026-11-23": 3}
    assert totals(body) == {day: counted.get(day, 0) for day in days(date(2026, 11, 1), date(2026, 11, 30))}
    empty = next(g for g in body["groups"] if g["key"] == "2026-11-11")
    assert empty == {
        "key": "2026-11-11",
        "total": 0,
        "new": 0,
        "confirmed": 0,
        "rejected": 0,
        "plate_read": 0,
    }
    assert (body["total"], body["confirmed"], body["from"]) == (6, 1, "2026-11-01T00:00:00+07:00")
    # A period that starts and ends within a day is that one day (Vietnamese days, whatever the times).
    one = by_day(client, auth, **{"from": "2026-11-14T17:00:00Z", "to": "2026-11-14T18:00:00Z"})
    assert totals(one) == {"2026-11-15": 1}
    # In UTC the 00:30 violation of Nov 15 is one of Nov 14.
    utc = by_day(
        client, auth, utc_offset_minutes=0, **{"from": "2026-11-14T00:00:00Z", "to": "2026-11-16T00:00:00Z"}
    )
    assert totals(utc) == {"2026-11-14": 1, "2026-11-15": 0}


def test_without_from_the_days_start_at_the_first_violation(client: TestClient, auth: Auth, db: Db) -> None:
    add_violations(db.url, [violation_row(occurred_at=at_vn(d, 12)) for d in NOV])
    body = by_day(client, auth, to="2026-11-25T00:00:00+07:00")
    assert [g["key"] for g in body["groups"]] == days(NOV[0], date(2026, 11, 24))
    assert body["from"] is None and body["total"] == 4
    assert by_day(client, auth, to="2026-11-01T00:00:00+07:00")["groups"] == []  # nothing before: no days


def test_without_to_the_days_run_to_today(client: TestClient, auth: Auth, db: Db) -> None:
    today = datetime.now(VN).date()
    add_violations(db.url, [violation_row(occurred_at=at_vn(today - timedelta(days=3), 12))])
    start = today - timedelta(days=6)
    body = by_day(client, auth, **{"from": at_vn(start, 0).isoformat()})
    end = datetime.now(VN).date()  # the same day but at midnight
    assert [g["key"] for g in body["groups"]] in (days(start, today), days(start, end))
    assert [g["total"] for g in body["groups"]][:7] == [0, 0, 0, 1, 0, 0, 0]
    # Nothing at all in the period: still every day, at zero (a camera down the whole week).
    quiet = by_day(client, auth, **{"from": at_vn(today - timedelta(days=2), 0).isoformat()})
    assert len(quiet["groups"]) in (3, 4) and quiet["total"] == 0


def test_a_long_period_counts_only_its_last_days(client: TestClient, auth: Auth, november: None) -> None:
    """Ten years by day would be 3,653 points: the last MAX_DAYS days are counted, and the answer's
    `from` says where they start (the 2020 violation is outside, and not in the totals)."""
    first = date(2026, 11, 30) - timedelta(days=MAX_DAYS - 1)
    body = by_day(client, auth, **{"from": "2016-12-01T00:00:00+07:00", "to": "2026-12-01T00:00:00+07:00"})
    assert [g["key"] for g in body["groups"]] == days(first, date(2026, 11, 30))
    assert len(body["groups"]) == MAX_DAYS
    assert (body["from"], body["to"]) == (at_vn(first, 0).isoformat(), "2026-12-01T00:00:00+07:00")
    assert body["total"] == 6
    # No `from`: the same, from the first violation (2020) on.
    assert totals(by_day(client, auth, to="2026-12-01T00:00:00+07:00")) == totals(body)
    # A year and a day fits whole.
    year = by_day(client, auth, **{"from": at_vn(first, 0).isoformat(), "to": "2026-12-01T00:00:00+07:00"})
    assert year["from"] == at_vn(first, 0).isoformat() and len(year["groups"]) == MAX_DAYS


@pytest.mark.parametrize(
    ("path", "group_by"), [("violations", "day"), ("violations", "rule"), ("flows", "class")]
)
def test_a_period_that_ends_before_it_starts_is_refused(
    client: TestClient, auth: Auth, path: str, group_by: str
) -> None:
    params = {"group_by": group_by, "from": "2026-11-23T00:00:00+07:00", "to": "2026-11-10T00:00:00+07:00"}
    r = client.get(f"/api/v1/stats/{path}", params=params, headers=auth("sup"))
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": "from is later than to"}
    assert i18n.translate_error(r.json()["detail"], "vi") == "Từ ngày không được sau Đến ngày"
    # An empty period is no error: nothing is in it.
    same = {**params, "to": params["from"]}
    r = client.get(f"/api/v1/stats/{path}", params=same, headers=auth("sup"))
    assert r.status_code == 200 and r.json()["groups"] == [] and r.json()["total"] == 0
