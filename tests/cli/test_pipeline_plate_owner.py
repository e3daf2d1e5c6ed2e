"""The plate in a violation's evidence is the violator's own, or unreadable: never a neighbour's.

The real pipeline (ByteTrack, light reader on the real frames, rules, plate detector, OCR, evidence
builder) on real frames of the Giang Vo clip at the onset of red, with scripted vehicle boxes passed
to `EdgePipeline.step` as a detector batch would be, and real plate crops from the shared ``vn_gold``
set pasted onto the frames at run time: A (34-AA 119.50) crosses on red, B (59-T1 035.06) is a
neighbour whose plate shows in A's box, or the vehicle the tracker followed under A's id before it
handed the id to A.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from tests.conftest import HANOI_CLIP, REPO_ROOT, SHARED_DATA, need

if TYPE_CHECKING:
    from phatnguoi.pipeline import EdgePipeline

GOLD = SHARED_DATA / "plates" / "vn_gold"
HAIPHONG_CLIP = SHARED_DATA / "videos" / "haiphong_intersection_daytime_plates.mp4"
PLATE_A, PLATE_B, PLATE_C = "34AA11950", "59T103506", "18F140249"  # vn0002, vn0007, vn0020
START = 60  # frame 60 of the clip is 10 s in: red since 4.3 s
FPS = 6.0
Box = tuple[float, float, float, float]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """30 real frames of the Giang Vo clip from 10 s on (the light is red)."""
    import cv2

    capture = cv2.VideoCapture(str(need(HANOI_CLIP)))
    capture.set(cv2.CAP_PROP_POS_FRAMES, START)
    out = []
    for _ in range(30):
        ok, image = capture.read()
        assert ok
        out.append(image)
    capture.release()
    return out


def _plate(name: str, width: int) -> np.ndarray:
    """A real plate photo from vn_gold, resized to `width` pixels."""
    import cv2

    crop = cv2.imread(str(need(GOLD / name)))
    assert crop is not None
    return cv2.resize(
        crop, (width, round(width * crop.shape[0] / crop.shape[1])), interpolation=cv2.INTER_AREA
    )


@pytest.fixture(scope="module")
def plates() -> dict[str, np.ndarray]:
    return {
        PLATE_A: _plate("vn0002.jpg", 40),
        PLATE_B: _plate("vn0007.jpg", 56),
        PLATE_C: _plate("vn0020.jpg", 76),
    }


@pytest.fixture(scope="module")
def vehicle_detector() -> Iterator[Any]:
    """The Giang Vo camera's detector, loaded once: the tests pass the detections themselves."""
    from phatnguoi.config import load_camera
    from phatnguoi.detect import build_detector

    yield build_detector(
        load_camera(REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml").detector
    )


def _pipeline(out: Path, detector: Any) -> EdgePipeline:
    from phatnguoi.config import load_camera
    from phatnguoi.detect import DetectJob
    from phatnguoi.pipeline import EdgePipeline
    from violations.evidence import EvidenceConfig
    from violations.manifest import generate_keypair, load_private_key
    from violations.scene import load_scene

    out.mkdir(parents=True, exist_ok=True)
    generate_keypair(out / "k.pem", out / "k.pub")
    camera = load_camera(REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml")
    return EdgePipeline(
        camera,
        load_scene(REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml"),
        out / "run",
        "edge-t",
        load_private_key(out / "k.pem"),
        frame_rate=FPS,
        ts_origin=1664097340.0,
        async_plates=False,
        job=DetectJob(camera, detector=detector, frame_rate=FPS),
        evidence=EvidenceConfig(background=False),
    )


def _paste(image: np.ndarray, plate: np.ndarray, cx: float, bottom: float) -> None:
    h, w = plate.shape[:2]
    x, y = round(cx - w / 2), round(bottom - h)
    image[y : y + h, x : x + w] = plate


Scripted = Callable[[int, np.ndarray], list[Box]]


def _drive(tmp: Path, detector: Any, frames: list[np.ndarray], script: Scripted) -> list[dict[str, Any]]:
    """Feed the frames with the boxes `script(k, image)` gives (it pastes the plates); the events.jsonl
    rows of the run, each with its evidence manifest under "manifest"."""
    from detector import Detections
    from streams.frame import Frame

    pipeline = _pipeline(tmp, detector)
    motorcycle = list(pipeline.job.detector.class_names).index("motorcycle")
    for k, background in enumerate(frames):
        image = background.copy()
        boxes = np.asarray(script(k, image), np.float32).reshape(-1, 4)
        n = len(boxes)
        detections = Detections(boxes, np.full(n, 0.9, np.float32), np.full(n, motorcycle, np.int32))
        pipeline.step(Frame(image, START + k, (START + k) / FPS, pipeline.camera.id), detections)
    pipeline.close()
    rows = [json.loads(line) for line in (tmp / "run" / "events.jsonl").read_text().splitlines()]
    for row in rows:
        row["manifest"] = json.loads((Path(row["evidence"]) / "manifest.json").read_text())
    return rows


def _plate_text(row: dict[str, Any]) -> str | None:
    plate = row["manifest"]["plate"]
    return None if plate is None else plate["text"]


def _assert_crop_where_read(row: dict[str, Any], plate: str) -> None:
    """The manifest says which frame and plate box the crop comes from: one of the frames read, a box
    on the violator's box there."""
    read = row["manifest"]["details"]["plate_read"]
    assert read["frame_index"] in read["frames"]
    assert read["frame_index"] <= row["frame_index"]
    px1, py1, px2, py2 = read["plate_xyxy"]
    vx1, vy1, vx2, vy2 = read["vehicle_xyxy"]
    assert vx1 <= (px1 + px2) / 2 <= vx2 and vy1 <= (py1 + py2) / 2 <= vy2 + 0.1 * (vy2 - vy1)
    assert any(f["kind"] == "plate" for f in row["manifest"]["files"])
    assert row["manifest"]["plate"]["text"] == plate


def test_a_neighbour_alongside_does_not_give_the_violator_its_plate(
    tmp_path: Path, vehicle_detector: Any, frames: list[np.ndarray], plates: dict[str, np.ndarray]
) -> None:
    """A crosses on red while B rides alongside, a little nearer the camera: B's box covers A's
    bottom edge and A's own plate is hidden, B's plate shows in A's box (as motorbikes 13 and 16 of
    the Hai Phong clip, frame 120). B stops at the line; A rides on, its plate visible. A's evidence
    used to carry B's plate, 59-T1 035.06 at 0.998."""

    def script(k: int, image: np.ndarray) -> list[Box]:
        ya = max(440 - 12 * k, 200)
        a = (300.0, ya - 140.0, 360.0, float(ya))
        yb = ya + 30 if k <= 6 else 440 + 30 - 12 * 6  # alongside, then stopped behind the line
        b = (280.0, yb - 150.0, 345.0, float(yb))
        _paste(image, plates[PLATE_B], (b[0] + b[2]) / 2, yb - 8)
        if k > 6:
            _paste(image, plates[PLATE_A], (a[0] + a[2]) / 2, ya - 6)
        return [a, b]

    rows = _drive(tmp_path, vehicle_detector, frames, script)
    (row,) = [r for r in rows if r["rule"] == "red_light"]
    assert _plate_text(row) in (PLATE_A, None)
    if _plate_text(row) == PLATE_A:
        _assert_crop_where_read(row, PLATE_A)


@pytest.mark.parametrize(
    ("gold", "plate", "cover", "later"),
    [
        ("vn0007.jpg", PLATE_B, 0.2, True),
        ("vn0002.jpg", PLATE_A, 0.3, True),
        ("vn0007.jpg", PLATE_B, 0.2, False),
        ("vn0002.jpg", PLATE_A, 0.3, False),
    ],
)
def test_a_plate_half_hidden_by_a_vehicle_in_front_is_not_read(
    tmp_path: Path,
    vehicle_detector: Any,
    frames: list[np.ndarray],
    gold: str,
    plate: str,
    cover: float,
    later: bool,
) -> None:
    """A crosses on red with B just in front of it, to its right, covering A's bottom edge and the
    right part of its plate; B stops at the line and A rides on, its whole plate in view (`later`) or
    none of it (a leg, a bag). The half plate used to be read as a valid plate of someone else
    (59-T1 035.0, 34-A 119.55)."""
    full = _plate(gold, 56)

    def script(k: int, image: np.ndarray) -> list[Box]:
        ya = max(440 - 12 * k, 200)
        yb = ya + 30 if k <= 6 else 440 + 30 - 12 * 6
        b = (335.0, yb - 150.0, 400.0, float(yb))
        shown = full.copy()
        if ya > b[1]:  # B's box reaches over A's bottom edge: B hides the right of A's plate
            shown[:, int(shown.shape[1] * (1 - cover)) :] = 30
            _paste(image, shown, 330, ya - 6)
        elif later:
            _paste(image, shown, 330, ya - 6)
        return [(300.0, ya - 140.0, 360.0, float(ya)), b]

    rows = _drive(tmp_path, vehicle_detector, frames, script)
    (row,) = [r for r in rows if r["rule"] == "red_light"]
    assert _plate_text(row) in ((plate, None) if later else (None,))
    if _plate_text(row) == plate:
        _assert_crop_where_read(row, plate)


def test_the_plate_of_a_vehicle_just_behind_is_not_the_violators(
    tmp_path: Path, vehicle_detector: Any, frames: list[np.ndarray], plates: dict[str, np.ndarray]
) -> None:
    """B rides just behind A and a little to its left, its plate showing in the lower part of A's box;
    A's own plate is never readable (a bag hangs over it). Nothing covers A's bottom edge, so every
    frame is read: B's plate, cut by A's box, used to become A's (59-T1 3506, 0.97)."""

    def script(k: int, image: np.ndarray) -> list[Box]:
        ya = max(440 - 12 * k, 200)
        a = (300.0, ya - 140.0, 360.0, float(ya))
        b = (275.0, ya - 25 - 150.0, 335.0, float(ya - 25))
        _paste(image, plates[PLATE_B], (b[0] + b[2]) / 2, b[3] - 8)
        return [a, b]

    rows = _drive(tmp_path, vehicle_detector, frames, script)
    (row,) = [r for r in rows if r["box_xyxy"][0] == 300.0]  # A's violation
    assert _plate_text(row) is None  # the old code read B's, cut by A's box: 59-T1 3506
    assert all(_plate_text(r) in (PLATE_B, None) for r in rows if r is not row)


def test_an_id_handed_over_before_the_crossing_does_not_mix_plates(
    tmp_path: Path, vehicle_detector: Any, frames: list[np.ndarray], plates: dict[str, np.ndarray]
) -> None:
    """The track first follows B (near, large, its plate readable); B is lost behind an occluder as A,
    ahead of it, is detected where B was heading, and ByteTrack hands B's id to A, which then crosses
    on red. Its evidence used to carry B's plate (B's boxes are the largest in the ring)."""

    def script(k: int, image: np.ndarray) -> list[Box]:
        if k < 6:
            yb = 470 - 12 * k
            _paste(image, plates[PLATE_B], 325, yb - 6)
            return [(290.0, yb - 160.0, 360.0, float(yb))]
        ya = max(360 - 12 * (k - 6), 200)
        _paste(image, plates[PLATE_A], 328, ya - 6)
        return [(298.0, ya - 140.0, 358.0, float(ya))]

    rows = _drive(tmp_path, vehicle_detector, frames, script)
    (row,) = [r for r in rows if r["rule"] == "red_light"]
    assert row["track_id"] == 0  # one id throughout: the tracker did hand it over
    assert _plate_text(row) in (PLATE_A, None)
    if _plate_text(row) == PLATE_A:
        _assert_crop_where_read(row, PLATE_A)


@pytest.mark.parametrize("ahead", [25, 40])
def test_an_id_handed_over_between_the_crossing_and_the_violation_leaves_the_plate_unreadable(
    tmp_path: Path,
    vehicle_detector: Any,
    frames: list[np.ndarray],
    plates: dict[str, np.ndarray],
    ahead: int,
) -> None:
    """B crosses the line on red; two frames later the tracker hands its id to A, `ahead` pixels
    ahead of where B was heading, and the violation is established on A. Which of the two the
    violation is is not sure: the plate is neither's. A 40 px step breaks the track: B's side of it,
    read, disagrees. A 25 px step (0.16 of B's height) does not: the frame of the event, read first,
    disagrees with the rest. Both used to carry B's plate."""

    def script(k: int, image: np.ndarray) -> list[Box]:
        if k < 8:
            yb = 420 - 12 * k
            _paste(image, plates[PLATE_B], 325, yb - 6)
            return [(290.0, yb - 160.0, 360.0, float(yb))]
        ya = max(420 - 12 * k - ahead, 150)
        _paste(image, plates[PLATE_A], 328, ya - 6)
        return [(298.0, ya - 140.0, 358.0, float(ya))]

    rows = _drive(tmp_path, vehicle_detector, frames, script)
    (row,) = [r for r in rows if r["rule"] == "red_light"]
    assert row["details"]["crossed_frame_index"] < START + 8 <= row["frame_index"]  # B crossed, A is seen
    assert row["manifest"]["plate"] is not None and _plate_text(row) is None
    read = row["manifest"]["details"]["plate_read"]
    assert read["conflict"] == ("before_break" if ahead == 40 else "at_event")
    assert row["manifest"]["plate"]["alternatives"] == []  # B's plate is not offered to the officer
    assert not any(f["kind"] == "plate" for f in row["manifest"]["files"])


@pytest.mark.parametrize("behind", [66, 4])
def test_an_id_handed_over_after_the_violation_does_not_mix_plates(
    tmp_path: Path,
    vehicle_detector: Any,
    frames: list[np.ndarray],
    plates: dict[str, np.ndarray],
    behind: int,
) -> None:
    """A alone crosses on red and the violation is established; while the event is held for the light
    reader, A is hidden and B, a larger motorbike `behind` pixels behind it, takes over its id: 66 px
    breaks the track; 4 px (A's plate never readable) cannot be told from A's own motion. Its evidence
    used to carry B's plate (read from frames after the event)."""
    established: list[int] = []

    def script(k: int, image: np.ndarray) -> list[Box]:
        ya = 440 - 12 * k
        if not established or k <= established[0]:
            if behind > 10:
                _paste(image, plates[PLATE_A], 328, ya - 6)
            return [(298.0, ya - 140.0, 358.0, float(ya))]
        yb = min(ya + behind, 400) if behind > 10 else max(ya + behind, 200)
        _paste(image, plates[PLATE_B], 325, yb - 6)
        return [(290.0, yb - 160.0, 360.0, float(yb))]

    from detector import Detections
    from streams.frame import Frame

    pipeline = _pipeline(tmp_path, vehicle_detector)
    motorcycle = list(pipeline.job.detector.class_names).index("motorcycle")
    for k, background in enumerate(frames):
        image = background.copy()
        boxes = np.asarray(script(k, image), np.float32).reshape(-1, 4)
        pipeline.step(
            Frame(image, START + k, (START + k) / FPS, pipeline.camera.id),
            Detections(boxes, np.full(1, 0.9, np.float32), np.full(1, motorcycle, np.int32)),
        )
        if not established and pipeline.engine.held:
            established.append(k)  # the rules hold the event for the light reader from here
    pipeline.close()
    assert established
    (line,) = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    row = json.loads(line)
    row["manifest"] = json.loads((Path(row["evidence"]) / "manifest.json").read_text())
    assert row["frame_index"] == START + established[0]
    assert _plate_text(row) in (PLATE_A, None)
    if _plate_text(row) == PLATE_A:
        _assert_crop_where_read(row, PLATE_A)


def test_a_lone_violator_still_gets_its_plate(
    tmp_path: Path, vehicle_detector: Any, frames: list[np.ndarray], plates: dict[str, np.ndarray]
) -> None:
    """Nothing in the way: A crosses on red with its plate in view all along, and its evidence has
    it, with the crop's frame and box."""

    def script(k: int, image: np.ndarray) -> list[Box]:
        ya = max(440 - 12 * k, 200)
        _paste(image, plates[PLATE_A], 328, ya - 6)
        return [(298.0, ya - 140.0, 358.0, float(ya))]

    rows = _drive(tmp_path, vehicle_detector, frames, script)
    (row,) = [r for r in rows if r["rule"] == "red_light"]
    assert _plate_text(row) == PLATE_A
    _assert_crop_where_read(row, PLATE_A)
    assert row["plate"] == row["manifest"]["plate"]


def test_the_plate_crop_shows_the_plate_as_read(
    tmp_path: Path, vehicle_detector: Any, frames: list[np.ndarray], plates: dict[str, np.ndarray]
) -> None:
    """The best-quality view is a larger plate half hidden (18-F1 402.49, unreadable); two smaller
    views read 34-AA 119.50. The crop saved with 34-AA 119.50 used to be the unreadable 18-F1 one."""
    from phatnguoi.pipeline import _PlateView, _PlateViews

    pipeline = _pipeline(tmp_path, vehicle_detector)
    background = frames[0]
    hidden = plates[PLATE_C].copy()
    h, w = hidden.shape[:2]
    hidden[h // 2 :, int(w * 0.5) :] = 40  # a bag or a leg over its lower right
    none = np.zeros((0, 4), np.float32)
    views = []
    for index, plate, bottom, box in (
        (1, hidden, 440, (280, 270, 380, 445)),
        (2, plates[PLATE_A], 400, (290, 260, 370, 405)),
        (3, plates[PLATE_A], 390, (290, 250, 370, 395)),
    ):
        image = background.copy()
        _paste(image, plate, 330, bottom)
        views.append(_PlateView(index, image, np.asarray(box, np.float32), none))
    assert pipeline.scanner is not None
    first = pipeline.scanner.scan_vehicle(views[0].image, views[0].box)
    assert first and all(f.reading.compact is None for f in first)  # the hidden plate is unreadable
    result = pipeline._read_views(_PlateViews(tuple(views), ()))
    pipeline.close()
    assert result.plate is not None and result.plate["text"] == PLATE_A
    assert result.crop is not None and result.source is not None
    assert pipeline.scanner.read_crop(result.crop).reading.compact == PLATE_A
    assert result.source["frame_index"] in (2, 3)


def test_a_plate_in_two_motorbikes_boxes_goes_to_the_one_in_front() -> None:
    """Hai Phong clip, frame 120: motorbike 16's plate lies in the box of motorbike 13 too, which is
    behind it and whose own plate it hides; both used to be given 16's plate."""
    import cv2

    from plates.anpr import PlateScanner

    capture = cv2.VideoCapture(str(need(HAIPHONG_CLIP)))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 120)
    ok, read = capture.read()
    capture.release()
    assert ok
    image = np.asarray(read, np.uint8)
    behind = np.array([322, 374, 388, 532], np.float32)  # the detector's boxes there
    front = np.array([301, 421, 367, 563], np.float32)
    scanner = PlateScanner()
    seen = scanner.detector.detect_in_vehicle(image, behind)
    assert len(seen) >= 1  # the plate of the one in front shows in the box of the one behind
    assert scanner.scan_vehicle(image, behind, front[None, :]) == []
    mine = scanner.scan_vehicle(image, front, behind[None, :])
    assert len(mine) == 1
    x1, _, x2, y2 = mine[0].box_xyxy
    assert front[0] <= (x1 + x2) / 2 <= front[2] and y2 <= front[3]
