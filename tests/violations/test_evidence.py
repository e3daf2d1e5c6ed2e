"""Evidence builder: ring buffer, stills, plate crop, clip, atomic and idempotent package writing.

The builder runs on REAL frames of the Hanoi Giảng Võ – Láng Hạ clip (640x480, 6 fps) with a
hand-made `ViolationEvent`; the ring, the schedule and the drawing are also checked on small arrays.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from detector.detections import Detections
from streams.frame import Frame
from tests.violations import clip_frames
from violations import annotate
from violations.evidence import (
    BuildResult,
    EvidenceBuilder,
    EvidenceConfig,
    FrameRing,
    RingEntry,
    clip_schedule,
    pick_stills,
    upscale_plate,
)
from violations.manifest import EvidenceError, check_package, parse_manifest, verify_package
from violations.types import ViolationEvent, event_id

CAMERA = "hn-giangvo-01"
TRACK = 7
EVENT_FRAME = 30
N_FRAMES = 60  # 10 s at 6 fps
STOP_LINE = ((40, 337), (520, 355))  # from the clip's README
# 2022-09-25 16:15:40 in Hanoi (UTC+7), about when the clip's overlay clock starts.
TS_ORIGIN = 1664097340.0
SCENE_SHA = "5" * 64
MODELS = [{"name": "yolov8n-coco", "sha256": "c" * 64}]
PLATE = {
    "text": "29X123456",
    "formatted": "29-X1 234.56",
    "valid": True,
    "confidence": 0.91,
    "lines": 2,
    "colour": "white",
    "raw": "29-X1 / 234.56",
    "alternatives": [("29-X1 234.56", 0.91)],
}
SIGNAL = {"state": "red", "red_for_s": 0.7}


# ------------------------------------------------------------------------------ helpers


def box_at(i: int) -> tuple[float, float, float, float]:
    """The hand-made track: a motorbike riding up the frame, 4 px per frame."""
    dy = (EVENT_FRAME - i) * 4.0
    return (215.0, 285.0 + dy, 275.0, 390.0 + dy)


def tracks_at(i: int) -> Detections:
    return Detections(
        xyxy=np.array([box_at(i), (500.0, 100.0, 540.0, 160.0)], np.float32),
        confidence=np.array([0.9, 0.8], np.float32),
        class_id=np.array([3, 2], np.int32),
        tracker_id=np.array([TRACK, 99], np.int64),
    )


def make_event(frames: Sequence[Frame], index: int = EVENT_FRAME, **changes: Any) -> ViolationEvent:
    ts = frames[index].ts
    fields: dict[str, Any] = {
        "event_id": event_id(CAMERA, TRACK, "red_light", ts),
        "rule": "red_light",
        "legal_reference": "Điểm a khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP",
        "camera_id": CAMERA,
        "track_id": TRACK,
        "frame_index": index,
        "ts": ts,
        "vehicle_class": "motorcycle",
        "box_xyxy": box_at(index),
        "details": {"line_id": "sl1", "signal": "red", "red_for_s": 0.7},
    }
    fields.update(changes)
    return ViolationEvent(**fields)


def scene_overlay(image: np.ndarray) -> np.ndarray:
    """What the scene layer passes: the stop line and the light state."""
    out = annotate.draw_polyline(image, STOP_LINE, closed=False, label="sl1")
    return annotate.draw_light_badge(out, "red", 0.7)


def make_builder(out_root: Path, key: Ed25519PrivateKey, **config: Any) -> EvidenceBuilder:
    return EvidenceBuilder(
        "edge-01",
        key,
        out_root,
        scene_version=SCENE_SHA,
        models=MODELS,
        location={"lat": 21.0245, "lon": 105.8123},
        district="Đống Đa",
        ts_origin=TS_ORIGIN,
        config=EvidenceConfig(**config),
    )


def run(
    builder: EvidenceBuilder,
    frames: Sequence[Frame],
    events: dict[int, ViolationEvent],
    *,
    lag: int = 0,
    overlay: Callable[[np.ndarray], np.ndarray] | None = scene_overlay,
    close: bool = True,
) -> list[BuildResult]:
    """Feed `frames`; each event is added `lag` frames after its own frame (as the rules would)."""
    results: list[BuildResult] = []
    for f in frames:
        results += builder.on_frame(f, tracks_at(f.index))
        for ev in [e for e in events.values() if e.frame_index + lag == f.index]:
            crop = f.image[360:380, 225:265] if lag == 0 else None
            builder.add_event(ev, plate=PLATE, signal=SIGNAL, plate_crop=crop, overlay=overlay)
    if close:
        results += builder.close()
    return results


def red_fraction(image: np.ndarray, box: Sequence[float], left: bool = True) -> float:
    """Share of the pixels on the top (and left) edges of `box` that are the vehicle red."""
    x1, y1, x2, y2 = (round(v) for v in box)
    parts = [image[y1, x1 + 4 : x2 - 4]] + ([image[y1 + 4 : y2 - 4, x1]] if left else [])
    edge = np.concatenate(parts).astype(int)
    b, g, r = edge[:, 0], edge[:, 1], edge[:, 2]
    return float(np.mean((r > 170) & (g < 90) & (b < 90)))


def yellow_fraction(image: np.ndarray) -> float:
    """Share of the pixels along the stop line that are the scene yellow."""
    (x0, y0), (x1, y1) = STOP_LINE
    xs = np.linspace(x0 + 30, x1 - 30, 50)
    ys = y0 + (xs - x0) * (y1 - y0) / (x1 - x0)
    px = image[np.round(ys).astype(int), np.round(xs).astype(int)].astype(int)
    return float(np.mean((px[:, 2] > 170) & (px[:, 1] > 170) & (px[:, 0] < 110)))


def imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return np.asarray(image)


def read_video(path: Path) -> tuple[list[np.ndarray], float, str]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    cap.release()
    return frames, fps, "".join(chr((code >> (8 * k)) & 0xFF) for k in range(4))


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def frames(hanoi_clip: Path) -> list[Frame]:
    return clip_frames(hanoi_clip, N_FRAMES, CAMERA)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def built(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[BuildResult], ViolationEvent]:
    """One package built the production way (worker thread, defaults)."""
    out_root = tmp_path_factory.mktemp("evidence")
    event = make_event(frames)
    results = run(make_builder(out_root, key), frames, {EVENT_FRAME: event})
    return out_root, results, event


# ------------------------------------------------------------------------------ the package


def test_package_is_complete_and_verifies(
    built: tuple[Path, list[BuildResult], ViolationEvent], key: Ed25519PrivateKey
) -> None:
    out_root, results, event = built
    assert [(r.event_id, r.status) for r in results] == [(event.event_id, "written")]
    folder = out_root / event.event_id
    assert results[0].path == folder
    assert sorted(p.name for p in out_root.iterdir()) == [event.event_id]  # no temp folder left
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "clip.mp4",
        "manifest.json",
        "manifest.sig",
        "plate.jpg",
        "still_after.jpg",
        "still_at.jpg",
        "still_before.jpg",
    ]
    manifest = verify_package(folder, key.public_key())
    assert manifest["event_id"] == event.event_id
    assert manifest["frame_index"] == EVENT_FRAME and manifest["ts"] == event.ts
    assert manifest["box_xyxy"] == list(event.box_xyxy)
    assert manifest["legal_reference"] == event.legal_reference
    assert manifest["plate"]["alternatives"] == [["29-X1 234.56", 0.91]]
    assert manifest["signal"] == SIGNAL
    assert manifest["models"] == MODELS and manifest["scene_version"] == SCENE_SHA
    assert manifest["district"] == "Đống Đa" and manifest["device_id"] == "edge-01"
    assert manifest["occurred_at"] == "2022-09-25T09:15:45.000Z"  # origin + 5.0 s, in UTC
    kinds = {f["kind"]: f["media_type"] for f in manifest["files"]}
    assert kinds == {
        "still_before": "image/jpeg",
        "still_at": "image/jpeg",
        "still_after": "image/jpeg",
        "plate": "image/jpeg",
        "clip": "video/mp4",
    }
    assert check_package(folder, key.public_key()).ok


def test_stills_show_the_box_and_the_scene(built: tuple[Path, list[BuildResult], ViolationEvent]) -> None:
    out_root, _, event = built
    folder = out_root / event.event_id
    at = imread(folder / "still_at.jpg")
    assert at.shape[1] == 640 and at.shape[0] > 480  # caption strip appended below the frame
    assert red_fraction(at, event.box_xyxy) > 0.8
    # Before and after: about 1 s away (6 frames), with the track's box of THAT frame.
    for name, index in (("still_before.jpg", EVENT_FRAME - 6), ("still_after.jpg", EVENT_FRAME + 6)):
        still = imread(folder / name)
        assert red_fraction(still, box_at(index)) > 0.8, name
        assert red_fraction(still, event.box_xyxy, left=False) < 0.3, name  # not the event frame's box
        assert yellow_fraction(still) > 0.8, name
    assert yellow_fraction(at) > 0.8
    # Only the offending vehicle is drawn (track 99 is another road user).
    assert red_fraction(at, (500.0, 100.0, 540.0, 160.0)) < 0.2


def test_plate_crop_is_enlarged_not_altered(
    built: tuple[Path, list[BuildResult], ViolationEvent], frames: list[Frame]
) -> None:
    out_root, _, event = built
    plate = imread(out_root / event.event_id / "plate.jpg")
    crop = frames[EVENT_FRAME].image[360:380, 225:265]
    assert plate.shape == (100, 200, 3)  # 20 px high -> x5 to reach 96 px
    # Every 5x5 block is one camera pixel (up to JPEG error).
    back = cv2.resize(plate, (40, 20), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - crop.astype(int)).mean() < 4


def test_clip_covers_pre_and_post_with_the_box(
    built: tuple[Path, list[BuildResult], ViolationEvent], frames: list[Frame]
) -> None:
    out_root, results, event = built
    clip, fps, codec = read_video(out_root / event.event_id / "clip.mp4")
    assert codec == "FMP4"  # mp4v, the default
    assert fps == pytest.approx(6.0, abs=0.01)
    assert abs(len(clip) - (3.0 + 3.0) * 6.0) <= 1
    assert results[0].frames == len(clip)
    # Frame k of the clip is camera frame 12 + k (pre 3 s = 18 frames before frame 30).
    k = EVENT_FRAME - 18
    at = clip[EVENT_FRAME - k]
    assert at.shape[:2] == imread(out_root / event.event_id / "still_at.jpg").shape[:2]
    assert red_fraction(at, event.box_xyxy) > 0.6
    assert red_fraction(clip[0], box_at(k)) > 0.6
    assert yellow_fraction(clip[EVENT_FRAME - k]) < 0.2  # no scene overlay in the clip
    # Pixels match the camera frame away from the drawing (mp4v is lossy: compare loosely).
    assert (
        np.abs(at[:200, 300:600].astype(int) - frames[EVENT_FRAME].image[:200, 300:600].astype(int)).mean()
        < 6
    )


@pytest.mark.parametrize(
    "name", ["still_before.jpg", "still_at.jpg", "still_after.jpg", "plate.jpg", "clip.mp4", "manifest.json"]
)
def test_tampered_built_package_fails(
    built: tuple[Path, list[BuildResult], ViolationEvent], key: Ed25519PrivateKey, tmp_path: Path, name: str
) -> None:
    out_root, _, event = built
    copy = Path(shutil.copytree(out_root / event.event_id, tmp_path / event.event_id))
    verify_package(copy, key.public_key())
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x20
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(EvidenceError):
        verify_package(copy, key.public_key())
    assert not check_package(copy, key.public_key()).ok


# ------------------------------------------------------------------------------ behaviour


def test_same_event_twice_gives_one_package(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    event = make_event(frames)
    window = frames[10:52]
    first = run(make_builder(tmp_path, key, background=False), window, {EVENT_FRAME: event})
    folder = tmp_path / event.event_id
    manifest = (folder / "manifest.json").read_bytes()
    # Re-running the video: same event id, a new builder. Nothing is written again.
    again = run(make_builder(tmp_path, key, background=False), window, {EVENT_FRAME: event})
    assert [r.status for r in first] == ["written"]
    assert [r.status for r in again] == ["exists"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [event.event_id]
    assert (folder / "manifest.json").read_bytes() == manifest
    # The same event reported twice to one builder (while it is pending) is built once.
    other = tmp_path / "other"
    builder = make_builder(other, key)
    results = run(builder, frames[10:31], {}, close=False)
    builder.add_event(event)
    builder.add_event(event)
    results += run(builder, frames[31:52], {})
    assert [r.status for r in results] == ["written"]
    assert [p.name for p in other.iterdir()] == [event.event_id]


_CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from streams.frame import Frame
    from violations.evidence import EvidenceBuilder, EvidenceConfig
    from violations.types import ViolationEvent

    out = Path(sys.argv[1])
    cfg = EvidenceConfig(pre_s=1.0, post_s=1.0, background=False)
    b = EvidenceBuilder("edge-01", Ed25519PrivateKey.generate(), out, scene_version="5" * 64, config=cfg)
    ev = ViolationEvent(sys.argv[2], "red_light", "x", "cam", 1, 6, 1.0, "car", (10.0, 10.0, 50.0, 50.0), {})

    def crash(image):
        # The power goes off while the stills are being written.
        os._exit(3)

    for i in range(20):
        b.on_frame(Frame(np.full((120, 160, 3), i, np.uint8), i, i / 6.0, "cam"))
        if i == 6:
            b.add_event(ev, overlay=crash)
    """
)


