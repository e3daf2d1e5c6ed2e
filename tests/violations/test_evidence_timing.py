"""When a violation happened and what its stills show (`violations.evidence`): ``occurred_at`` is the
stop-line crossing (or the start of the offence), not the frame where the rule could establish it; the
stills of a crossing show the vehicle just before the line, just past it and where the event was
established; a box the tracker predicted is drawn dashed and labelled, a frame without the vehicle
says so.

The builder runs on REAL frames of the Hanoi Giảng Võ – Láng Hạ clip (640x480, 6 fps) with a
hand-made track riding up the frame, as in test_evidence.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
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
    LOST_LABEL,
    EvidenceBuilder,
    EvidenceConfig,
    Occurrence,
    RingEntry,
    occurrence,
    pick_crossing_stills,
)
from violations.manifest import verify_package
from violations.types import RuleId, ViolationEvent, event_id

CAMERA = "hn-giangvo-01"
TRACK = 7
EVENT_FRAME = 30
CROSSED_FRAME = 22  # the first frame past the line: the crossing is between frames 21 and 22
N_FRAMES = 48  # 8 s at 6 fps
TS_ORIGIN = 1664097340.0  # 2022-09-25 09:15:40 UTC


def box_at(i: int) -> tuple[float, float, float, float]:
    """The hand-made track: a motorbike riding up the frame, 4 px per frame."""
    dy = (EVENT_FRAME - i) * 4.0
    return (215.0, 285.0 + dy, 275.0, 390.0 + dy)


def tracks_at(i: int, observed: bool = True) -> Detections:
    return Detections(
        xyxy=np.array([box_at(i), (500.0, 100.0, 540.0, 160.0)], np.float32),
        confidence=np.array([0.9, 0.8], np.float32),
        class_id=np.array([3, 2], np.int32),
        tracker_id=np.array([TRACK, 99], np.int64),
        data={"observed": np.array([observed, True])},
    )


def other_tracks_only() -> Detections:
    return Detections(
        xyxy=np.array([(500.0, 100.0, 540.0, 160.0)], np.float32),
        confidence=np.array([0.8], np.float32),
        class_id=np.array([2], np.int32),
        tracker_id=np.array([99], np.int64),
        data={"observed": np.array([True])},
    )


def make_event(
    frames: Sequence[Frame], rule: RuleId = "red_light", index: int = EVENT_FRAME, **details: Any
) -> ViolationEvent:
    ts = frames[index].ts
    return ViolationEvent(
        event_id=event_id(CAMERA, TRACK, rule, ts),
        rule=rule,
        legal_reference="Điểm a khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP",
        camera_id=CAMERA,
        track_id=TRACK,
        frame_index=index,
        ts=ts,
        vehicle_class="motorcycle",
        box_xyxy=box_at(index),
        details=details,
    )


def crossing_details(frames: Sequence[Frame], crossed: int = CROSSED_FRAME) -> dict[str, Any]:
    """What the signal rules write: the crossing interpolated between the frame before and `crossed`."""
    tc = round(frames[crossed - 1].ts + 0.6 * (frames[crossed].ts - frames[crossed - 1].ts), 3)
    return {
        "line_id": "sl1",
        "light_id": "near",
        "signal": "red",
        "red_for_s": 1.45,
        "crossed_at_ts": tc,
        "crossed_frame_index": crossed,
        "front_crossed_at_ts": tc,
        "front_lead_px": 0.0,
        "began_at_ts": tc,
    }


class Builder(EvidenceBuilder):
    """The real builder, remembering its public key to verify what it wrote."""

    def __init__(self, out_root: Path, key: Ed25519PrivateKey, **config: Any) -> None:
        super().__init__(
            "edge-01",
            key,
            out_root,
            scene_version="5" * 64,
            ts_origin=TS_ORIGIN,
            config=EvidenceConfig(**{"background": False, **config}),
        )
        self.public_key = key.public_key()


builder = Builder


def feed(
    b: Builder,
    frames: Sequence[Frame],
    event: ViolationEvent,
    add_at: int,
    tracks: Any = tracks_at,
) -> dict[str, Any]:
    """Feed the frames, add `event` at frame `add_at` (its lag: held, waiting for its plate), build it;
    returns its manifest (verified)."""
    for f in frames:
        b.on_frame(f, tracks(f.index))
        if f.index == add_at:
            b.add_event(event, signal={"state": "red", "red_for_s": 1.45})
    results = b.close()
    assert [r.status for r in results] == ["written"], results
    manifest: dict[str, Any] = verify_package(results[0].path, b.public_key)
    return manifest


def occurred(manifest: dict[str, Any]) -> float:
    t = datetime.fromisoformat(manifest["occurred_at"].replace("Z", "+00:00"))
    return t.timestamp() - TS_ORIGIN


def red_fraction(image: np.ndarray, box: Sequence[float]) -> float:
    """Share of the pixels along the top edge of `box` that are the vehicle red."""
    x1, y1, x2, _ = (round(v) for v in box)
    edge = image[y1, x1 + 4 : x2 - 4].astype(int)
    b, g, r = edge[:, 0], edge[:, 1], edge[:, 2]
    return float(np.mean((r > 170) & (g < 90) & (b < 90)))


def imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return np.asarray(image)


@pytest.fixture(scope="module")
def frames(hanoi_clip: Path) -> list[Frame]:
    return clip_frames(hanoi_clip, N_FRAMES, CAMERA)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


# ------------------------------------------------------------------------------ occurred_at


def test_red_light_occurred_at_is_the_crossing_and_stills_show_it(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """The red-light event is established 8 frames (1.3 s) after the crossing and added 6 frames later
    still (held for the light reader): the notice's time is the crossing, and the stills are the frame
    before it (behind the line), the first frame past it and the event frame."""
    details = crossing_details(frames)
    event = make_event(frames, **details)
    manifest = feed(builder(tmp_path, key), frames, event, add_at=EVENT_FRAME + 6)
    assert occurred(manifest) == pytest.approx(details["crossed_at_ts"], abs=1e-3)
    assert manifest["ts"] == event.ts  # when it was established is still there
    timing = manifest["details"]["timing"]
    assert timing["occurred_at"] == "stop_line_crossing" and timing["stills_at"] == "stop_line_crossing"
    assert timing["occurred_ts"] == details["crossed_at_ts"]
    assert [s["frame_index"] for s in timing["stills"]] == [CROSSED_FRAME - 1, CROSSED_FRAME, EVENT_FRAME]
    assert [s["box"] for s in timing["stills"]] == ["observed"] * 3
    assert timing["stills"][0]["box_xyxy"] == list(box_at(CROSSED_FRAME - 1))
    assert "note" not in timing
    folder = tmp_path / event.event_id
    for name, index in (
        ("still_before", CROSSED_FRAME - 1),
        ("still_at", CROSSED_FRAME),
        ("still_after", EVENT_FRAME),
    ):
        assert red_fraction(imread(folder / f"{name}.jpg"), box_at(index)) > 0.8, name
    # The clip starts 3 s before the crossing (not 3 s before the event, frame 12), as far back as the
    # ring reaches when the event is added at frame 36 (5 s: frame 6), to the end of the stream.
    cap = cv2.VideoCapture(str(folder / "clip.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == (N_FRAMES - 1) - 6 + 1


def test_front_crossing_dates_it_when_earlier(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A vehicle driving away: its front went over the line before its bottom-centre; the light is
    judged then, and so is the time. ``at`` is the first frame after the front crossed."""
    details = crossing_details(frames)
    details["front_crossed_at_ts"] = round(frames[19].ts - 0.05, 3)
    event = make_event(frames, **details)
    manifest = feed(builder(tmp_path, key), frames, event, add_at=EVENT_FRAME + 6)
    assert occurred(manifest) == pytest.approx(details["front_crossed_at_ts"], abs=1e-3)
    frames_shown = [s["frame_index"] for s in manifest["details"]["timing"]["stills"]]
    assert frames_shown == [18, 19, EVENT_FRAME]


