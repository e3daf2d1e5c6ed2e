"""Flow counts dated ahead of the server: a device whose clock runs ahead (a box that kept its hardware
clock in local time, 7 h ahead of UTC, until NTP set it) sends intervals that have not begun. They are
refused (422, "check the device clock") as its violations are, by `ingest_future_skew_s`: stored, they
would clash with the real counts of those intervals once these come. The interval under way, which
the edge flushes partial when it stops, ends up to an hour ahead and is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.models import FlowCount
from tests.api.conftest import World
from tests.api.test_flows import post


def count_at(start: datetime, length_s: int, *, lane: str = "l1", n: int = 4) -> dict[str, Any]:
    """One count of `lane` for the interval ``[start, start + length_s)``."""
    return {
        "lane": lane,
        "direction": "in",
        "vehicle_class": "motorcycle",
        "interval_start": start.isoformat(),
        "interval_end": (start + timedelta(seconds=length_s)).isoformat(),
        "count": n,
    }


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.mark.parametrize(
    ("start_in_s", "length_s", "skew_s", "status"),
    [
        (7 * 3600, 60, 600, 422),  # the clock 7 h ahead
        (-60, 3600, 600, 200),  # the hour under way, flushed at shutdown: ends ~59 min ahead
        (300, 60, 600, 200),  # a clock 5 min ahead is within the skew allowed
        (300, 60, 60, 422),  # ... and beyond a tighter one
        (-3600, 60, 0, 200),
    ],
)
def test_flow_intervals_starting_ahead_of_the_server_clock_are_refused(
    start_in_s: int,
    length_s: int,
    skew_s: float,
    status: int,
    make_client: Callable[..., TestClient],
    world: World,
    count: Callable[[type[Any]], int],
) -> None:
    client = make_client(ingest_future_skew_s=skew_s)
    start = this_minute() + timedelta(seconds=start_in_s)
    r = post(client, world, {"camera_id": "cam-a1", "counts": [count_at(start, length_s)]})
    assert r.status_code == status, r.text
    if status == 422:
        detail = str(r.json()["detail"])
        assert "starts in the future" in detail and "check the device clock" in detail, detail
        assert "\n" not in detail
        assert count(FlowCount) == 0
    else:
        assert r.json() == {"inserted": 1, "duplicates": 0, "conflicts": []}


def test_a_batch_with_one_interval_ahead_is_refused_whole(
    client: TestClient, world: World, count: Callable[[type[Any]], int]
) -> None:
    """Counts of the hour before the clock was set and one of 7 h ahead, in one batch: nothing is
    stored, and the reason names the interval ahead."""
    now = this_minute()
    ahead = now + timedelta(hours=7)
    body = {
        "camera_id": "cam-a1",
        "counts": [count_at(now - timedelta(minutes=2), 60), count_at(ahead, 60, lane="l2")],
    }
    r = post(client, world, body)
    assert r.status_code == 422, r.text
    assert f"l2/in/motorcycle [{ahead.isoformat()}" in r.json()["detail"]
    assert count(FlowCount) == 0
