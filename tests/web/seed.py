"""Data for the web tests, put in the way production gets it: signed evidence packages and flow counts
posted to the running server by the devices of the test world (tests/api/conftest.py), and decisions
made through the review API.

Two things have no API yet and are written to the database directly: a second camera of district A
that was last heard from two hours ago (a stale camera: only ingest sets `last_seen`), and a notice
with its lookup code (notices are another issue) — with a registered owner whose personal data the
public lookup must never show.

Every violation happens "today" in Vietnam (the map's default period), spread over the hours so far.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import cv2
import httpx
import numpy as np
from sqlalchemy import select, update

from api import admin
from api.db import make_engine, make_sessionmaker
from api.models import Camera, Notice, Owner, Vehicle
from api.settings import Settings
from api.web.lookup import lookup_code_hash
from plates.grammar import parse_vn
from tests.api.conftest import PASSWORD, World
from tests.api.evidence import build_package, post_package, signed
from violations.legal import reference, speeding_reference
from violations.types import RuleId

VN = timedelta(hours=7)
LOOKUP_CODE = "PN7K-Q2X9"
OWNER_NAME = "Nguyễn Văn Chủ Xe"
OWNER_PHONE = "0912345678"
B_LOCATION = {"lat": 21.0245, "lon": 105.8530}
STALE_CAMERA = ("cam-a2", "Kim Mã - Nguyễn Thái Học", 21.0305, 105.8240)


@dataclass(frozen=True)
class Spec:
    """One violation to seed."""

    label: str
    camera: str
    rule: str
    vehicle: str
    plate: str | None
    minutes_ago: int
    speed: tuple[float, float] | None = None  # measured, limit
    clip: bool = False


SPECS: tuple[Spec, ...] = (
    Spec("a-confirm", "cam-a1", "red_light", "car", "30A12345", 12),
    Spec("a-reject", "cam-a1", "red_light", "motorcycle", "29X112345", 20),
    Spec("a-edit", "cam-a1", "stop_line", "car", "30E45676", 35),
    Spec("a-clip", "cam-a1", "speeding", "car", "30G24680", 50, speed=(72.0, 50.0), clip=True),
    Spec("a-unread", "cam-a1", "wrong_lane", "motorcycle", None, 65),
    Spec("a-lookup", "cam-a1", "red_light", "car", "30K13579", 80),
    Spec("a-side", "cam-a1", "sidewalk", "motorcycle", "29B123456", 95),
    Spec("a-way", "cam-a1", "wrong_way", "car", "30A54321", 130),
    Spec("a-lane", "cam-a1", "wrong_lane", "car", "30F11223", 170),
    Spec("b-red", "cam-b1", "red_light", "car", "30A99999", 15),
    Spec("b-speed", "cam-b1", "speeding", "car", "51G12345", 40, speed=(68.0, 50.0)),
    Spec("b-way", "cam-b1", "wrong_way", "car", "30A88888", 140),
)
DEVICE_OF = {"cam-a1": "dev-a", "cam-b1": "dev-b"}
# Decided while seeding (so the map and the statistics show every status).
SEED_DECISIONS = {
    "a-lookup": {"decision": "confirm"},
    "a-side": {"decision": "confirm"},
    "a-lane": {"decision": "reject", "reason": "duplicate"},
    "b-way": {"decision": "confirm"},
}


@dataclass
class Seeded:
    """What the seed made: violation ids by label, the clip's bytes, times."""

    ids: dict[str, int] = field(default_factory=dict)
    clip: bytes = b""
    occurred_at: dict[str, datetime] = field(default_factory=dict)

    def district_ids(self, prefix: str) -> set[int]:
        """Ids of the violations of district A (`"a-"`) or B (`"b-"`)."""
        return {i for label, i in self.ids.items() if label.startswith(prefix)}


def prepare_database(settings: Settings) -> None:
    """Before the server starts: the stale camera (registered, last heard from two hours ago)."""
    cam_id, name, lat, lon = STALE_CAMERA
    admin.add_camera(settings, cam_id, name=name, district="ba-dinh", lat=lat, lon=lon)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            session.execute(
                update(Camera)
                .where(Camera.id == cam_id)
                .values(last_seen=datetime.now(UTC) - timedelta(hours=2))
            )
            session.commit()
    finally:
        engine.dispose()


def occurred(minutes_ago: int, now: datetime) -> datetime:
    """`minutes_ago` before `now`; in the first hours of the day in Vietnam (the map shows today)
    the same order squeezed into the time since midnight, so the times stay distinct and today."""
    vn_now = now + VN
    since_midnight = vn_now - vn_now.replace(hour=0, minute=0, second=0, microsecond=0)
    span = timedelta(minutes=max(spec.minutes_ago for spec in SPECS) + 1)
    ago = timedelta(minutes=minutes_ago)
    if since_midnight < span:
        ago *= since_midnight / span
    return now - ago