def test_crash_leaves_only_a_temp_folder_that_recover_removes(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    event = make_event(frames)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _CRASHING_CHILD, str(tmp_path), event.event_id],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [f".tmp-{event.event_id}"]
    assert not (tmp_path / event.event_id).exists()

    builder = make_builder(tmp_path, key, background=False)
    assert builder.recover() == [tmp_path / f".tmp-{event.event_id}"]
    assert list(tmp_path.iterdir()) == []
    results = run(builder, frames[20:45], {EVENT_FRAME: event})
    assert [r.status for r in results] == ["written"]
    verify_package(tmp_path / event.event_id, key.public_key())
    assert builder.recover() == []  # a complete package is never touched


def test_flush_at_end_of_stream_completes_pending(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    late = make_event(frames, index=57)  # 3 s after it would be frame 75: the stream ends at 59
    builder = make_builder(tmp_path, key)
    results = run(builder, frames, {57: late}, close=False)
    assert results == [] and builder.pending_count == 1
    assert not (tmp_path / late.event_id).exists()
    results = builder.close()
    assert [r.status for r in results] == ["written"]
    manifest = verify_package(tmp_path / late.event_id, key.public_key())
    clip, _, _ = read_video(tmp_path / late.event_id / "clip.mp4")
    assert len(clip) == 59 - (57 - 18) + 1  # 3 s before, what there was after
    assert manifest["frame_index"] == 57
    assert builder.pending_count == 0


def test_event_added_late_still_gets_its_pre_roll(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    event = make_event(frames)
    results = run(make_builder(tmp_path, key, background=False), frames, {EVENT_FRAME: event}, lag=5)
    assert [r.status for r in results] == ["written"]
    clip, _, _ = read_video(tmp_path / event.event_id / "clip.mp4")
    assert abs(len(clip) - 36) <= 1
    at = imread(tmp_path / event.event_id / "still_at.jpg")
    assert red_fraction(at, event.box_xyxy) > 0.8
    assert not (tmp_path / event.event_id / "plate.jpg").exists()  # no crop given


def test_time_going_back_finishes_pending(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    event = make_event(frames)
    builder = make_builder(tmp_path, key, background=False)
    results = run(builder, frames[:36], {EVENT_FRAME: event}, close=False)
    assert results == []
    # The file loops: time starts again from 0.
    results = builder.on_frame(frames[0], tracks_at(0))
    assert [r.status for r in results] == ["written"]
    clip, _, _ = read_video(tmp_path / event.event_id / "clip.mp4")
    assert len(clip) == 36 - 12
    assert len(builder.ring) == 1
    builder.close()


def test_failed_build_leaves_nothing(frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path) -> None:
    def broken(image: np.ndarray) -> np.ndarray:
        raise ValueError("scene drawing broke")

    event = make_event(frames)
    builder = make_builder(tmp_path, key)
    results = run(builder, frames[10:50], {EVENT_FRAME: event}, overlay=broken)
    assert [(r.status, r.error) for r in results] == [("failed", "ValueError: scene drawing broke")]
    assert list(tmp_path.iterdir()) == []
    assert builder.counts == {"written": 0, "exists": 0, "failed": 1}


@pytest.mark.parametrize(
    ("change", "plate", "crop", "message"),
    [
        ({"event_id": "not-a-uuid"}, None, None, "'event_id'"),
        ({"rule": "jaywalking"}, None, None, "'rule'"),
        ({"box_xyxy": (10.0, 10.0, 5.0, 50.0)}, None, None, "box_xyxy"),
        ({"details": {"line": {1, 2}}}, None, None, "not canonical JSON"),
        ({}, {**PLATE, "lines": 3}, None, "'plate.lines'"),
        ({}, {**PLATE, "extra": 1}, None, "'plate.extra'"),
        ({}, None, np.zeros((10, 20), np.float32), "plate_crop"),
        ({}, None, np.zeros((0, 20, 3), np.uint8), "plate_crop"),
    ],
)
def test_add_event_rejects_bad_input_at_once(
    frames: list[Frame],
    key: Ed25519PrivateKey,
    tmp_path: Path,
    change: dict[str, Any],
    plate: dict[str, Any] | None,
    crop: np.ndarray | None,
    message: str,
) -> None:
    builder = make_builder(tmp_path, key)
    builder.on_frame(frames[EVENT_FRAME])
    with pytest.raises(EvidenceError, match=message):
        builder.add_event(make_event(frames, **change), plate=plate, plate_crop=crop)
    assert builder.pending_count == 0
    assert builder.close() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scene_version": "abc"}, "'scene_version'"),
        ({"models": [{"name": "m"}]}, "'models.0.sha256'"),
        ({"location": {"lat": 200.0, "lon": 0.0}}, "'location.lat'"),
    ],
)
def test_builder_rejects_bad_identity_at_start(
    key: Ed25519PrivateKey, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"scene_version": SCENE_SHA, **kwargs}
    with pytest.raises(EvidenceError, match=message):
        EvidenceBuilder("edge-01", key, tmp_path, **args)


def test_vp9_clip_is_written_when_asked(frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path) -> None:
    """VP9 in MP4 is the browser-playable choice of this OpenCV build (no H.264 encoder in the wheel)."""
    event = make_event(frames)
    builder = make_builder(tmp_path, key, pre_s=1.0, post_s=1.0, clip_codec="vp09", background=False)
    results = run(builder, frames[20:40], {EVENT_FRAME: event})
    assert [r.status for r in results] == ["written"]
    clip, fps, codec = read_video(tmp_path / event.event_id / "clip.mp4")
    assert codec.lower() in ("vp09", "vp90")
    assert len(clip) == 13 and fps == pytest.approx(6.0, abs=0.01)
    verify_package(tmp_path / event.event_id, key.public_key())


# ------------------------------------------------------------------------------ ring buffer


def _entry(ts: float, shape: tuple[int, int] = (4, 4), index: int = 0) -> RingEntry:
    return RingEntry(np.zeros((*shape, 3), np.uint8), index, ts)


@pytest.mark.parametrize(
    ("max_age_s", "max_frames", "max_bytes", "n", "kept"),
    [
        (3.0, 1000, 10**9, 60, 19),  # 6 fps: 3 s + the newest frame
        (3.0, 10, 10**9, 60, 10),  # frame cap
        (3.0, 1000, 48 * 5, 60, 5),  # byte cap: 48 B a frame
        (0.0, 1000, 10**9, 60, 1),
        (3.0, 1000, 1, 60, 1),  # the newest frame always stays
    ],
)
def test_ring_bounds(max_age_s: float, max_frames: int, max_bytes: int, n: int, kept: int) -> None:
    ring = FrameRing(max_age_s, max_frames, max_bytes)
    for i in range(n):
        ring.append(_entry(i / 6.0, index=i))
    assert len(ring) == kept
    assert ring.nbytes == kept * 48
    assert [e.index for e in ring] == list(range(n - kept, n))
    assert ring.newest_ts == pytest.approx((n - 1) / 6.0)


def test_ring_since_and_clear() -> None:
    ring = FrameRing(10.0, 100, 10**9)
    for i in range(12):
        ring.append(_entry(i / 6.0, index=i))
    assert [e.index for e in ring.since(1.0)] == list(range(6, 12))
    ring.clear()
    assert len(ring) == 0 and ring.nbytes == 0 and ring.oldest_ts is None


@pytest.mark.parametrize(("args", "message"), [((-1.0, 10, 10), "max_age_s"), ((1.0, 0, 10), "max_frames")])
def test_ring_rejects_bad_limits(args: tuple[float, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrameRing(*args)


@pytest.mark.parametrize(
    ("fps", "width", "height", "frames_kept", "megabytes"),
    [
        (6.0, 640, 480, 31, 28.6),  # 5 s (pre 3 s + lag 2 s) + 1 frame
        (30.0, 1064, 720, 151, 347.0),
    ],
)
def test_ring_memory_of_the_default_window(
    key: Ed25519PrivateKey,
    tmp_path: Path,
    fps: float,
    width: int,
    height: int,
    frames_kept: int,
    megabytes: float,
) -> None:
    """The default ring (pre 3 s + lag 2 s, raw frames) at the two camera sizes the project meets,
    measured with tracemalloc: memory held is the frames in the window, nothing more."""
    builder = make_builder(tmp_path, key)
    tracemalloc.start()
    try:
        for i in range(int(fps * 8)):
            builder.on_frame(Frame(np.full((height, width, 3), i % 251, np.uint8), i, i / fps, CAMERA))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    frame_bytes = width * height * 3
    assert len(builder.ring) == frames_kept
    assert builder.ring.nbytes == frames_kept * frame_bytes
    assert builder.ring.nbytes / 1e6 == pytest.approx(megabytes, abs=0.1)
    assert held < builder.ring.nbytes + 2 * frame_bytes


def test_ring_memory_cap_shortens_the_window(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    builder = make_builder(tmp_path, key, ring_max_mb=64.0)
    frame_bytes = 1064 * 720 * 3
    for i in range(120):
        builder.on_frame(Frame(np.full((720, 1064, 3), 1, np.uint8), i, i / 30.0, CAMERA))
    assert builder.ring.nbytes <= 64 * 1024 * 1024
    assert len(builder.ring) == (64 * 1024 * 1024) // frame_bytes


# ------------------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("ts", "fps", "slots"),
    [
        ([0.0], 1.0, [0]),
        ([0.0, 0.5, 1.0, 1.5], 2.0, [0, 1, 2, 3]),
        ([0.0, 0.5, 1.5, 2.0], 2.0, [0, 1, 1, 2, 3]),  # a dropped frame repeats the previous one
        ([0.0, 0.52, 0.98, 1.51], 1 / 0.52, [0, 1, 2, 3]),  # jitter does not add or drop slots
        ([0.0, 0.5, 0.5, 1.0], 2.0, [0, 2, 3]),  # duplicate timestamps: the later frame
    ],
)
def test_clip_schedule(ts: list[float], fps: float, slots: list[int]) -> None:
    got_fps, got = clip_schedule(ts)
    assert got_fps == pytest.approx(fps)
    assert got == slots


def test_pick_stills() -> None:
    entries = [_entry(i / 6.0, index=10 + i) for i in range(37)]
    before, at, after = pick_stills(entries, frame_index=28, ts=18 / 6.0, offset_s=1.0)
    assert (before.index, at.index, after.index) == (22, 28, 34)
    # Near the edges: the earliest / latest frame.
    before, at, after = pick_stills(entries[16:22], frame_index=28, ts=18 / 6.0, offset_s=1.0)
    assert (before.index, at.index, after.index) == (26, 28, 31)
    # The event frame is missing: the nearest in time.
    before, at, after = pick_stills(entries[:18] + entries[19:], frame_index=28, ts=18.1 / 6.0, offset_s=1.0)
    assert at.index == 29
    with pytest.raises(ValueError, match="no frames"):
        pick_stills([], 0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("shape", "min_height", "factor"),
    [((20, 40, 3), 96, 5), ((96, 200, 3), 96, 1), ((5, 10, 3), 96, 8), ((16, 30), 64, 4)],
)
def test_upscale_plate_is_nearest_integer(shape: tuple[int, ...], min_height: int, factor: int) -> None:
    crop = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    big = upscale_plate(crop, min_height)
    assert big.shape[:2] == (shape[0] * factor, shape[1] * factor)
    colour = crop if crop.ndim == 3 else np.repeat(crop[:, :, None], 3, axis=2)
    assert np.array_equal(big[::factor, ::factor], colour)
    assert np.array_equal(big[factor - 1 :: factor, factor - 1 :: factor], colour)


def test_box_of_finds_the_track() -> None:
    entry = RingEntry(np.zeros((4, 4, 3), np.uint8), 0, 0.0, tracks_at(EVENT_FRAME))
    assert entry.box_of(TRACK) == box_at(EVENT_FRAME)
    assert entry.box_of(12345) is None
    assert RingEntry(np.zeros((4, 4, 3), np.uint8), 0, 0.0).box_of(TRACK) is None


def test_drawing_is_pure_and_draws() -> None:
    image = np.full((480, 640, 3), 128, np.uint8)
    original = image.copy()
    boxed = annotate.draw_vehicle(image, (100.0, 100.0, 200.0, 220.0), "#7 motorcycle")
    lined = annotate.draw_polyline(image, [(10, 300), (600, 320)], closed=False, label="sl1")
    zoned = annotate.draw_polyline(image, [(10, 10), (60, 10), (60, 60)], closed=True)
    badge = annotate.draw_light_badge(image, "red", 6.2)
    captioned = annotate.add_caption(image, ["line one", "line two"])
    assert np.array_equal(image, original)
    assert tuple(boxed[150, 100]) == annotate.VEHICLE_COLOR
    assert tuple(lined[310, 305]) == annotate.SCENE_COLOR
    assert tuple(zoned[35, 60]) == annotate.SCENE_COLOR
    assert np.any(np.all(badge[:40, -200:] == annotate.LIGHT_COLORS["red"], axis=2))
    assert captioned.shape[0] > 480 and captioned.shape[0] % 2 == 0
    assert np.array_equal(captioned[:480], image)
    assert annotate.pad_even(np.zeros((5, 7, 3), np.uint8)).shape == (6, 8, 3)
    with pytest.raises(ValueError, match="box_xyxy"):
        annotate.draw_vehicle(image, (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="points_xy"):
        annotate.draw_polyline(image, [(1, 2)], closed=False)


def test_manifest_of_built_package_parses(built: tuple[Path, list[BuildResult], ViolationEvent]) -> None:
    out_root, _, event = built
    raw = (out_root / event.event_id / "manifest.json").read_bytes()
    assert parse_manifest(raw)["event_id"] == event.event_id
    assert "Đống Đa".encode() in raw  # UTF-8, not \\u escapes