def test_crossing_no_longer_in_the_ring_falls_back_and_says_so(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """Added later than the ring reaches back (pre 1 s + lag 0.5 s): the stills are around the event
    frame, the manifest says why, and the time is still the crossing's."""
    details = crossing_details(frames)
    event = make_event(frames, **details)
    b = builder(tmp_path, key, pre_s=1.0, max_lag_s=0.5, clip=False)
    manifest = feed(b, frames, event, add_at=EVENT_FRAME + 3)
    timing = manifest["details"]["timing"]
    assert timing["occurred_at"] == "stop_line_crossing"
    assert occurred(manifest) == pytest.approx(details["crossed_at_ts"], abs=1e-3)
    assert timing["stills_at"] == "established"
    assert "no longer in the evidence ring" in timing["note"]
    assert timing["stills"][1]["frame_index"] == EVENT_FRAME


@pytest.mark.parametrize(
    ("rule", "details", "expected"),
    [
        # The signal rules: the crossing, the front's where earlier; frame only for the bottom-centre's.
        (
            "red_light",
            {"crossed_at_ts": 5.62, "crossed_frame_index": 34, "front_crossed_at_ts": 5.62},
            Occurrence("stop_line_crossing", 5.62, 34),
        ),
        (
            "stop_line",
            {"crossed_at_ts": 5.62, "crossed_frame_index": 34, "front_crossed_at_ts": 5.1},
            Occurrence("stop_line_crossing", 5.1, None),
        ),
        ("red_light", {"crossed_at_ts": 5.62}, Occurrence("stop_line_crossing", 5.62, None)),
        # The other rules: when the rule dates the start of the offence.
        ("wrong_way", {"began_at_ts": 4.0}, Occurrence("violation_start", 4.0)),
        ("illegal_stop", {"began_at_ts": -55.5, "dwell_s": 60.0}, Occurrence("violation_start", -55.5)),
        ("speeding", {"began_at_ts": 9}, Occurrence("violation_start", 9.0)),
        # Nothing usable: the event frame.
        ("sidewalk", {}, Occurrence("established", 10.0, 60)),
        ("wrong_lane", {"crossed_at_ts": 5.0}, Occurrence("established", 10.0, 60)),
        ("red_light", {"crossed_at_ts": 12.0}, Occurrence("established", 10.0, 60)),  # after the event
        ("red_light", {"crossed_at_ts": math.nan}, Occurrence("established", 10.0, 60)),
        ("wrong_way", {"began_at_ts": True}, Occurrence("established", 10.0, 60)),
        ("wrong_way", {"began_at_ts": "4.0"}, Occurrence("established", 10.0, 60)),
    ],
)
def test_occurrence(rule: RuleId, details: dict[str, Any], expected: Occurrence) -> None:
    event = ViolationEvent(
        event_id=event_id(CAMERA, TRACK, rule, 10.0),
        rule=rule,
        legal_reference="-",
        camera_id=CAMERA,
        track_id=TRACK,
        frame_index=60,
        ts=10.0,
        vehicle_class="car",
        box_xyxy=(0.0, 0.0, 1.0, 1.0),
        details=details,
    )
    assert occurrence(event) == expected


def _entries(first: int, last: int, skip: Sequence[int] = ()) -> list[RingEntry]:
    return [
        RingEntry(np.zeros((2, 2, 3), np.uint8), i, i / 6.0) for i in range(first, last + 1) if i not in skip
    ]


@pytest.mark.parametrize(
    ("entries", "crossed_ts", "crossed_frame", "event_frame", "expected"),
    [
        # Frame before the crossing, the first past it, the event frame.
        (_entries(10, 46), 21.6 / 6, 22, 30, (21, 22, 30)),
        # Rounded to 1 ms, the crossing can lie just past its own frame's time: the frame index decides.
        (_entries(10, 46), 22.002 / 6, 22, 30, (21, 22, 30)),
        # The front crossed earlier (no frame index): the first frame at or after it.
        (_entries(10, 46), 18.7 / 6, None, 30, (18, 19, 30)),
        # A dropped frame before the crossing: the last one there is.
        (_entries(10, 46, skip=[21]), 21.6 / 6, 22, 30, (20, 22, 30)),
        # The crossing frame itself is missing: the first frame after the crossing time.
        (_entries(10, 46, skip=[22]), 21.6 / 6, 22, 30, (21, 23, 30)),
        # The event frame is not later than the crossing frame: 1 s (6 frames) after it.
        (_entries(10, 46), 21.6 / 6, 22, 22, (21, 22, 28)),
        # The event frame is not in the package: 1 s after the crossing.
        (_entries(10, 29), 21.6 / 6, 22, 30, (21, 22, 28)),
        # Nothing before the crossing kept (the ring had dropped it): None.
        (_entries(22, 46), 21.6 / 6, 22, 30, None),
        # Nothing at or after it: None.
        (_entries(10, 21), 21.6 / 6, 22, 30, None),
        ([], 21.6 / 6, 22, 30, None),
    ],
)
def test_pick_crossing_stills(
    entries: list[RingEntry],
    crossed_ts: float,
    crossed_frame: int | None,
    event_frame: int,
    expected: tuple[int, int, int] | None,
) -> None:
    got = pick_crossing_stills(entries, crossed_ts, crossed_frame, event_frame, offset_s=1.0)
    assert (None if got is None else tuple(e.index for e in got)) == expected


def test_other_rules_keep_their_stills_and_date_the_start(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A wrong-way event: stills around the event frame (as before), occurred_at when it began."""
    event = make_event(frames, rule="wrong_way", began_at_ts=round(frames[24].ts, 3), zone_id="w1")
    manifest = feed(builder(tmp_path, key, clip=False), frames, event, add_at=EVENT_FRAME)
    timing = manifest["details"]["timing"]
    assert (timing["occurred_at"], timing["stills_at"]) == ("violation_start", "established")
    assert occurred(manifest) == pytest.approx(frames[24].ts, abs=1e-3)
    assert [s["frame_index"] for s in timing["stills"]] == [EVENT_FRAME - 6, EVENT_FRAME, EVENT_FRAME + 6]


# ------------------------------------------------------------------------------ predicted and lost boxes


def _caption_strip(image: np.ndarray) -> np.ndarray:
    return image[480:].astype(int)


def test_predicted_box_is_dashed_and_a_lost_vehicle_is_said(
    frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """Before the event the track is a prediction (the detector missed it), after it the track is
    gone: the before still draws a dashed box labelled "dự đoán", the after still no box and says
    "mất dấu"; the manifest says which."""

    def tracks(i: int) -> Detections:
        if i > EVENT_FRAME:
            return other_tracks_only()
        return tracks_at(i, observed=i != EVENT_FRAME - 6)

    event = make_event(frames, rule="wrong_way", began_at_ts=round(frames[24].ts, 3))
    manifest = feed(builder(tmp_path, key, clip=False), frames, event, add_at=EVENT_FRAME, tracks=tracks)
    folder = tmp_path / event.event_id
    before, at, after = (imread(folder / f"{k}.jpg") for k in ("still_before", "still_at", "still_after"))
    assert 0.3 < red_fraction(before, box_at(EVENT_FRAME - 6)) < 0.8  # dashes and gaps
    assert red_fraction(at, box_at(EVENT_FRAME)) > 0.9
    assert red_fraction(after, box_at(EVENT_FRAME + 6)) < 0.1
    # The label above the predicted box carries the Vietnamese word: its filled box is that wide.
    scale = max(0.45, 480 / 900)  # annotate's font scale at 640x480
    tw, th, base = annotate.text_size(f"#{TRACK} motorcycle (dự đoán)", scale)
    assert tw > annotate.text_size(f"#{TRACK} motorcycle", scale)[0] + 20
    x1 = round(box_at(EVENT_FRAME - 6)[0])
    top = round(box_at(EVENT_FRAME - 6)[1]) - annotate.line_thickness(before.shape) - th - base - 2
    row = before[top + 1, x1 + 2 : x1 + tw + 2].astype(int)
    assert np.mean((row[:, 2] > 170) & (row[:, 1] < 90)) > 0.9
    # The caption of the after still says the vehicle is lost; the others do not.
    lines = [
        f"{CAMERA}  2022-09-25T09:15:46.000Z  frame 36  AFTER +1.00s",
        f"wrong_way  #{TRACK} motorcycle  event {event.event_id[:8]}",
    ]
    blank = np.zeros((480, 640, 3), np.uint8)
    with_lost = _caption_strip(
        annotate.add_caption(blank, [lines[0], lines[1] + f"  xe #{TRACK}: {LOST_LABEL}"])
    )
    without = _caption_strip(annotate.add_caption(blank, lines))
    got = _caption_strip(after)
    assert np.abs(got - with_lost).mean() < np.abs(got - without).mean() / 3
    stills = manifest["details"]["timing"]["stills"]
    assert [s["box"] for s in stills] == ["predicted", "observed", "none"]
    assert stills[2]["box_xyxy"] is None


def test_vietnamese_text_is_drawn_not_question_marks() -> None:
    assert annotate.fold_diacritics("dự đoán, mất dấu, Đèn đỏ") == "du doan, mat dau, Den do"
    image = np.zeros((40, 200, 3), np.uint8)
    drawn = image.copy()
    annotate.put_text(drawn, "mất dấu", 4, 30, 0.6, (255, 255, 255))
    marks = image.copy()
    cv2.putText(marks, "m?t d?u", (4, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    assert drawn.any() and not np.array_equal(drawn, marks)
    if annotate._font_file() is not None:
        folded = image.copy()
        annotate.put_text(folded, "mat dau", 4, 30, 0.6, (255, 255, 255))
        # The accents are ink above the letters that the folded text has not.
        assert drawn[:18].sum() > folded[:18].sum()


def test_dashed_box_keeps_corners_and_solid_box_is_unchanged() -> None:
    image = np.full((240, 320, 3), 128, np.uint8)
    solid = annotate.draw_vehicle(image, (50.0, 40.0, 250.0, 200.0))
    dashed = annotate.draw_vehicle(image, (50.0, 40.0, 250.0, 200.0), predicted=True)
    red = np.all(solid == annotate.VEHICLE_COLOR, axis=2)
    red_dashed = np.all(dashed == annotate.VEHICLE_COLOR, axis=2)
    assert red[40, 55:245].all()
    assert 0.35 < red_dashed[40, 50:251].mean() < 0.75
    for x, y in ((50, 40), (250, 40), (250, 200), (50, 200)):
        assert red_dashed[y, x], (x, y)
    assert np.array_equal(image, np.full((240, 320, 3), 128, np.uint8))  # pure


def test_manifest_timing_is_plain_json(frames: list[Frame], key: Ed25519PrivateKey, tmp_path: Path) -> None:
    event = make_event(frames, **crossing_details(frames))
    manifest = feed(builder(tmp_path, key, clip=False), frames, event, add_at=EVENT_FRAME + 6)
    raw = json.loads((tmp_path / event.event_id / "manifest.json").read_text())
    assert raw["details"]["timing"] == manifest["details"]["timing"]
    assert set(raw["details"]) == set(crossing_details(frames)) | {"timing"}
