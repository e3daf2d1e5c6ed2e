"""Real signed evidence packages on disk for the edge tests.

- `write_package`: a package of `tests.api.evidence.build_package` (real JPEGs, canonical manifest,
  real Ed25519 signature) written as the evidence builder writes it, a folder named after the event.
- `noise_package`: the same with incompressible stills of a chosen size (to fill a disk budget).
- `video_packages`: packages made by the real `EvidenceBuilder` from real frames of the Giang Vo clip.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streams.frame import Frame
from tests.api.evidence import Package, build_package, signed
from violations.evidence import BuildResult, EvidenceBuilder, EvidenceConfig
from violations.legal import reference
from violations.types import ViolationEvent, event_id

SCENE_SHA = hashlib.sha256(b"examples/scenes/hanoi_giangvo_langha.yaml").hexdigest()


def write_package(pkg: Package, root: Path) -> Path:
    """Write `pkg` to ``root/<event_id>/`` (manifest.json, manifest.sig, the files)."""
    folder = root / pkg.event_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_bytes(pkg.manifest_bytes)
    (folder / "manifest.sig").write_text(pkg.signature + "\n", encoding="ascii")
    for name, data in pkg.files.items():
        (folder / name).write_bytes(data)
    return folder


def make_packages(
    key: Ed25519PrivateKey, root: Path, n: int, *, device_id: str, camera_id: str, first_seed: int = 1
) -> list[Path]:
    """`n` small real packages (about 3 kB each) written under `root`."""
    return [
        write_package(build_package(key, device_id=device_id, camera_id=camera_id, seed=first_seed + i), root)
        for i in range(n)
    ]


def noise_jpeg(seed: int, kb: int) -> bytes:
    """A real JPEG of random noise, about `kb` kilobytes (noise does not compress)."""
    rng = np.random.default_rng(seed)
    side = max(16, int((kb * 1024 / 0.95) ** 0.5))  # q90 noise: about 0.95 bytes a pixel
    img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(buf.tobytes())


def noise_package(
    key: Ed25519PrivateKey, *, device_id: str, camera_id: str, seed: int, kb: int, event: str | None = None
) -> Package:
    """A real signed package whose three stills are noise JPEGs of about `kb` kB each."""
    base = build_package(
        key, device_id=device_id, camera_id=camera_id, seed=seed, event_id=event, with_plate_crop=False
    )
    files = {name: noise_jpeg(seed * 10 + i, kb) for i, name in enumerate(base.files)}
    manifest = dict(base.manifest)
    manifest["files"] = [
        {
            **entry,
            "sha256": hashlib.sha256(files[entry["name"]]).hexdigest(),
            "size": len(files[entry["name"]]),
        }
        for entry in base.manifest["files"]
    ]
    return signed(manifest, key, files)


def video_packages(
    key: Ed25519PrivateKey,
    root: Path,
    clip: Path,
    *,
    device_id: str,
    camera_id: str,
    event_frames: tuple[int, ...] = (12, 24, 36, 48),
    frames: int = 60,
    ts_origin: float = 1_664_097_340.0,
) -> list[BuildResult]:
    """Packages built by the real `EvidenceBuilder` from the first `frames` frames of `clip`, one per
    frame in `event_frames` (a motorbike box near the stop line, red light), with 1 s of clip
    around each. `ts_origin` is the recording's start (2022-09-25 09:15:40 UTC for Giang Vo)."""
    builder = EvidenceBuilder(
        device_id,
        key,
        root,
        scene_version=SCENE_SHA,
        models=[{"name": "yolov8n-coco", "sha256": "ab" * 32}],
        location={"lat": 21.0263, "lon": 105.8184},
        district="ba-dinh",
        ts_origin=ts_origin,
        config=EvidenceConfig(pre_s=1.0, post_s=1.0, still_offset_s=0.5, background=False),
    )
    ref = reference("red_light", "motorcycle")
    assert ref is not None
    cap = cv2.VideoCapture(str(clip))
    results: list[BuildResult] = []
    try:
        for index in range(frames):
            ok, image = cap.read()
            if not ok:
                break
            ts = index / 6.0
            results += builder.on_frame(Frame(image, index, ts, camera_id))
            if index in event_frames:
                track = 100 + index
                builder.add_event(
                    ViolationEvent(
                        event_id=event_id(camera_id, track, "red_light", ts),
                        rule="red_light",
                        legal_reference=ref.citation,
                        camera_id=camera_id,
                        track_id=track,
                        frame_index=index,
                        ts=ts,
                        vehicle_class="motorcycle",
                        box_xyxy=(300.0, 330.0, 345.0, 420.0),
                        details={"line_id": "sl1", "signal": "red", "red_for_s": 2.0},
                    ),
                    signal={"state": "red", "red_for_s": 2.0},
                )
    finally:
        cap.release()
    results += builder.close()
    return results
