"""Plate background colour on real crops and on drawn plates of every colour."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from plates.colour import plate_colour
from plates.errors import PlateError
from plates.grammar import PlateColour
from tests.conftest import SHARED_DATA, need


def drawn_plate(background_bgr: tuple[int, int, int], ink_bgr: tuple[int, int, int]) -> np.ndarray:
    img = np.full((80, 200, 3), background_bgr, np.uint8)
    cv2.putText(img, "51G-123.45", (6, 52), cv2.FONT_HERSHEY_SIMPLEX, 1.0, ink_bgr, 3)
    return img


@pytest.mark.parametrize(
    ("background", "ink", "expected"),
    [
        ((235, 235, 235), (20, 20, 20), PlateColour.WHITE),
        ((0, 200, 240), (20, 20, 20), PlateColour.YELLOW),
        ((160, 60, 20), (255, 255, 255), PlateColour.BLUE),
        ((30, 30, 200), (255, 255, 255), PlateColour.RED),
        ((150, 150, 150), (30, 30, 30), PlateColour.WHITE),  # a dull, grey-looking white plate
    ],
)
def test_drawn_plates(background, ink, expected) -> None:
    assert plate_colour(drawn_plate(background, ink)).colour == expected


def test_gold_plates_are_white() -> None:
    gold = need(SHARED_DATA / "plates" / "vn_gold")
    rows = list(csv.DictReader((gold / "labels.csv").open()))
    colours = [plate_colour(cv2.imread(str(gold / r["file"]))).colour for r in rows]
    assert colours.count(PlateColour.WHITE) / len(colours) >= 0.98


@pytest.mark.parametrize("name", ["vn0004.jpg", "vn0952.jpg"])
def test_real_yellow_plates(name: str) -> None:
    path = need(SHARED_DATA / "plates" / "vn_crops" / name)
    assert plate_colour(cv2.imread(str(path))).colour == PlateColour.YELLOW


@pytest.mark.parametrize("bad", [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10), np.uint8), None])
def test_bad_crop(bad: object) -> None:
    with pytest.raises(PlateError, match="non-empty"):
        plate_colour(bad)  # type: ignore[arg-type]
