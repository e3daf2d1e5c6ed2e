"""Flow counts: idempotent on (camera, lane, direction, class, interval); conflicts keep the first value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import FlowCount
from tests.api.conftest import World


def counts(n: int, *, base: int = 10, hour: int = 7) -> list[dict[str, Any]]:
    return [
        {
            "lane": f"l{i % 2 + 1}",
            "direction": "in",
            "vehicle_class": ("motorcycle", "car", "bus")[i % 3],
            "interval_start": f"2026-11-23T{hour:02d}:{i:02d}:00+07:00",
            "interval_end": f"2026-11-23T{hour:02d}:{i + 1:02d}:00+07:00",
            "count": base + i,
        }
        for i in range(n)
    ]


def post(client: TestClient, world: World, body: dict[str, Any], device: str = "dev-a") -> Any:
    return client.post("/api/v1/flows", json=body, headers={"X-Device-Key": world.devices[device].key})


def test_flow_counts_are_stored_once_and_conflicts_reported(
    client: TestClient, world: World, session: Session, count: Callable[[type[Any]], int]
) -> None:
    body = {"camera_id": "cam-a1", "counts": counts(6)}
    first = post(client, world, body)
    assert first.status_code == 200, first.text
    assert first.json() == {"inserted": 6, "duplicates": 0, "conflicts": []}
    assert post(client, world, body).json() == {"inserted": 0, "duplicates": 6, "conflicts": []}

    changed = counts(7)
    changed[2]["count"] = 999
    r = post(client, world, {"camera_id": "cam-a1", "counts": changed}).json()
    assert (r["inserted"], r["duplicates"]) == (1, 5)
    assert [(c["stored_count"], c["posted_count"], c["vehicle_class"]) for c in r["conflicts"]] == [
        (12, 999, "bus")
    ]
    assert count(FlowCount) == 7
    stored = session.scalars(select(FlowCount).order_by(FlowCount.interval_start)).all()
    assert stored[2].count == 12 and stored[0].interval_start.isoformat() == "2026-11-23T00:00:00+00:00"


@pytest.mark.parametrize(
    ("body", "device", "status", "reason"),
    [
        ({"camera_id": "cam-b1", "counts": counts(1)}, "dev-a", 403, "may not post for camera"),
        ({"camera_id": "cam-a1", "counts": counts(1) * 2}, "dev-a", 422, "appears twice"),
        ({"camera_id": "cam-a1", "counts": []}, "dev-a", 422, ""),
        ({"camera_id": "cam-a1", "counts": [{**counts(1)[0], "count": -1}]}, "dev-a", 422, ""),
        (
            {
                "camera_id": "cam-a1",
                "counts": [{**counts(1)[0], "interval_end": "2026-11-23T06:00:00+07:00"}],
            },
            "dev-a",
            422,
            "",
        ),
        (
            {"camera_id": "cam-a1", "counts": [{**counts(1)[0], "interval_start": "2026-11-23T07:00:00"}]},
            "dev-a",
            422,
            "",
        ),
        ({"camera_id": "cam-a1", "counts": counts(1)}, "dev-off", 403, "disabled"),
    ],
)
def test_bad_flow_batches_are_refused(
    body: dict[str, Any],
    device: str,
    status: int,
    reason: str,
    client: TestClient,
    world: World,
    count: Callable[[type[Any]], int],
) -> None:
    r = post(client, world, body, device)
    assert r.status_code == status, r.text
    assert reason in str(r.json()["detail"])
    assert count(FlowCount) == 0
