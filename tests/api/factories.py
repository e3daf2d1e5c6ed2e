"""Violation rows written straight into a test database, for list/search/statistics tests that need many
rows with chosen times, plates and statuses (evidence ingest itself is tested with real packages).

The rows are what ingest would store for a package of the world's cameras; only the fields a test
cares about are given.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from api.db import make_engine
from api.models import Violation

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
CAMERA_DISTRICT = {"cam-a1": "ba-dinh", "cam-b1": "hoan-kiem", "cam-x": None}
CAMERA_DEVICE = {"cam-a1": "dev-a", "cam-b1": "dev-b", "cam-x": "dev-a"}


def violation_row(
    *,
    occurred_at: datetime = T0,
    camera: str = "cam-a1",
    plate: str | None = "30A12345",
    status: str = "new",
    rule: str = "red_light",
    **extra: Any,
) -> dict[str, Any]:
    """One `violations` row as a dict (defaults: a new red-light violation of cam-a1 at `T0`)."""
    row: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "rule": rule,
        "legal_reference": "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP",
        "camera_id": camera,
        "district_id": CAMERA_DISTRICT[camera],
        "device_id": CAMERA_DEVICE[camera],
        "occurred_at": occurred_at,
        "track_id": 1,
        "frame_index": 1,
        "vehicle_class": "car",
        "box_xyxy": [0.0, 0.0, 10.0, 10.0],
        "details": {},
        "lat": None,
        "lon": None,
        "scene_version": "0" * 64,
        "plate_text": plate,
        "plate_compact": plate,
        "plate_formatted": plate,
        "plate_confidence": 0.9 if plate else None,
        "plate_valid": plate is not None,
        "plate_key": plate,
        "status": status,
        "reviewed_at": occurred_at + timedelta(hours=1) if status != "new" else None,
        "manifest": {},
        "manifest_sha256": "0" * 64,
        "signature": "x",
        "received_at": occurred_at,
    }
    row.update(extra)
    return row


def add_violations(url: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows (from `violation_row`) in one transaction; returns their ids in the same order."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            ids = [
                conn.execute(insert(Violation).values(**r).returning(Violation.id)).scalar_one() for r in rows
            ]
    finally:
        engine.dispose()
    return ids


def minutes(n: float) -> timedelta:
    """`n` minutes."""
    return timedelta(minutes=n)
