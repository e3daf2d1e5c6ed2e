"""The rules' building blocks: plane geometry, legal references, signal timelines, event ids."""

from __future__ import annotations

import numpy as np
import pytest

from violations import geometry, legal
from violations.rules import SignalBook
from violations.types import SignalReading, ViolationEvent, event_id

SQUARE = [(0, 0), (10, 0), (10, 10), (0, 10)]
L_SHAPE = [(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)]


@pytest.mark.parametrize(
    ("polygon", "points", "expected"),
    [
        (SQUARE, [(5, 5), (0.5, 9.5), (11, 5), (-1, 5), (5, 10.5)], [True, True, False, False, False]),
        (L_SHAPE, [(2, 8), (8, 2), (8, 8), (5, 5)], [True, True, False, False]),
        (SQUARE, np.zeros((0, 2)), []),
    ],
)
def test_points_in_polygon(polygon: list[tuple[int, int]], points: object, expected: list[bool]) -> None:
    assert geometry.points_in_polygon(points, polygon).tolist() == expected  # type: ignore[arg-type]


def test_polygon_area_and_hull() -> None:
    assert geometry.polygon_area(SQUARE) == 100.0
    assert geometry.polygon_area(L_SHAPE) == 64.0
    hull = geometry.convex_hull([*L_SHAPE, (5, 5), (2, 2)])
    # The L's notch is cut off by the edge (10, 4)–(4, 10); inner points are dropped.
    assert geometry.polygon_area(hull) == 100.0 - 18.0
    assert sorted(map(tuple, hull.tolist())) == [(0, 0), (0, 10), (4, 10), (10, 0), (10, 4)]


@pytest.mark.parametrize(
    ("travel", "point", "across", "along"),
    [
        ((0, -1), (50, 90), 10.0, 50.0),  # traffic moving up: above the line is past it
        ((0, -1), (50, 120), -20.0, 50.0),
        ((0, 1), (50, 90), -10.0, 50.0),  # traffic moving down: below is past
        ((0, -1), (-15, 100), 0.0, -15.0),  # beside the left end
        ((0, -1), (130, 95), 5.0, 130.0),  # beside the right end
    ],
)
def test_stop_line_coords(
    travel: tuple[int, int], point: tuple[int, int], across: float, along: float
) -> None:
    frame = geometry.StopLineFrame([(0, 100), (100, 100)], travel)
    a, al = frame.coords([point])
    assert a[0] == pytest.approx(across)
    assert al[0] == pytest.approx(along)