def clip_bytes(seed: int) -> bytes:
    """A real 12-frame MPEG-4 Part 2 ('mp4v') clip, as the edge writes them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 64))
        for i in range(12):
            frame = np.full((64, 96, 3), 40, np.uint8)
            frame[20:40, (i * 6) % 80 : (i * 6) % 80 + 16, 2] = 255 - seed
            writer.write(frame)
        writer.release()
        return path.read_bytes()


def _plate(compact: str | None) -> dict[str, Any] | None:
    if compact is None:
        return None
    parsed = parse_vn(compact)
    formatted = parsed.formatted or compact
    return {
        "text": parsed.compact or compact,
        "formatted": formatted,
        "valid": parsed.valid,
        "confidence": 0.91,
        "lines": parsed.lines,
        "colour": "white",
        "raw": compact,
        "alternatives": [[formatted, 0.91], [formatted[:-1] + "8", 0.06]],
    }


def _details(spec: Spec) -> tuple[dict[str, Any], str]:
    if spec.rule == "speeding" and spec.speed is not None:
        ref = speeding_reference(spec.vehicle, spec.speed[0] - spec.speed[1])
        details: dict[str, Any] = {"speed_kmh": spec.speed[0], "limit_kmh": spec.speed[1]}
    else:
        ref = reference(cast(RuleId, spec.rule), spec.vehicle)
        details = {"line_id": "sl1"} if spec.rule in ("red_light", "stop_line") else {"zone_id": "z1"}
    assert ref is not None, spec
    details["legal"] = {
        "article": ref.article,
        "clause": ref.clause,
        "point": ref.point,
        "summary": ref.summary,
        "fine_vnd": [ref.fine_min_vnd, ref.fine_max_vnd],
        "licence_points": ref.licence_points,
    }
    return details, ref.citation


def seed(base_url: str, world: World, settings: Settings) -> Seeded:
    """Post every `SPECS` package and some flow counts to the server at `base_url`; make the seed
    decisions; add the notice of "a-lookup" and its owner."""
    out = Seeded()
    now = datetime.now(UTC)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for n, spec in enumerate(SPECS, start=1):
            dev = world.devices[DEVICE_OF[spec.camera]]
            details, citation = _details(spec)
            at = occurred(spec.minutes_ago, now)
            overrides: dict[str, Any] = {
                "rule": spec.rule,
                "legal_reference": citation,
                "vehicle_class": spec.vehicle,
                "details": details,
                "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "plate": _plate(spec.plate),
                "signal": {"state": "red", "red_for_s": 3.4} if spec.rule == "red_light" else None,
            }
            if spec.camera == "cam-b1":
                overrides["location"] = B_LOCATION
            pkg = build_package(
                dev.private_key, device_id=dev.id, camera_id=spec.camera, seed=n, overrides=overrides
            )
            if spec.clip:
                out.clip = clip_bytes(n)
                manifest = dict(pkg.manifest)
                manifest["files"] = [
                    *manifest["files"],
                    {
                        "name": "clip.mp4",
                        "kind": "clip",
                        "sha256": hashlib.sha256(out.clip).hexdigest(),
                        "size": len(out.clip),
                        "media_type": "video/mp4",
                    },
                ]
                pkg = signed(manifest, dev.private_key, {**pkg.files, "clip.mp4": out.clip})
                pkg.part_types["clip.mp4"] = "video/mp4"
            r = post_package(client, pkg, dev.key)
            assert r.status_code == 201, r.text
            out.ids[spec.label] = r.json()["id"]
            out.occurred_at[spec.label] = at
        _post_flows(client, world, now)
        token = _token(client, "sup")
        for label, body in SEED_DECISIONS.items():
            r = client.post(
                f"/api/v1/violations/{out.ids[label]}/decision",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
    _add_notice(settings, out.ids["a-lookup"], "30K13579")
    return out


def _token(client: httpx.Client, username: str) -> str:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _post_flows(client: httpx.Client, world: World, now: datetime) -> None:
    """Five-minute counts over the last hours, per class, for both cameras."""
    classes = {"car": 40, "motorcycle": 150, "bus": 6, "truck": 9}
    for camera, device in DEVICE_OF.items():
        counts = []
        for k in range(1, 7):
            end = (now - timedelta(minutes=k * 25)).replace(second=0, microsecond=0)  # stats: 30 days
            start = end - timedelta(minutes=5)
            for cls, base in classes.items():
                counts.append(
                    {
                        "lane": "l1",
                        "direction": "in",
                        "vehicle_class": cls,
                        "interval_start": start.isoformat(),
                        "interval_end": end.isoformat(),
                        "count": base + k * 3,
                    }
                )
        r = client.post(
            "/api/v1/flows",
            json={"camera_id": camera, "counts": counts},
            headers={"X-Device-Key": world.devices[device].key},
        )
        assert r.status_code == 200, r.text


def _add_notice(settings: Settings, violation_id: int, plate: str) -> None:
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            owner = Owner(
                full_name=OWNER_NAME, national_id="001099012345", phone=OWNER_PHONE, address="Ba Đình"
            )
            session.add(owner)
            session.flush()
            session.add(Vehicle(plate_compact=plate, vehicle_class="car", owner_id=owner.id))
            # The confirmation made the notice (waiting for an owner: the registry was empty); give it
            # the owner, a known code (as a notice from before derived codes) and the SMS-sent state.
            notice = session.scalars(select(Notice).where(Notice.violation_id == violation_id)).one_or_none()
            if notice is None:
                notice = Notice(violation_id=violation_id)
                session.add(notice)
            notice.owner_id = owner.id
            notice.lookup_code_hash = lookup_code_hash(LOOKUP_CODE)
            notice.status = "sms_sent"
            notice.provider_message_id = secrets.token_hex(8)
            session.commit()
    finally:
        engine.dispose()
