"""The frame clock steps while the edge pipeline runs (NTP corrects a box that booted with a wrong
clock, an installer sets it by hand): the real pipeline (ByteTrack tracker, track store, light
reader, rules, evidence builder, plate thread) on synthetic frames with scripted detections, passed
to `EdgePipeline.step` as a detector batch would be.

Each frame is flat grey, darker before the step than after it, so every still and clip frame of an
evidence package tells which side of the step it was taken on; the light's ROI is painted red or
green. Frames are stepped much faster than real time, so frame time runs ahead of the monotonic
clock at a step forward by nearly the whole step (the steps here are 2 s or more).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.violations import COCO, Drive, make_scene, moving
from violations.scene import Scene

T0 = 1_750_000_000.0  # epoch seconds: live frames carry the wall clock
FPS = 10.0
BEFORE, AFTER = 60, 180  # grey level of the frames before / after the step

ONE_WAY = [{"id": "ow1", "polygon": [[100, 150], [540, 150], [540, 470], [100, 470]], "direction": "up"}]
THROUGH = [(0.0, 320.0, 420.0), (4.5, 320.0, 150.0)]  # up over the stop line (y = 300), on through


@pytest.fixture(scope="module")
def detector() -> Iterator[Any]:
    """The real detector (loaded once); the tests hand each frame's detections to the pipeline."""
    from detector.yolo_onnx import YoloOnnxDetector
    from phatnguoi.config import CameraConfig

    yield YoloOnnxDetector(CameraConfig().detector)


def _pipeline(
    tmp: Path,
    scene: Scene,
    detector: Any,
    *,
    plates: bool = False,
    tracker: dict[str, float] | None = None,
    **kw: Any,
) -> Any:
    from detector.config import TrackerConfig
    from phatnguoi.config import CameraConfig
    from phatnguoi.detect import DetectJob
    from phatnguoi.pipeline import EdgePipeline
    from violations.evidence import EvidenceConfig
    from violations.manifest import generate_keypair, load_private_key

    generate_keypair(tmp / "k.pem", tmp / "k.pub")
    camera = CameraConfig(id=scene.camera_id, tracker=TrackerConfig(**(tracker or {})))
    return EdgePipeline(
        camera,
        scene,
        tmp / "run",
        "edge-t",
        load_private_key(tmp / "k.pem"),
        frame_rate=FPS,
        read_plates=plates,
        job=DetectJob(camera, detector=detector, frame_rate=FPS),
        evidence=EvidenceConfig(background=False),
        **kw,
    )


def _feed(
    pipeline: Any,
    drives: list[Drive],
    offset: Callable[[float], float],
    until: float,
    light: Callable[[float], str | None] = lambda t: None,
    skip: Callable[[float], bool] = lambda t: False,
    tick: Callable[[float], None] = lambda t: None,
) -> list[Any]:
    """Frame k at true time t = k / FPS is stamped ``T0 + t + offset(t)`` (none where `skip`; `tick`
    is told t before the frame is stepped); returns every event."""
    from detector import Detections
    from streams.frame import Frame

    events: list[Any] = []
    first = offset(0.0)
    for k in range(int(until * FPS) + 1):
        t = k / FPS
        if skip(t):
            continue
        image = np.full((480, 640, 3), BEFORE if offset(t) == first else AFTER, np.uint8)
        # a dark head with one lamp lit: red above, green below (a whole ROI of one colour is a vehicle in
        # front of the head, which the reader calls obscured)
        image[10:80, 600:630] = 0
        if (state := light(t)) is not None:
            y = 27 if state == "red" else 63
            image[y - 8 : y + 8, 607:623] = (0, 0, 200) if state == "red" else (0, 200, 0)
        boxes = [d.box(*p) for d in drives if (p := d.at(t)) is not None]
        classes = [COCO[d.cls] for d in drives if d.at(t) is not None]
        dets = Detections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.full(len(boxes), 0.9, np.float32),
            np.asarray(classes, np.int32),
        )
        tick(t)
        events += pipeline.step(Frame(image, k, T0 + t + offset(t), pipeline.scene.camera_id), dets)
    return events


def _sides(package: Path) -> str:
    """'b'/'a' per frame of the package (stills, then the clip): taken before or after the step."""
    import cv2

    def side(image: np.ndarray | None) -> str:
        assert image is not None
        return "a" if float(image[200:260, 20:80].mean()) > (BEFORE + AFTER) / 2 else "b"

    stills = "".join(
        side(cv2.imread(str(package / f"{n}.jpg"))) for n in ("still_before", "still_at", "still_after")
    )
    clip = cv2.VideoCapture(str(package / "clip.mp4"))
    frames = []
    while True:
        ok, image = clip.read()
        if not ok:
            break
        frames.append(side(image))
    clip.release()
    return stills + "|" + "".join(frames)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("step_s", [-5.0, -60.0])
