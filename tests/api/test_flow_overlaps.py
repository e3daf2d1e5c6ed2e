"""Flow counts of one camera, lane, direction and class cover each moment once: an interval that overlaps a
stored one without being the same interval is refused (409, nothing of the batch stored), and one that
overlaps another of its own batch too (422). Such counts were stored and summed twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from api.db import make_engine, make_sessionmaker
from api.models import FlowCount
from tests.api.conftest import Db, World

Count = Callable[[type[Any]], int]
Auth = Callable[[str], dict[str, str]]


def c(
    start: str, end: str, n: int, lane: str = "l1", cls: str = "car", direction: str = "forward"
) -> dict[str, Any]:
    return {
        "lane": lane,
        "direction": direction,
        "vehicle_class": cls,
        "interval_start": f"2026-11-23T{start}:00Z",
        "interval_end": f"2026-11-23T{end}:00Z",
        "count": n,
    }


def post(client: TestClient, world: World, *counts: dict[str, Any], device: str = "dev-a") -> Any:
    body = {"camera_id": "cam-a1", "counts": list(counts)}
    return client.post("/api/v1/flows", json=body, headers={"X-Device-Key": world.devices[device].key})


def hourly(client: TestClient, auth: Auth) -> tuple[int, list[tuple[str, int]]]:
    r = client.get("/api/v1/stats/flows", params={"group_by": "hour"}, headers=auth("sup")).json()
    return r["total"], [(g["key"], g["count"]) for g in r["groups"]]


def test_an_interval_overlapping_a_stored_one_is_refused(
    client: TestClient, world: World, auth: Auth, count: Count
) -> None:
    assert post(client, world, c("10:00", "10:05", 10)).json()["inserted"] == 1

    r = post(client, world, c("10:00", "10:15", 30))
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        "counts: l1/forward/car [2026-11-23T10:00:00+00:00, 2026-11-23T10:15:00+00:00) overlaps the stored "
        "interval [2026-11-23T10:00:00+00:00, 2026-11-23T10:05:00+00:00)"
    )
    # Inside a batch with a good count: the whole batch is refused.
    r = post(client, world, c("10:05", "10:10", 3), c("10:02", "10:04", 4))
    assert r.status_code == 409 and "overlaps the stored interval" in r.json()["detail"], r.text
    assert count(FlowCount) == 1
    assert hourly(client, auth) == (10, [("17", 10)])  # 10:00 UTC is 17:00 in Hà Nội

    # Adjacent intervals, other lanes, classes and directions, and an identical repeat are fine.
    r = post(
        client,
        world,
        c("10:00", "10:05", 10),
        c("10:05", "10:10", 3),
        c("09:55", "10:00", 2),
        c("10:00", "10:15", 7, lane="l2"),
        c("10:00", "10:15", 5, cls="bus"),
        c("10:00", "10:15", 1, direction="reverse"),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"inserted": 5, "duplicates": 1, "conflicts": []}
    # The same interval with another count is still a conflict that keeps the stored value.
    r = post(client, world, c("10:05", "10:10", 99))
    assert r.status_code == 200 and r.json()["conflicts"][0]["stored_count"] == 3
    assert hourly(client, auth) == (28, [("16", 2), ("17", 26)])


def test_overlapping_intervals_in_one_batch_are_refused(
    client: TestClient, world: World, count: Count
) -> None:
    r = post(client, world, c("10:00", "10:15", 30), c("10:10", "10:20", 5))
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        "counts: l1/forward/car [2026-11-23T10:10:00+00:00, 2026-11-23T10:20:00+00:00) overlaps "
        "[2026-11-23T10:00:00+00:00, 2026-11-23T10:15:00+00:00) in the same batch"
    )
    assert count(FlowCount) == 0


def test_a_batch_racing_an_overlapping_one_waits_for_it_and_is_refused(
    client: TestClient, world: World, db: Db, count: Count
) -> None:
    """A batch of the same camera still in its transaction (its intervals not visible yet) holds back
    an overlapping one until it commits; then the second sees it and is refused."""
    from api.services.flows import _lock_camera

    engine = make_engine(db.url)
    answers: list[Any] = []
    try:
        with make_sessionmaker(engine)() as first:
            _lock_camera(first, "cam-a1")  # what ingest_flows takes first (SQLite: BEGIN IMMEDIATE)
            first.add(
                FlowCount(
                    camera_id="cam-a1",
                    lane="l1",
                    direction="forward",
                    vehicle_class="car",
                    interval_start=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
                    interval_end=datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
                    count=10,
                    device_id="dev-a",
                )
            )
            first.flush()
            second = threading.Thread(
                target=lambda: answers.append(post(client, world, c("10:00", "10:15", 30)))
            )
            second.start()
            second.join(1.0)
            assert second.is_alive() and answers == []  # waiting for the first batch
            first.commit()
        second.join(30)
    finally:
        engine.dispose()
    assert answers[0].status_code == 409, answers[0].text
    assert count(FlowCount) == 1
