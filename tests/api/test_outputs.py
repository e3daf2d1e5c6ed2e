"""Outputs: statistics, the map's GeoJSON, and the CSV export for the penalty system."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import AuditEntry
from tests.api.conftest import Db, World
from tests.api.factories import T0, add_violations, minutes, violation_row

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def stats_rows(db: Db) -> list[int]:
    """cam-a1 (ba-dinh): 3 red_light at 07:xx Hanoi on Nov 1 (new, confirmed, rejected), 1 speeding at
    17:xx Hanoi on Nov 2 (confirmed, no plate); cam-b1 (hoan-kiem): 1 confirmed red_light at 00:30
    Hanoi on Nov 2 (17:30 UTC Nov 1)."""
    return add_violations(
        db.url,
        [
            violation_row(occurred_at=T0 + minutes(10)),
            violation_row(occurred_at=T0 + minutes(20), status="confirmed"),
            violation_row(occurred_at=T0 + minutes(30), status="rejected"),
            violation_row(occurred_at=T0 + minutes(60 * 34), status="confirmed", rule="speeding", plate=None),
            violation_row(occurred_at=T0 + minutes(60 * 17 + 30), camera="cam-b1", status="confirmed"),
        ],
    )


def groups(body: dict[str, Any]) -> dict[str | None, tuple[int, int, int, int, int]]:
    return {
        g["key"]: (g["total"], g["new"], g["confirmed"], g["rejected"], g["plate_read"])
        for g in body["groups"]
    }


@pytest.mark.parametrize(
    ("user", "params", "expected", "rates"),
    [
        (
            "sup",
            {"group_by": "rule"},
            {"red_light": (4, 1, 2, 1, 4), "speeding": (1, 0, 1, 0, 0)},
            (3 / 4, 4 / 5),
        ),
        (
            "sup",
            {"group_by": "camera"},
            {"cam-a1": (4, 1, 2, 1, 3), "cam-b1": (1, 0, 1, 0, 1)},
            (3 / 4, 4 / 5),
        ),
        (
            "sup",
            {"group_by": "district"},
            {"ba-dinh": (4, 1, 2, 1, 3), "hoan-kiem": (1, 0, 1, 0, 1)},
            (3 / 4, 4 / 5),
        ),
        ("off-a", {"group_by": "district"}, {"ba-dinh": (4, 1, 2, 1, 3)}, (2 / 3, 3 / 4)),
        ("off-b", {"group_by": "rule"}, {"red_light": (1, 0, 1, 0, 1)}, (1.0, 1.0)),
        (
            "sup",
            {"group_by": "hour"},
            {"00": (1, 0, 1, 0, 1), "07": (3, 1, 1, 1, 3), "17": (1, 0, 1, 0, 0)},
            None,
        ),
        (
            "sup",
            {"group_by": "hour", "utc_offset_minutes": 0},
            {"00": (3, 1, 1, 1, 3), "10": (1, 0, 1, 0, 0), "17": (1, 0, 1, 0, 1)},
            None,
        ),
        # Without `to`, days run to today (tests/api/test_stats_days.py): here the period ends on Nov 2.
        (
            "sup",
            {"group_by": "day", "to": "2026-11-02T17:00:00Z"},
            {"2026-11-01": (3, 1, 1, 1, 3), "2026-11-02": (2, 0, 2, 0, 1)},
            None,
        ),
        (
            "sup",
            {"group_by": "day", "from": "2026-11-01T17:00:00Z", "to": "2026-11-02T17:00:00Z"},
            {"2026-11-02": (2, 0, 2, 0, 1)},
            None,
        ),
        (
            "sup",
            {"group_by": "rule", "to": "2026-11-01T00:15:00Z"},
            {"red_light": (1, 1, 0, 0, 1)},
            (None, 1.0),
        ),
        ("sup", {"group_by": "rule", "from": "2027-01-01T00:00:00Z"}, {}, (None, None)),
    ],
)
def test_violation_stats(
    user: str,
    params: dict[str, Any],
    expected: dict[str, tuple[int, ...]],
    rates: tuple[float | None, float | None] | None,
    client: TestClient,
    stats_rows: list[int],
    auth: Auth,
) -> None:
    r = client.get("/api/v1/stats/violations", params=params, headers=auth(user))
    assert r.status_code == 200, r.text
    body = r.json()
    assert groups(body) == expected
    assert list(groups(body)) == (
        sorted(expected) if params["group_by"] in ("hour", "day") else list(expected)
    )
    assert body["total"] == sum(v[0] for v in expected.values())
    if rates is not None:
        assert (body["confirmation_rate"], body["plate_read_rate"]) == pytest.approx(rates)


def test_stats_refusals(client: TestClient, auth: Auth) -> None:
    r = client.get(
        "/api/v1/stats/violations",
        params={"group_by": "rule", "district": "hoan-kiem"},
        headers=auth("off-a"),
    )
    assert r.status_code == 403
    refused: list[dict[str, Any]] = [
        {"group_by": "plate"},
        {},
        {"group_by": "day", "utc_offset_minutes": 10**5},
    ]
    for params in refused:
        assert client.get("/api/v1/stats/violations", params=params, headers=auth("sup")).status_code == 422


def test_flow_stats(client: TestClient, world: World, auth: Auth) -> None:
    def counts(camera: str, device: str, hour_utc: int, n: int) -> None:
        body = {
            "camera_id": camera,
            "counts": [
                {
                    "lane": "l1",
                    "direction": "in",
                    "vehicle_class": cls,
                    "interval_start": f"2026-11-23T{hour_utc:02d}:00:00Z",
                    "interval_end": f"2026-11-23T{hour_utc:02d}:15:00Z",
                    "count": n * k,
                }
                for k, cls in enumerate(("motorcycle", "car"), 1)
            ],
        }
        r = client.post("/api/v1/flows", json=body, headers={"X-Device-Key": world.devices[device].key})
        assert r.status_code == 200, r.text

    counts("cam-a1", "dev-a", 0, 10)  # motorcycle 10, car 20 at 07:00 Hanoi
    counts("cam-b1", "dev-b", 10, 1)  # motorcycle 1, car 2 at 17:00 Hanoi

    def get(user: str, **params: Any) -> dict[str, int]:
        r = client.get("/api/v1/stats/flows", params=params, headers=auth(user))
        assert r.status_code == 200, r.text
        return {g["key"]: g["count"] for g in r.json()["groups"]}

    assert get("sup", group_by="class") == {"car": 22, "motorcycle": 11}
    assert get("sup", group_by="camera") == {"cam-a1": 30, "cam-b1": 3}
    assert get("sup", group_by="hour") == {"07": 30, "17": 3}
    assert get("off-b", group_by="class") == {"car": 2, "motorcycle": 1}
    assert get("sup", group_by="class", **{"from": "2026-11-23T05:00:00Z"}) == {"car": 2, "motorcycle": 1}


def test_map_geojson(
    client: TestClient, world: World, auth: Auth, db: Db, make_client: Callable[..., TestClient]
) -> None:
    dev = world.devices["dev-a"]
    from tests.api.evidence import build_package, post_package

    r = post_package(client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1"), dev.key)
    assert r.status_code == 201
    ids = add_violations(
        db.url,
        [
            violation_row(occurred_at=T0, camera="cam-b1", lat=21.03, lon=105.85),  # camera has no position
            violation_row(occurred_at=T0 + minutes(1), camera="cam-b1"),  # no position at all: left out
            violation_row(occurred_at=T0 + minutes(2), status="confirmed"),
        ],
    )
    fc = client.get("/api/v1/map/violations.geojson", headers=auth("sup"))
    assert fc.status_code == 200 and fc.headers["content-type"] == "application/geo+json"
    body = fc.json()
    assert body["type"] == "FeatureCollection" and body["truncated"] is False
    feats = {f["id"]: f for f in body["features"]}
    assert set(feats) == {r.json()["id"], ids[0], ids[2]}
    assert feats[ids[2]]["geometry"] == {"type": "Point", "coordinates": [105.81, 21.02]}  # cam-a1's position
    assert feats[ids[0]]["geometry"]["coordinates"] == [105.85, 21.03]
    assert feats[ids[2]]["properties"]["status"] == "confirmed" and "plate" not in feats[ids[2]]["properties"]
    officer = client.get("/api/v1/map/violations.geojson", params={"limit": 1}, headers=auth("off-a")).json()
    assert [f["id"] for f in officer["features"]] == [r.json()["id"]] and officer["truncated"] is True
    assert (
        client.get(
            "/api/v1/map/violations.geojson", params={"district": "ba-dinh"}, headers=auth("off-b")
        ).status_code
        == 403
    )

    cams = client.get("/api/v1/map/cameras.geojson", headers=auth("sup")).json()
    assert [(f["id"], f["properties"]["status"]) for f in cams["features"]] == [("cam-a1", "online")]
    assert client.get("/api/v1/map/cameras.geojson", headers=auth("off-b")).json()["features"] == []
    stale = make_client(camera_stale_after_s=0.000001)
    assert (
        stale.get("/api/v1/map/cameras.geojson", headers=auth("off-a")).json()["features"][0]["properties"][
            "status"
        ]
        == "stale"
    )


def test_csv_export_streams_confirmed_violations_oldest_first(
    client: TestClient, db: Db, auth: Auth, session: Session
) -> None:
    n = 2345  # more than two batches
    rows = [
        violation_row(occurred_at=T0 + minutes(i % 700), status="confirmed", plate=f"30A{i:05d}")
        for i in range(n)
    ]
    rows += [
        violation_row(occurred_at=T0, status="rejected"),
        violation_row(occurred_at=T0, status="new"),
        # A class the legal catalogue has no offence for: the device's citation is exported (made safe).
        violation_row(
            occurred_at=T0,
            status="confirmed",
            vehicle_class="tractor",
            legal_reference='=HYPERLINK("http://x")',
        ),
        violation_row(occurred_at=T0 + minutes(9999), status="confirmed"),  # after `to`
    ]
    ids = add_violations(db.url, rows)
    params = {"from": "2026-10-01T00:00:00+07:00", "to": "2026-11-05T00:00:00+07:00"}
    with client.stream("GET", "/api/v1/exports/confirmed.csv", params=params, headers=auth("sup")) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["x-row-count"] == str(n + 1)
        text = b"".join(r.iter_bytes()).decode("utf-8-sig")  # the byte order mark is for Excel
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == n + 1
    keys = [(row["occurred_at"], int(row["violation_id"])) for row in table]
    assert keys == sorted(keys) and len({k[1] for k in keys}) == n + 1
    assert {int(row["violation_id"]) for row in table} == set(ids[:n]) | {ids[n + 2]}
    injected = next(row for row in table if int(row["violation_id"]) == ids[n + 2])
    assert injected["legal_reference"] == '\'=HYPERLINK("http://x")'
    assert table[0]["plate"].startswith("30A") and table[0]["district_id"] == "ba-dinh"
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "export.confirmed_csv")).one()
    assert audited.actor == "user:sup" and json.loads(audited.detail)["rows"] == n + 1


def test_csv_export_has_the_reviewers_plate_and_name(client: TestClient, world: World, auth: Auth) -> None:
    from tests.api.evidence import build_package, post_package

    dev = world.devices["dev-a"]
    vid = post_package(
        client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1"), dev.key
    ).json()["id"]
    body = {"decision": "confirm", "plate": "29-B1 999.99"}
    assert (
        client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a")).status_code == 200
    )
    text = client.get("/api/v1/exports/confirmed.csv", headers=auth("admin")).content.decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["plate"], row["plate_formatted"], row["plate_corrected"], row["confirmed_by"]) == (
        "29B199999",
        "29-B1 999.99",
        "yes",
        "off-a",
    )
    # The owner notice made by the confirmation: no registry entry, so it waits for the owner.
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    assert (row["notice_status"], row["lookup_code"]) == ("awaiting_owner", notice["lookup_code"])
    assert len(row["lookup_code"]) == 11


def test_officers_cannot_export(client: TestClient, auth: Auth) -> None:
    r = client.get("/api/v1/exports/confirmed.csv", headers=auth("off-a"))
    assert r.status_code == 403
