"""`plates.reader`: the real PP-OCRv6 reader on real crops, the grammar step, and bad input."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from plates.errors import PlateError
from plates.grammar import parse_vn
from plates.ocr import DecodedLine
from plates.reader import (
    PlateReader,
    PlateReaderConfig,
    apply_priors,
    as_bgr,
    load_image,
)

GOLD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates" / "vn_gold"

#: A few gold crops covering the layouts: one-line 5 and 4 digits, special LD series, a one-line plate
#: in a wider scene crop, two-line motorbike, 50 cc two-letter series, square car plate, a tilted plate.
REAL_CROPS = [
    "vn0036.jpg",
    "vn0181.jpg",
    "vn0322.jpg",
    "vn0851.jpg",
    "vn0007.jpg",
    "vn0002.jpg",
    "vn0989.jpg",
    "vn0716.jpg",
]


@pytest.fixture(scope="module")
def reader() -> Iterator[PlateReader]:
    yield PlateReader()


@pytest.fixture(scope="module")
def gold_labels() -> dict[str, tuple[str, int]]:
    labels = GOLD / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"shared data not available: {labels} (expected ../shared/data beside the checkout)")
    with labels.open(newline="", encoding="utf-8") as fh:
        return {r["file"]: (r["text"], int(r["lines"])) for r in csv.DictReader(fh)}


@pytest.mark.parametrize("name", REAL_CROPS)
def test_reads_real_crops_exactly(
    reader: PlateReader, gold_labels: dict[str, tuple[str, int]], name: str
) -> None:
    text, lines = gold_labels[name]
    reading = reader.read_file(GOLD / name)
    assert reading.compact == text, reading
    assert reading.lines == lines
    assert reading.readable and reading.valid
    assert reading.plate is not None and reading.plate.lines == lines
    assert 0.6 <= reading.confidence <= 1.0
    assert reading.alternatives[0][0] == reading.text
    assert reading.times.total_ms >= reading.times.recognise_ms > 0


def test_grey_crop_reads_like_colour(reader: PlateReader, gold_labels: dict[str, tuple[str, int]]) -> None:
    image = load_image(GOLD / "vn0007.jpg")
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert reader.read(grey).compact == gold_labels["vn0007.jpg"][0]


def test_line_images_are_rec_height(reader: PlateReader, gold_labels: dict[str, tuple[str, int]]) -> None:
    lines = reader.line_images(load_image(GOLD / "vn0007.jpg"))
    assert len(lines) == 2
    assert all(ln.shape[0] == 48 and ln.shape[2] == 3 for ln in lines)


@pytest.mark.parametrize(
    "image",
    [
        np.full((60, 200, 3), 255, np.uint8),  # blank plate
        np.zeros((1, 1, 3), np.uint8),  # one pixel
        np.random.default_rng(0).integers(0, 255, (50, 50, 3), dtype=np.uint8),  # noise
    ],
)
def test_no_plate_is_unreadable_not_a_crash(reader: PlateReader, image: np.ndarray) -> None:
    reading = reader.read(image)
    assert not reading.readable
    assert reading.compact is None and reading.text is None


def test_bad_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cases = [(tmp_path / "missing.jpg", "no such file"), (text, "not an image"), (empty, "not an image")]
    for path, message in cases:
        with pytest.raises(PlateError, match=message) as info:
            load_image(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 0), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        ([[0, 1], [2, 3]], "numpy array"),
        (None, "numpy array"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
    ],
)
def test_bad_arrays(reader: PlateReader, image: object, message: str) -> None:
    with pytest.raises(PlateError, match=message):
        reader.read(image)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "shape"),
    [
        (np.zeros((4, 6), np.uint8), (4, 6, 3)),
        (np.zeros((4, 6, 1), np.uint8), (4, 6, 3)),
        (np.zeros((4, 6, 4), np.uint8), (4, 6, 3)),
    ],
)
def test_as_bgr_converts(image: np.ndarray, shape: tuple[int, ...]) -> None:
    assert as_bgr(image).shape == shape


def line(*positions: tuple[tuple[str, float], ...]) -> DecodedLine:
    text = "".join(p[0][0] for p in positions)
    return DecodedLine(text, tuple(positions), tuple((i, i + 1) for i in range(len(positions))))


def sure(text: str) -> list[tuple[tuple[str, float], ...]]:
    return [((c, 0.99),) for c in text]


def test_interpret_clear_two_line_plate(reader: PlateReader) -> None:
    reading = reader.interpret([line(*sure("59-X1")), line(*sure("234.56"))])
    assert reading.readable and reading.compact == "59X123456"
    assert reading.text == "59-X1 234.56"
    assert reading.raw == "59-X1 / 234.56"
    assert reading.confidence == pytest.approx(1.0, abs=0.01)


def test_interpret_near_tie_is_valid_but_unreadable(reader: PlateReader) -> None:
    # The last digit is a 1 or a 7, nearly even: both plates are valid, neither is safe to act on.
    bottom = [*sure("234.5"), (("1", 0.5), ("7", 0.45))]
    reading = reader.interpret([line(*sure("59-X1")), line(*bottom)])
    assert reading.valid and not reading.readable
    assert reading.compact is None
    assert [a for a, _ in reading.alternatives[:2]] == ["59-X1 234.51", "59-X1 234.57"]
    assert reading.confidence == pytest.approx(0.5 / 0.95, abs=0.02)


def test_interpret_repairs_a_letter_read_as_digit(reader: PlateReader) -> None:
    # Series letter B read as 8 with certainty: only "B" makes a plate.
    reading = reader.interpret([line(*sure("60-82")), line(*sure("063.70"))])
    assert reading.readable and reading.compact == "60B206370"
    assert reading.plate is not None and reading.plate.corrections == 1


def test_interpret_invalid_text_keeps_raw(reader: PlateReader) -> None:
    reading = reader.interpret([line(*sure("HELLO"))])
    assert not reading.valid and not reading.readable and reading.plate is None
    assert reading.raw == "HELLO" and reading.confidence == 0.0
    assert reader.interpret([]).raw == ""


def test_apply_priors_reranks_by_series_kind() -> None:
    fifty, moto = parse_vn(["59-NZ", "437.56"]), parse_vn(["59-N2", "437.56"])
    assert fifty.series_kind == "50cc" and moto.series_kind == "civilian"
    ranked = apply_priors([(fifty, 0.6), (moto, 0.3)], {"50cc": 0.1})
    assert [p.compact for p, _ in ranked] == ["59N243756", "59NZ43756"]
    assert ranked[1][1] == pytest.approx(0.06)


def test_config_is_strict() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        PlateReaderConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="unknown_field"):
        PlateReaderConfig(unknown_field=1)  # type: ignore[call-arg]