def test_stop_line_polyline_with_a_bend() -> None:
    # Runs right, then bends down-right; travel is up.
    frame = geometry.StopLineFrame([(0, 100), (100, 100), (200, 150)], (0, -1))
    assert frame.length == pytest.approx(100 + np.hypot(100, 50))
    a, al = frame.coords([(150, 100), (50, 110)])
    # (150, 100) lies above the sloped segment: past the line.
    assert a[0] > 0
    assert a[1] == pytest.approx(-10.0) and al[1] == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("points", "travel", "message"),
    [
        ([(0, 0)], (0, -1), "at least 2 points"),
        ([(0, 0), (0, 0), (5, 5)], (0, -1), "identical"),
        ([(0, 100), (100, 100)], (1, 0), "along the stop line"),
        ([(0, 100), (100, 100)], (0, 0), "non-zero"),
    ],
)
def test_stop_line_rejects(points: list[tuple[int, int]], travel: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        geometry.StopLineFrame(points, travel)


def test_angle_deg() -> None:
    angles = geometry.angle_deg([(0, -1), (0, 1), (1, 0), (0, 0), (1, -1)], (0, -1))
    assert angles.tolist() == pytest.approx([0.0, 180.0, 90.0, 0.0, 45.0])


def test_homography_round_trip() -> None:
    h_true = np.array([[0.05, 0.01, -3.0], [0.002, 0.09, -8.0], [0.0001, 0.0012, 1.0]])
    img = np.array([[100, 400], [540, 400], [420, 150], [220, 150], [320, 300], [150, 250]], float)
    ground = geometry.apply_homography(h_true, img)
    h = geometry.fit_homography(img, ground)
    assert h == pytest.approx(h_true, rel=1e-6, abs=1e-9)
    probe = np.array([[300.0, 200.0]])
    # The local scale matches a finite difference of the mapping.
    step = geometry.apply_homography(h, probe + np.array([[1.0, 0.0]])) - geometry.apply_homography(h, probe)
    scale = geometry.homography_scale(h, probe)[0]
    assert float(np.hypot(*step[0])) <= scale * 1.01


@pytest.mark.parametrize(
    ("img", "ground", "message"),
    [
        ([[0, 0], [1, 1], [2, 2], [3, 3]], [[0, 0], [1, 0], [2, 0], [3, 1]], "degenerate"),
        ([[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 0], [1, 1]], "at least 4"),
        ([[0, 0], [1, 0], [1, 1], [0, 1]], [[0, 0], [1, 0], [1, 1]], "3 ground points"),
    ],
)
def test_homography_rejects(img: list[list[int]], ground: list[list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        geometry.fit_homography(img, ground)


# --- legal references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "cls", "citation"),
    [
        ("red_light", "car", "Điểm b khoản 9 Điều 6"),
        ("red_light", "bus", "Điểm b khoản 9 Điều 6"),
        ("red_light", "motorcycle", "Điểm c khoản 7 Điều 7"),
        ("red_light", "bicycle", "Điểm đ khoản 2 Điều 9"),
        ("stop_line", "car", "Điểm a khoản 1 Điều 6"),
        ("stop_line", "motorcycle", "Điểm a khoản 1 Điều 7"),
        ("wrong_way", "car", "Điểm d khoản 9 Điều 6"),
        ("wrong_way", "motorcycle", "Điểm a khoản 7 Điều 7"),
        ("wrong_way", "bicycle", "Điểm c khoản 3 Điều 9"),
        ("wrong_lane", "truck", "Điểm b khoản 5 Điều 6"),
        ("wrong_lane", "motorcycle", "Điểm d khoản 3 Điều 7"),
        ("sidewalk", "car", "Điểm d khoản 6 Điều 6"),
        ("sidewalk", "motorcycle", "Điểm a khoản 7 Điều 7"),
        ("red_light", "person", None),
    ],
)
def test_reference(rule: legal.RuleId, cls: str, citation: str | None) -> None:
    ref = legal.reference(rule, cls)
    if citation is None:
        assert ref is None
    else:
        assert ref is not None and ref.citation == f"{citation} Nghị định 168/2024/NĐ-CP"


@pytest.mark.parametrize(
    ("kind", "cls", "citation"),
    [
        ("no_stopping", "car", "Điểm đ khoản 2 Điều 6"),
        ("no_parking", "car", "Điểm e khoản 3 Điều 6"),
        ("junction", "car", "Điểm đ khoản 3 Điều 6"),
        ("crosswalk", "motorcycle", "Điểm e khoản 2 Điều 7"),
    ],
)
def test_stop_reference(kind: legal.StopZoneKind, cls: str, citation: str) -> None:
    ref = legal.stop_reference(kind, cls)
    assert ref is not None and ref.citation.startswith(citation)


@pytest.mark.parametrize(
    ("cls", "excess", "point"),
    [
        ("car", 4.9, None),
        ("car", 5.0, (6, 3, "a")),
        ("car", 9.9, (6, 3, "a")),
        ("car", 10.0, (6, 5, "đ")),
        ("car", 20.0, (6, 5, "đ")),
        ("car", 20.1, (6, 6, "a")),
        ("car", 35.0, (6, 6, "a")),
        ("car", 35.1, (6, 7, "a")),
        ("motorcycle", 7.0, (7, 2, "b")),
        ("motorcycle", 15.0, (7, 4, "a")),
        ("motorcycle", 20.5, (7, 8, "a")),
        ("bicycle", 30.0, None),
    ],
)
def test_speeding_bands(cls: str, excess: float, point: tuple[int, int, str] | None) -> None:
    ref = legal.speeding_reference(cls, excess)
    assert (None if ref is None else (ref.article, ref.clause, ref.point)) == point


# --- signal timelines and ids ---------------------------------------------------------------------


def test_signal_book_answers_for_past_times() -> None:
    book = SignalBook(stale_s=2.0)
    book.observe({"L1": SignalReading("green", 0.0, 0.9)}, 0.0)
    book.observe({"L1": SignalReading("green", 0.0, 0.95)}, 1.0)
    book.observe({"L1": SignalReading("amber", 4.0, 0.9)}, 4.1)
    book.observe({"L1": SignalReading("red", 7.0, 0.9)}, 7.2)
    at = {t: book.at("L1", t) for t in (-1.0, 0.5, 4.5, 6.9, 7.0, 8.0, 9.5)}
    assert at[-1.0] is None
    assert [at[t].state for t in (0.5, 4.5, 6.9, 7.0, 8.0)] == ["green", "amber", "amber", "red", "red"]  # type: ignore[union-attr]
    assert at[0.5].confidence == 0.95  # type: ignore[union-attr]
    assert at[9.5] is None  # nothing heard for more than 2 s
    assert book.at("L2", 5.0) is None and book.at(None, 5.0) is None


def test_signal_book_takes_a_state_dated_back() -> None:
    book = SignalBook()
    book.observe({"L1": SignalReading("amber", 4.0, 0.9)}, 4.5)
    # The reader confirms red late and dates it back to 4.2.
    book.observe({"L1": SignalReading("red", 4.2, 0.9)}, 4.6)
    assert book.at("L1", 4.1).state == "amber"  # type: ignore[union-attr]
    assert book.at("L1", 4.3).state == "red"  # type: ignore[union-attr]


def test_event_id_is_deterministic_and_specific() -> None:
    a = event_id("cam", 7, "red_light", 12.3456)
    assert a == event_id("cam", 7, "red_light", 12.3457 - 0.0001)
    assert len({a, event_id("cam", 8, "red_light", 12.3456), event_id("cam", 7, "stop_line", 12.3456)}) == 3


def test_event_to_dict_is_json_ready() -> None:
    import json

    ev = ViolationEvent("id", "red_light", "ref", "cam", 1, 2, 0.5, "car", (1.0, 2.0, 3.0, 4.0), {"a": 1})
    assert json.loads(json.dumps(ev.to_dict()))["box_xyxy"] == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("state", "since", "confidence"), [("blue", 0.0, 0.5), ("red", float("nan"), 0.5), ("red", 0.0, 1.5)]
)
def test_signal_reading_validates(state: str, since: float, confidence: float) -> None:
    with pytest.raises(ValueError):
        SignalReading(state, since, confidence)  # type: ignore[arg-type]