def test_a_ride_against_the_one_way_street_is_fined_after_the_clock_stepped_back(
    tmp_path: Path, detector: Any, step_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A motorbike rides 6 s against a one-way zone; the clock steps back 1.5 s into the ride. The
    tracker skipped every frame dated before its last one (5 s, 60 s: the whole ride) and the rules
    waited for times past the last one read: missed, and after -60 s the track and the vehicle stayed
    after it left. Now tracking and rules restart at the step, the rest of the ride is measured afresh
    and its evidence holds only frames from after the step."""
    pipeline = _pipeline(
        tmp_path, make_scene(wrong_way_zones=ONE_WAY, stop_lines=None, lights=None), detector
    )
    rider = moving(1, (300, 160), (0, 50), 0.0, 6.0, size=(40.0, 80.0))
    with caplog.at_level(logging.WARNING):
        events = _feed(pipeline, [rider], lambda t: step_s if t >= 1.5 else 0.0, 9.0)
    built = pipeline.close()
    assert [e.rule for e in events] == ["wrong_way"]
    assert events[0].ts > T0 + 1.5 + step_s
    assert [b.status for b in built] == ["written"]
    assert _sides(built[0].path).replace("a", "") == "|"  # every frame from after the step
    assert pipeline.engine.vehicle_count == 0 and len(pipeline.job.store) == 0
    (line,) = _warnings(caplog)  # one line names the step
    assert f"frame time stepped {step_s + 0.1:+.3f} s" in line


@pytest.mark.parametrize("step_s", [-5.0, -60.0, 2.0, 60.0])
def test_a_red_light_event_held_at_the_step_is_decided_and_built_from_before_it(
    tmp_path: Path, detector: Any, step_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A car runs the red; its event waits for the light reader (1 s) and then for its plate (plate
    thread) when the clock steps. It used to be built from whatever the ring held when its plate came
    back: after -5 s every frame of it from after the step (another scene, dated 5 s earlier), after
    -60 s no frame at all (package failed), after +2 s a clip with the step's frames spliced in as
    2 s later. Now it is decided, read and built from the frames before the step, once."""
    pipeline = _pipeline(tmp_path, make_scene(), detector, plates=True)
    car = Drive(1, THROUGH, "car", size=(80.0, 60.0))
    with caplog.at_level(logging.WARNING):
        events = _feed(pipeline, [car], lambda t: step_s if t >= 3.5 else 0.0, 8.0, light=lambda t: "red")
    built = pipeline.close()
    assert [e.rule for e in events] == ["red_light"]
    assert events[0].ts == pytest.approx(T0 + 3.0)
    rows = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    assert [json.loads(r)["event_id"] for r in rows] == [events[0].event_id]
    assert [b.status for b in built] == ["written"]
    assert _sides(built[0].path).replace("b", "") == "|"  # every frame from before the step
    assert len(_warnings(caplog)) == 1


@pytest.mark.parametrize("step_s", [2.0, 2.9])
@pytest.mark.parametrize(("cross_s", "fined"), [(1.3, False), (2.0, True)])
def test_a_step_forward_does_not_count_as_time_on_red(
    tmp_path: Path, detector: Any, step_s: float, cross_s: float, fined: bool
) -> None:
    """The light turns red 0.1 s before the clock steps forward. The light reader kept its red start
    through a step of up to 3 s (it does for an unlit lamp's gap), so the step counted as time on red:
    a motorbike whose front crossed 0.4 s into red, within the amber grace (0.5 s), was fined with
    red_for_s 2.4-3.3, and one that crossed 1.1 s into red with red_for_s 3.1-4.0. Now the light is
    read afresh after the step: the first is not fined, the second is, with at most its real time."""
    pipeline = _pipeline(tmp_path, make_scene(), detector)
    rider = Drive(1, [(0.0, 320.0, 300.0 + 150.0 * cross_s), (cross_s + 1.7, 320.0, 300.0 - 150.0 * 1.7)])
    events = _feed(
        pipeline,
        [rider],
        lambda t: step_s if t >= 1.0 else 0.0,
        6.0,
        light=lambda t: "red" if t >= 0.9 else "green",
    )
    pipeline.close()
    if not fined:
        assert events == []
    else:
        assert [e.rule for e in events] == ["red_light"]
        assert events[0].details["red_for_s"] <= cross_s - 0.9


def test_a_step_forward_does_not_count_as_dwell(tmp_path: Path, detector: Any) -> None:
    """A scene that bridges gaps up to 3 s (max_gap_s, lost_track_s): a car parks in a no-parking zone
    (5 s allowed), the clock steps 2.5 s forward 2 s later. The 2.5 s counted as dwell: fined 3.3 s
    after it parked, dwell_s 5.0. Now dwell counts from the step: at least 5 s of it."""
    zone = [
        {
            "id": "np1",
            "kind": "no_parking",
            "polygon": [[100, 150], [540, 150], [540, 470], [100, 470]],
            "max_dwell_s": 5,
            "max_queue_s": 0,
        }
    ]
    scene = make_scene(stop_zones=zone, stop_lines=None, lights=None, tolerances={"max_gap_s": 3.0})
    pipeline = _pipeline(tmp_path, scene, detector, tracker={"lost_track_s": 3.0})
    car = Drive(1, [(0.0, 300.0, 300.0), (12.0, 300.0, 300.0)], "car", size=(80.0, 60.0))
    events = _feed(pipeline, [car], lambda t: 2.5 if t >= 2.0 else 0.0, 12.0)
    pipeline.close()
    assert [e.rule for e in events] == ["illegal_stop"]
    assert events[0].ts - (T0 + 2.0 + 2.5) >= 5.0


def test_a_camera_silent_for_two_seconds_is_no_clock_step(
    tmp_path: Path, detector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames 2 s apart because the camera sent none (the monotonic clock passed 2 s too) are a gap,
    not a step: nothing restarts, the light reader keeps the red it saw before the gap (as it does
    for gaps up to 3 s), and the red-light runner after it is fined as without the gap."""

    def run(silent: bool) -> list[Any]:
        now = [0.0]  # the pipeline steps the frames in real time
        out = tmp_path / ("silent" if silent else "plain")
        out.mkdir()
        pipeline = _pipeline(out, make_scene(), detector, monotonic=lambda: now[0])
        car = Drive(1, [(2.5 + t, x, y) for t, x, y in THROUGH], "car", size=(80.0, 60.0))
        events = _feed(
            pipeline,
            [car],
            lambda t: 0.0,
            9.0,
            light=lambda t: "red",
            skip=(lambda t: 0.2 <= t < 2.2) if silent else (lambda t: False),
            tick=lambda t: now.__setitem__(0, t),
        )
        pipeline.close()
        return events

    plain = run(silent=False)
    with caplog.at_level(logging.WARNING):
        silent = run(silent=True)
    assert _warnings(caplog) == []
    assert [e.rule for e in plain] == ["red_light"]
    assert [(e.rule, e.ts, e.details["red_for_s"]) for e in silent] == [
        (e.rule, e.ts, e.details["red_for_s"]) for e in plain
    ]


def test_detection_and_tracking_alone_keep_tracking_after_the_clock_stepped_back(
    detector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """`phatnguoi detect` runs the same `DetectJob` loop without the rules: after a step back of 5 s
    the tracker skipped every frame until its clock caught up (no id for 5 s: the rider vanished
    from tracks.jsonl) and its track stayed open. Now tracking restarts at the step: the track before
    it ends there and the rider has an id again two frames later."""
    from detector import Detections
    from phatnguoi.config import CameraConfig
    from phatnguoi.detect import DetectJob
    from streams.frame import Frame

    job = DetectJob(CameraConfig(), detector=detector, frame_rate=FPS)
    rider = moving(1, (300, 160), (0, 50), 0.0, 6.0, size=(40.0, 80.0))
    image = np.zeros((480, 640, 3), np.uint8)
    tracked_after: list[int] = []
    ended: list[int] = []
    with caplog.at_level(logging.WARNING):
        for k in range(61):
            t = k / FPS
            x1, y1, x2, y2 = rider.box(*rider.at(t))  # type: ignore[misc]
            dets = Detections(
                np.array([[x1, y1, x2, y2]], np.float32), np.array([0.9], np.float32), np.array([3], np.int32)
            )
            tracked, _ = job.step(Frame(image, k, T0 + t - (5.0 if t >= 3.0 else 0.0), "cam0"), dets)
            ended += [len(track) for track in job.pop_finished()]
            if t >= 3.0:
                tracked_after.append(int(tracked.data["observed"].sum()))
    assert tracked_after[:2] == [0, 1]  # a new id needs two detections (min_hits)
    assert all(n == 1 for n in tracked_after[1:])
    assert ended == [29]  # the rows before the step, ended at it
    assert len(_warnings(caplog)) == 1
