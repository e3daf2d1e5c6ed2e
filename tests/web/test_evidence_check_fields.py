"""The evidence check done when a reviewer opens a violation (`/web/api/violations/{id}/evidence`) holds
the database to the device's signed manifest, on SQLite and PostgreSQL:

- every file the manifest lists has its row, with the signed name, kind, size, media type and hash,
  unless the retention job deleted it (recorded: `evidence_purged_at` and its audit entry);
- the columns that are shown, confirmed, exported and fined (plate, time, rule, legal reference,
  camera, device, vehicle, signal, speed, place...) are what the device signed; the only difference
  allowed is the reviewer's plate correction, and only the one the audited decision recorded.
Each problem is reported by name. The public lookup leaves out a still whose bytes are not the signed
ones (logged, audited).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import make_engine, make_sessionmaker, utcnow
from api.models import AuditEntry, EvidenceFile, Notice, Violation
from api.retention import run_retention
from api.settings import Settings
from api.storage import LocalStore
from api.web.lookup import lookup_code_hash
from tests.api.conftest import Db, World
from tests.api.evidence import build_package, ingest, jpeg, post_package

Auth = Callable[[str], dict[str, str]]


def _check(client: TestClient, auth: Auth, vid: int) -> dict[str, Any]:
    r = client.get(f"/web/api/violations/{vid}/evidence", headers=auth("off-a"))
    assert r.status_code == 200, r.text
    check: dict[str, Any] = r.json()["check"]
    return check


def _write(db: Db, *statements: Any) -> None:
    """Edit the database directly, as someone with write access to it would (no API, no audit)."""
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine)() as s:
            for stmt in statements:
                s.execute(stmt)
            s.commit()
    finally:
        engine.dispose()


def _named(check: dict[str, Any]) -> set[str]:
    return {p.split(":", 1)[0] for p in check["problems"]}


def test_a_signed_file_whose_row_was_deleted_fails_the_check(
    client: TestClient, world: World, db: Db, auth: Auth
) -> None:
    vid = ingest(client, world)
    before = _check(client, auth, vid)
    assert before["ok"] and before["problems"] == [] and before["problem"] is None
    _write(
        db,
        delete(EvidenceFile).where(EvidenceFile.violation_id == vid, EvidenceFile.name == "still_after.jpg"),
    )
    after = _check(client, auth, vid)
    assert after["ok"] is False and (after["manifest_ok"], after["signature_ok"]) == (True, True)
    files = {f["name"]: (f["ok"], f["problem"]) for f in after["files"]}
    assert files["still_after.jpg"][0] is False and "no file row" in files["still_after.jpg"][1]
    assert _named(after) == {"still_after.jpg"}
    assert after["problem"] == after["problems"][0]


def test_a_file_row_edited_against_the_manifest_fails_the_check(
    client: TestClient, world: World, db: Db, auth: Auth
) -> None:
    vid = ingest(client, world)
    _write(
        db,
        update(EvidenceFile)
        .where(EvidenceFile.violation_id == vid, EvidenceFile.name == "still_before.jpg")
        .values(size=12, kind="plate"),
        update(EvidenceFile)
        .where(EvidenceFile.violation_id == vid, EvidenceFile.name == "plate.jpg")
        .values(kind="still_before"),
    )
    check = _check(client, auth, vid)
    assert check["ok"] is False
    assert _named(check) == {"still_before.jpg", "plate.jpg"}
    assert any("size" in p and "kind" in p for p in check["problems"] if p.startswith("still_before.jpg"))


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (
            {"plate_key": "51G99999", "plate_compact": "51G99999", "plate_formatted": "51G-999.99"},
            {"plate_compact", "plate_formatted", "plate_key"},
        ),
        ({"plate_key": "51G99999"}, {"plate_key"}),
        ({"occurred_at": datetime(2026, 11, 24, 1, 0, tzinfo=UTC)}, {"occurred_at"}),
        ({"rule": "speeding"}, {"rule"}),
        ({"legal_reference": "khoản 7 Điều 6"}, {"legal_reference"}),
        ({"camera_id": "cam-b1"}, {"camera_id"}),
        ({"vehicle_class": "motorcycle", "box_xyxy": [0.0, 0.0, 1.0, 1.0]}, {"vehicle_class", "box_xyxy"}),
        ({"signal_state": "green", "red_for_s": None}, {"signal_state", "red_for_s"}),
        ({"speed_kmh": 81.0, "speed_limit_kmh": 50.0}, {"speed_kmh", "speed_limit_kmh"}),
        ({"lat": 10.77, "lon": 106.7}, {"lat", "lon"}),
        ({"event_id": "00000000-0000-4000-8000-000000000000"}, {"event_id"}),
        ({"details": {"line_id": "sl9"}}, {"details"}),
    ],
)
def test_columns_edited_in_the_database_are_named(
    client: TestClient, world: World, db: Db, auth: Auth, values: dict[str, Any], named: set[str]
) -> None:
    vid = ingest(client, world)
    _write(db, update(Violation).where(Violation.id == vid).values(**values))
    check = _check(client, auth, vid)
    assert check["ok"] is False, check
    assert (check["manifest_ok"], check["signature_ok"]) == (True, True)
    assert _named(check) == named, check["problems"]
    assert all("signed" in p for p in check["problems"])


def test_a_device_swapped_in_the_database_is_named(
    client: TestClient, world: World, db: Db, auth: Auth
) -> None:
    vid = ingest(client, world)
    _write(db, update(Violation).where(Violation.id == vid).values(device_id="dev-b"))
    check = _check(client, auth, vid)
    assert check["ok"] is False and check["signature_ok"] is False  # dev-b's key did not sign it
    assert "device_id" in _named(check)


def test_only_the_audited_plate_correction_may_differ(
    client: TestClient, world: World, db: Db, auth: Auth
) -> None:
    vid = ingest(client, world)
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "30A-123.46"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["plate"]["key"] == "30A12346"
    check = _check(client, auth, vid)
    assert check["ok"] and check["problems"] == []

    # The correction changed in the database afterwards: not the one the decision recorded.
    _write(
        db,
        update(Violation).where(Violation.id == vid).values(plate_corrected="51G99999", plate_key="51G99999"),
    )
    check = _check(client, auth, vid)
    assert check["ok"] is False and _named(check) == {"plate_corrected"}

    # A correction on a violation nobody decided is not a reviewer's correction at all.
    other = ingest(client, world, seed=2)
    _write(
        db,
        update(Violation)
        .where(Violation.id == other)
        .values(plate_corrected="51G99999", plate_key="51G99999"),
    )
    assert _named(_check(client, auth, other)) == {"plate_corrected"}

    # Reopened: the correction is undone and the check passes again.
    _write(
        db,
        update(Violation).where(Violation.id == vid).values(plate_corrected="30A12346", plate_key="30A12346"),
    )
    assert _check(client, auth, vid)["ok"]
    r = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": "khiếu nại"}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    assert _check(client, auth, vid)["ok"]


def test_evidence_deleted_by_retention_passes_and_unrecorded_deletion_does_not(
    client: TestClient, world: World, db: Db, auth: Auth, settings: Settings
) -> None:
    old = (utcnow() - timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    purged = ingest(client, world, overrides={"occurred_at": old, "created_at": old})
    kept = ingest(client, world, seed=2)
    report = run_retention(settings, utcnow() + timedelta(days=100))  # `old` is 400 days old then
    assert report.violations_purged == 1
    check = _check(client, auth, purged)
    assert check["ok"] and check["problems"] == []
    assert {f["ok"] for f in check["files"]} == {None}

    _write(
        db,
        update(EvidenceFile)
        .where(EvidenceFile.violation_id == kept, EvidenceFile.name == "still_after.jpg")
        .values(deleted_at=utcnow()),
    )
    check = _check(client, auth, kept)
    assert check["ok"] is False and _named(check) == {"still_after.jpg"}
    assert "retention" in check["problems"][0]


@pytest.mark.parametrize(
    ("plate", "overrides", "with_crop"),
    [
        (None, {}, False),
        ("51G12345", {"location": None, "signal": None, "district": "ba-dinh"}, True),
        (
            "30A12345",
            {
                "rule": "speeding",
                "details": {"speed_kmh": 72.5, "limit_kmh": 50, "zone": "z1"},
                "signal": None,
            },
            True,
        ),
        ("30A12345", {"signal": {"state": "amber", "red_for_s": None}, "box_xyxy": [0, 0, 5, 5]}, True),
    ],
)
def test_what_ingest_stores_passes_the_check(
    client: TestClient,
    world: World,
    auth: Auth,
    plate: str | None,
    overrides: dict[str, Any],
    with_crop: bool,
) -> None:
    """No false alarm: every kind of package checks clean right after its ingest."""
    vid = ingest(client, world, plate=plate, overrides=overrides, with_plate_crop=with_crop)
    check = _check(client, auth, vid)
    assert check["ok"] and check["problems"] == [], check


# ---------------------------------------------------------------------------------------------------
# The public lookup
# ---------------------------------------------------------------------------------------------------

CODE = "QX7K-2M9P"


def test_the_lookup_leaves_out_a_still_replaced_in_the_store(
    client: TestClient, world: World, db: Db, auth: Auth, settings: Settings, session: Session
) -> None:
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=5)
    r = post_package(client, pkg, dev.key)
    assert r.status_code == 201, r.text
    vid = int(r.json()["id"])
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("sup"))
    assert r.status_code == 200, r.text
    _write(
        db, update(Notice).where(Notice.violation_id == vid).values(lookup_code_hash=lookup_code_hash(CODE))
    )
    params = {"plate": "30A-123.45", "code": CODE}
    assert [s["kind"] for s in client.get("/api/v1/lookup", params=params).json()["stills"]] == [
        "still_before",
        "still_at",
        "still_after",
    ]

    sha = next(f["sha256"] for f in pkg.manifest["files"] if f["name"] == "still_at.jpg")
    LocalStore(settings.evidence_dir).path_for(sha).write_bytes(jpeg(77))
    r = client.get("/api/v1/lookup", params=params)
    assert r.status_code == 200, r.text
    assert [s["kind"] for s in r.json()["stills"]] == ["still_before", "still_after"]
    session.rollback()
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "evidence.mismatch", AuditEntry.object_id == str(vid))
    ).all()
    assert [(a.actor, json.loads(a.detail)["file"]) for a in entries] == [("public", "still_at.jpg")]
