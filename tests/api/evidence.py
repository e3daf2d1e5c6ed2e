"""Real evidence packages for the API tests, built the way an edge device builds them.

The manifest is canonical JSON signed with a real Ed25519 key (`violations.manifest`); the stills are
real JPEG images encoded with OpenCV (tests only: the server itself never imports cv2).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import httpx
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from tests.api.conftest import World
from violations.manifest import canonical_bytes, sign

SCENE_SHA = hashlib.sha256(b"scene.yaml of the test camera").hexdigest()
STILLS = ("still_before", "still_at", "still_after")


def jpeg(seed: int, wh: tuple[int, int] = (96, 64)) -> bytes:
    """A small real JPEG: a (H, W, 3) uint8 gradient with a seed-dependent rectangle."""
    w, h = wh
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = (seed * 37) % 256
    img[10 + seed % 20 : 30 + seed % 20, 10:40, 2] = 255
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(buf.tobytes())


@dataclass
class Package:
    """One evidence package as uploaded: manifest bytes, signature text and the files."""

    manifest: dict[str, Any]
    manifest_bytes: bytes
    signature: str
    files: dict[str, bytes] = field(default_factory=dict)
    part_types: dict[str, str] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return str(self.manifest["event_id"])


def build_package(
    private_key: Ed25519PrivateKey,
    *,
    device_id: str,
    camera_id: str,
    event_id: str | None = None,
    seed: int = 1,
    plate: str | None = "30A12345",
    district: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    with_plate_crop: bool = True,
) -> Package:
    """A valid, signed package. `overrides` replace manifest fields before signing."""
    files = {f"{kind}.jpg": jpeg(seed * 10 + i) for i, kind in enumerate(STILLS)}
    kinds = {f"{kind}.jpg": kind for kind in STILLS}
    if with_plate_crop:
        files["plate.jpg"] = jpeg(seed * 10 + 7, (48, 16))
        kinds["plate.jpg"] = "plate"
    manifest: dict[str, Any] = {
        "format": "phatnguoi-evidence/1",
        "event_id": event_id or str(uuid.uuid4()),
        "rule": "red_light",
        "legal_reference": "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP",
        "camera_id": camera_id,
        "track_id": 17 + seed,
        "frame_index": 1200 + seed,
        "ts": 40.04,
        "vehicle_class": "car",
        "box_xyxy": [10.0, 20.0, 110.0, 90.5],
        "details": {"line_id": "sl1", "signal": "red", "red_for_s": 6.2},
        "occurred_at": "2026-11-23T05:16:24.123Z",
        "device_id": device_id,
        "location": {"lat": 21.0278, "lon": 105.8342},
        "district": district,
        "scene_version": SCENE_SHA,
        "plate": None
        if plate is None
        else {
            "text": plate,
            "formatted": f"{plate[:3]}-{plate[3:6]}.{plate[6:]}",
            "valid": True,
            "confidence": 0.93,
            "lines": 1,
            "colour": "white",
            "raw": plate,
            "alternatives": [[f"{plate[:3]}-{plate[3:6]}.{plate[6:]}", 0.93]],
        },
        "signal": {"state": "red", "red_for_s": 6.2},
        "models": [{"name": "yolov8n-coco", "sha256": "ab" * 32}],
        "files": [
            {
                "name": name,
                "kind": kinds[name],
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "media_type": "image/jpeg",
            }
            for name, data in files.items()
        ],
        "created_at": "2026-11-23T05:16:30.000Z",
    }
    manifest.update(overrides or {})
    return signed(manifest, private_key, files)


def signed(manifest: dict[str, Any], private_key: Ed25519PrivateKey, files: dict[str, bytes]) -> Package:
    """Sign `manifest` (canonical bytes) and wrap it with `files`."""
    data = canonical_bytes(manifest)
    return Package(manifest, data, sign(data, private_key), dict(files))


def multipart(pkg: Package) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
    """Form fields and file parts of the ingest request."""
    parts = [("manifest", ("manifest.json", pkg.manifest_bytes, "application/json"))]
    parts += [
        ("files", (name, data, pkg.part_types.get(name, "image/jpeg"))) for name, data in pkg.files.items()
    ]
    return {"signature": pkg.signature}, parts


def post_package(
    client: TestClient | httpx.Client, pkg: Package, key: str | None, *, header: str = "bearer"
) -> Any:
    """POST the package to the ingest route with the device key in `Authorization` or `X-Device-Key`.

    Returns the client's response (an httpx or, with starlette's TestClient, possibly httpx2 Response).
    """
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-Device-Key": key}
    data, files = multipart(pkg)
    return client.post("/api/v1/violations", data=data, files=files, headers=headers)


def ingest(client: TestClient, world: World, camera: str = "cam-a1", **kw: Any) -> int:
    """Post a package of `camera` (cam-b1: from dev-b, else dev-a) and return the stored violation's id."""
    device = "dev-b" if camera == "cam-b1" else "dev-a"
    dev = world.devices[device]
    r = post_package(
        client, build_package(dev.private_key, device_id=dev.id, camera_id=camera, **kw), dev.key
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def register_owner(
    client: TestClient, auth: Callable[[str], dict[str, str]], plate: str = "30A-123.45"
) -> None:
    """Import an owner of `plate` into the vehicle registry (as admin, through the API): the notice of a
    violation of that plate then has someone to go to (`created`, not `awaiting_owner`), and prints."""
    csv = f"plate,owner_name,phone\n{plate},Nguyễn Văn An,0912345678\n"
    r = client.post("/api/v1/registry/import", json={"csv": csv}, headers=auth("admin"))
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def point_file_at(database_url: str, violation_id: int, name: str, sha256: str) -> None:
    """Edit the database, not the store: make violation `violation_id`'s record of file `name` name the
    stored blob `sha256` (another evidence file's, so its hash and address stay consistent)."""
    from sqlalchemy import select, update

    from api.db import make_engine, make_sessionmaker
    from api.models import EvidenceFile

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            uri = s.scalars(select(EvidenceFile.storage_uri).where(EvidenceFile.sha256 == sha256)).first()
            assert uri is not None, f"no stored blob {sha256}"
            s.execute(
                update(EvidenceFile)
                .where(EvidenceFile.violation_id == violation_id, EvidenceFile.name == name)
                .values(sha256=sha256, storage_uri=uri)
            )
            s.commit()
    finally:
        engine.dispose()
