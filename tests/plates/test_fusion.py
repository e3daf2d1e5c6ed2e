"""Per-track plate fusion: voting over readings of one vehicle, on hand-made readings."""

from __future__ import annotations

import numpy as np
import pytest

from plates.fusion import PlateVote, View, rank_views, view_quality
from plates.grammar import parse_vn
from plates.types import PlateReading, StageTimes


def reading(lines: list[str], confidence: float, readable: bool = True) -> PlateReading:
    plate = parse_vn(lines)
    assert plate.valid, lines
    return PlateReading(
        raw=" / ".join(lines),
        plate=plate,
        confidence=confidence,
        valid=True,
        readable=readable,
        lines=len(lines),
        alternatives=((plate.formatted or "", confidence),),
        times=StageTimes(),
    )


def unreadable(raw: str) -> PlateReading:
    return PlateReading(raw, None, 0.0, False, False, 0, (), StageTimes())


def test_a_misread_character_is_outvoted() -> None:
    vote = PlateVote()
    vote.add(reading(["59-X1", "234.56"], 0.9))
    vote.add(reading(["59-X1", "284.56"], 0.7))  # 3 read as 8 in one blurry frame
    vote.add(reading(["59-X1", "234.56"], 0.8))
    r = vote.result()
    assert r.formatted == "59-X1 234.56" and r.compact == "59X123456"
    assert r.agreeing == 2 and r.reads == 3
    assert r.alternatives[1][0] == "59-X1 284.56"


def test_per_character_vote_recovers_a_plate_no_single_frame_read() -> None:
    vote = PlateVote()
    vote.add(reading(["51G-193.45"], 0.6))
    vote.add(reading(["51G-128.45"], 0.6))
    vote.add(reading(["51G-123.46"], 0.6))
    assert vote.result().formatted == "51G-123.45"


def test_four_digit_motorbike_plate_keeps_its_layout() -> None:
    vote = PlateVote()
    vote.add(reading(["59-X1", "2345"], 0.9))
    vote.add(reading(["59-X1", "2346"], 0.5))
    vote.add(reading(["59-X1", "2345"], 0.9))
    assert vote.result().formatted == "59-X1 2345"


@pytest.mark.parametrize(
    ("top", "bottoms", "expected"),
    [
        pytest.param("T29", ["193.45", "128.45", "123.46"], "T29-123.45", id="temporary-square"),
        pytest.param("29MK1", ["193.45", "128.45", "123.46"], "29MK1-123.45", id="tractor-square"),
    ],
)
def test_vote_keeps_the_lines_of_a_square_plate_whose_top_ends_in_a_digit(
    top: str, bottoms: list[str], expected: str
) -> None:
    """The top line of these plates ends in a digit, so it cannot be told from the number by digits."""
    vote = PlateVote()
    for bottom in bottoms:
        vote.add(reading([top, bottom], 0.6))
    assert vote.result().formatted == expected


def test_nothing_readable_is_reported_unreadable() -> None:
    vote = PlateVote()
    assert vote.result().formatted is None
    vote.add(unreadable("5? / ??.?"))
    vote.add(unreadable(""))
    r = vote.result()
    assert r.formatted is None and r.reads == 2 and r.raw == ("5? / ??.?", "")


def test_a_lone_low_confidence_valid_reading_is_not_trusted() -> None:
    vote = PlateVote()
    vote.add(reading(["29-B1", "123.45"], 0.3, readable=False))
    vote.add(unreadable("29-B? / ?"))
    r = vote.result()
    assert r.formatted is None and r.alternatives and r.alternatives[0][0] == "29-B1 123.45"


def test_a_lone_reading_the_reader_called_unreadable_is_not_made_a_plate() -> None:
    """Real case (gold vn0025, label 59-C2 192.00): the reader's best reading 59-C2 492.00 at 0.54 is
    below its 0.6 threshold, so it says unreadable; fusion used to report it as the plate."""
    vote = PlateVote()
    vote.add(reading(["59-C2", "492.00"], 0.54, readable=False), 0.49)
    r = vote.result()
    assert r.formatted is None and r.alternatives[0][0] == "59-C2 492.00"


@pytest.mark.parametrize(
    "small_views",
    [
        pytest.param([(0.77, 0.73)], id="one-small-view"),
        pytest.param([(0.75, 0.18), (0.75, 0.18)], id="two-small-views"),
    ],
)
def test_a_sharp_view_outweighing_smaller_ones_on_a_character_is_a_dispute_not_a_plate(
    small_views: list[tuple[float, float]],
) -> None:
    """Real case (crops vn0991, label 59-M1 944.58): the large sharp view reads 59-M7 at 0.89-0.91,
    smaller views read 59-M1. Fusion gave 59-M7 at 0.80; the disputed character makes it unreadable
    (an officer reads the stills), with both candidates kept."""
    vote = PlateVote()
    vote.add(reading(["59-M7", "944.58"], 0.91), 0.485)
    for conf, weight in small_views:
        vote.add(reading(["59-M1", "944.58"], conf), weight)
    r = vote.result()
    assert r.formatted is None
    assert {a for a, _ in r.alternatives} >= {"59-M7 944.58", "59-M1 944.58"}


@pytest.mark.parametrize("weaker", ["agreeing-below-threshold", "unreadable"])
def test_weaker_views_do_not_dilute_a_clear_reading(weaker: str) -> None:
    """One clear view and two weaker ones (read the same, just under the reader's threshold; or not
    read at all): the plate stands, as it does for the clear view alone."""
    vote = PlateVote()
    vote.add(reading(["59-X1", "234.56"], 0.9), 0.48)
    for _ in range(2):
        if weaker == "unreadable":
            vote.add(unreadable("5? / ???"), 0.2)
        else:
            vote.add(reading(["59-X1", "234.56"], 0.55, readable=False), 0.2)
    r = vote.result()
    assert r.formatted == "59-X1 234.56" and r.confidence == pytest.approx(0.9, abs=0.01)


def test_stops_early_once_confident() -> None:
    vote = PlateVote(min_agree=2, stop_confidence=0.8)
    vote.add(reading(["30G-823.47"], 0.95))
    assert not vote.confident
    vote.add(reading(["30G-823.47"], 0.9))
    assert vote.confident


def _view(h: float, blur: bool, conf: float = 0.8) -> View:
    rng = np.random.default_rng(0)
    crop = (rng.random((int(h), int(h * 1.4), 3)) * 255).astype(np.uint8)
    if blur:
        import cv2

        crop = cv2.GaussianBlur(crop, (9, 9), 5)
    return View(0, crop, (h * 1.4, h), conf)


def test_views_rank_by_size_and_sharpness() -> None:
    small_sharp, big_sharp, big_blurred = _view(12, False), _view(50, False), _view(50, True)
    assert view_quality(big_sharp) > view_quality(big_blurred) > 0
    assert view_quality(big_sharp) > view_quality(small_sharp)
    assert rank_views([small_sharp, big_blurred, big_sharp], limit=2) == [big_sharp, big_blurred]
    assert view_quality(View(0, np.zeros((0, 0, 3), np.uint8), (0, 0), 0.9)) == 0.0


@pytest.mark.parametrize("weight", [0.0, -1.0])
def test_non_positive_weights_do_not_break_the_vote(weight: float) -> None:
    vote = PlateVote()
    vote.add(reading(["51G-123.45"], 0.9), weight=weight)
    vote.add(reading(["51G-123.45"], 0.9), weight=weight)
    assert vote.result().formatted == "51G-123.45"
