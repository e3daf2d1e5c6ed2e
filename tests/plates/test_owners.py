"""Each plate of a frame goes to at most one of its vehicles (`plate_owners`), and a vehicle scanned
among the others of its frame (`PlateScanner.scan_vehicle`) gets only its own plate."""

from __future__ import annotations

import numpy as np
import pytest

from plates.anpr import PlateScanner
from plates.detect import plate_owners
from tests.conftest import SHARED_DATA, need

A = (300.0, 100.0, 360.0, 240.0)  # a motorbike box, 60 x 140


@pytest.mark.parametrize(
    ("plate", "vehicles", "owner"),
    [
        ((318, 190, 342, 210), [A], 0),  # low and central: its own
        ((318, 120, 342, 140), [A], -1),  # on the rider: no plate of it is there
        ((362, 190, 380, 210), [A], -1),  # beside the box
        ((318, 238, 342, 256), [A], 0),  # under a box cut at the bumper (centre 7 px below, limit 14)
        ((318, 250, 342, 270), [A], -1),  # further down: another vehicle's
        # Hai Phong clip, frame 120: the plate of the motorbike in front shows at the edge of the box
        # of the one behind it
        ((315, 511, 332, 529), [(322, 374, 388, 532), (301, 421, 367, 563)], 1),
        # the plate of a motorbike just behind and to the left shows low in the box of the one in front
        ((291, 182, 319, 207), [A, (275, 65, 335, 215)], 1),
        # one right behind the other: centred on both, nobody's
        ((318, 180, 342, 200), [A, (302, 60, 358, 215)], -1),
        # side by side, each plate centred on its own box
        ((318, 190, 342, 210), [A, (345, 100, 405, 240)], 0),
        ((363, 190, 387, 210), [A, (345, 100, 405, 240)], 1),
    ],
)
def test_plate_owners(plate: tuple[float, ...], vehicles: list[tuple[float, ...]], owner: int) -> None:
    assert plate_owners([plate], vehicles).tolist() == [owner]
    # the order of the vehicles does not matter
    flipped = plate_owners([plate], vehicles[::-1]).tolist()
    assert flipped == [owner if owner < 0 else len(vehicles) - 1 - owner]


def test_plate_owners_shapes() -> None:
    assert plate_owners(np.zeros((0, 4)), [A]).shape == (0,)
    assert plate_owners([A], np.zeros((0, 4))).tolist() == [-1]
    with pytest.raises(ValueError, match=r"plate_xyxy must be \(N, 4\)"):
        plate_owners([(1, 2, 3)], [A])
    with pytest.raises(ValueError, match=r"vehicle_xyxy must be \(N, 4\)"):
        plate_owners([A], [1, 2, 3, 4])


def _frame_with_plates(width: int, *places: tuple[float, float]) -> np.ndarray:
    """A real Giang Vo frame with the real plate 34-AA 119.50 (vn_gold), `width` pixels wide, pasted
    centred at each place."""
    import cv2

    capture = cv2.VideoCapture(str(need(SHARED_DATA / "videos" / "hanoi_giangvo_langha.mp4")))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, image = capture.read()
    capture.release()
    assert ok
    crop = cv2.imread(str(need(SHARED_DATA / "plates" / "vn_gold" / "vn0002.jpg")))
    assert crop is not None
    plate = cv2.resize(
        crop, (width, round(width * crop.shape[0] / crop.shape[1])), interpolation=cv2.INTER_AREA
    )
    h, w = plate.shape[:2]
    for cx, cy in places:
        x, y = round(cx - w / 2), round(cy - h / 2)
        image[y : y + h, x : x + w] = plate
    return image


@pytest.fixture(scope="module")
def scanner() -> PlateScanner:
    return PlateScanner()


def test_a_vehicle_gets_its_own_plate(scanner: PlateScanner) -> None:
    image = _frame_with_plates(44, (330, 200))
    (finding,) = scanner.scan_vehicle(image, A, [(420.0, 100.0, 480.0, 240.0)])
    assert finding.reading.compact == "34AA11950"


def test_a_plate_text_on_two_vehicles_of_a_frame_is_neither_ones(scanner: PlateScanner) -> None:
    """The same text read on the vehicle and on a plate that is its neighbour's (a second detection
    of one plate, a reflection): which vehicle it belongs to is not sure."""
    car = (300.0, 100.0, 430.0, 240.0)
    image = _frame_with_plates(44, (335, 200), (400, 200))
    neighbour = (380.0, 100.0, 420.0, 240.0)  # the second one is centred on it, off the car's centre
    boxes = scanner.detector.detect_in_vehicle(image, car)
    assert [f.reading.compact for f in scanner.read_boxes(image, boxes)] == ["34AA11950"] * 2
    assert scanner.scan_vehicle(image, car, [neighbour]) == []
    # without the neighbour, the second one is the car's too: one plate text, kept
    assert [f.reading.compact for f in scanner.scan_vehicle(image, car)] == ["34AA11950"] * 2
