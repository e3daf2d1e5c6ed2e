"""`plates.eval`: scoring, label parsing, and a run of the real reader and baselines on gold crops."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from plates.errors import PlateError
from plates.eval import (
    EvalRow,
    RawDetRecBaseline,
    RawRecBaseline,
    answer_of,
    baseline_readers,
    canonical,
    cut_box,
    edit_distance,
    evaluate,
    read_labels,
    score,
)
from plates.grammar import parse_vn
from plates.reader import PlateReader
from plates.types import PlateReading, StageTimes

GOLD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates" / "vn_gold"


class ScriptedReader:
    """A `Reader` that answers from a table keyed by the crop's top-left pixel value."""

    def __init__(self, answers: dict[int, PlateReading]) -> None:
        self.answers = answers

    def read(self, image: np.ndarray) -> PlateReading:
        return self.answers[int(image[0, 0, 0])]


def reading(lines: list[str], confidence: float, readable: bool) -> PlateReading:
    plate = parse_vn(lines)
    return PlateReading(
        " / ".join(lines), plate, confidence, plate.valid, readable, len(lines), (), StageTimes()
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("59-X1 / 234.56", "59X123456"), ("51g-123.45", "51G12345"), ("50TĐ-821.08", "50TD82108"), ("", "")],
)
def test_canonical(text: str, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [("", "", 0), ("abc", "abc", 0), ("abc", "", 3), ("59X123456", "59X12345", 1), ("1234", "1734", 1)],
)
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d == edit_distance(b, a)


def row(expected: str, got: str, lines: int, ok: bool | None = None, ms: float = 10.0) -> EvalRow:
    ok = got == expected if ok is None else ok
    return EvalRow("f.jpg", expected, got, got, got, ok, bool(got), 0.9, ms, lines, lines)


def test_score_counts_subsets_and_errors() -> None:
    rows = [
        row("59X123456", "59X123456", 2, ms=10),
        row("59X123456", "59X123457", 2, ms=20),  # valid but wrong
        row("51G12345", "", 1, ms=30),  # unreadable
        row("51G12345", "51G12345", 1, ms=40),
    ]
    result = score(rows)
    assert (result.overall.n, result.overall.exact) == (4, 2)
    assert result.one_line.accuracy == 0.5 and result.two_line.accuracy == 0.5
    assert result.unreadable_rate == 0.25 and result.valid_wrong_rate == 0.25
    # 34 label characters, 1 substitution + 8 missing.
    assert result.char_accuracy == pytest.approx((34 - 1 - 8) / 34)
    assert result.ms_median == 25.0
    assert result.summary()["exact"] == 0.5
    assert score([]).overall.accuracy == 0.0


def test_answer_of() -> None:
    assert answer_of(reading(["59-X1", "234.56"], 0.9, True)) == "59X123456"
    assert answer_of(reading(["59-X1", "234.56"], 0.4, False)) == ""
    baseline = PlateReading("59-X1 234.56", None, 0.9, False, True, 1, (), StageTimes())
    assert answer_of(baseline) == "59X123456"


def write_set(root: Path, rows: list[tuple[str, str, str]], header: str = "file,text,lines") -> Path:
    labels = root / "labels.csv"
    labels.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return labels


def test_evaluate_with_a_scripted_reader(tmp_path: Path) -> None:
    for value in (1, 2, 3):
        cv2.imwrite(str(tmp_path / f"{value}.png"), np.full((20, 40, 3), value, np.uint8))
    (tmp_path / "bad.png").write_text("not an image")
    labels = write_set(
        tmp_path,
        [
            ("1.png", "59X123456", "2"),
            ("2.png", "51G12345", "1"),
            ("3.png", "29A12655", "2"),
            ("bad.png", "30V2303", "1"),
        ],
    )
    reader = ScriptedReader(
        {
            1: reading(["59-X1", "234.56"], 0.95, True),
            2: reading(["51G-123.46"], 0.9, True),  # wrong last digit
            3: reading(["29A", "126.55"], 0.3, False),  # right but not confident: unreadable
        }
    )
    result = evaluate(labels, tmp_path, reader)
    assert [r.ok for r in result.rows] == [True, False, False, False]
    assert result.rows[2].got == "" and result.rows[2].guess == "29A12655"
    assert result.rows[3].error is not None and "not an image" in result.rows[3].error
    assert result.valid_wrong_rate == 0.25 and result.unreadable_rate == 0.5
    assert result.two_line.n == 2 and result.one_line.n == 2


def test_evaluate_whole_images_cuts_the_labelled_box(tmp_path: Path) -> None:
    scene = np.zeros((100, 100, 3), np.uint8)
    scene[40:60, 20:80] = 1
    cv2.imwrite(str(tmp_path / "s.png"), scene)
    labels = write_set(tmp_path, [("s.png", "40", "42", "78", "58", "59X123456")], "file,x1,y1,x2,y2,text")
    reader = ScriptedReader({1: reading(["59-X1", "234.56"], 0.95, True)})
    assert evaluate(labels, tmp_path, reader, crop=False).overall.exact == 1
    with pytest.raises(PlateError, match="box columns"):
        evaluate(write_set(tmp_path, [("s.png", "59X123456", "2")]), tmp_path, reader, crop=False)


def test_cut_box() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    assert cut_box(image, (50, 40, 150, 60)).shape == (24, 120, 3)
    assert cut_box(image, (0, 0, 200, 100)).shape == (100, 200, 3)  # margin clipped
    with pytest.raises(PlateError, match="outside"):
        cut_box(image, (300, 10, 400, 20))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,text\nx.jpg,59X123456\n", "missing column"),
        ("file,text,lines\nx.jpg,59X1,two\n", "non-numeric"),
    ],
)
def test_read_labels_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PlateError, match=message):
        read_labels(path)
    with pytest.raises(PlateError, match="cannot read labels"):
        read_labels(tmp_path / "nope.csv")


def test_read_labels_refuses_a_csv_that_is_not_utf8(tmp_path: Path) -> None:
    """A spreadsheet's UTF-16 export: one line saying so, not a UnicodeDecodeError traceback."""
    path = tmp_path / "labels.csv"
    path.write_text("file,text\nx.jpg,59X123456\n", encoding="utf-16")
    with pytest.raises(PlateError, match=r"is not UTF-8 .* save the CSV as UTF-8"):
        read_labels(path)


def test_read_labels_skips_unreadable_plates(tmp_path: Path) -> None:
    labels = write_set(tmp_path, [("a.jpg", "59-X1 234.56", "2"), ("b.jpg", "", "1")])
    (only,) = read_labels(labels)
    assert (only.file, only.text, only.lines, only.box) == ("a.jpg", "59X123456", 2, None)


@pytest.fixture(scope="module")
def gold_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labels of 6 gold crops (3 one-line, 3 two-line), in a temporary CSV pointing at the gold folder."""
    labels = GOLD / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"shared data not available: {labels} (expected ../shared/data beside the checkout)")
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for r in rows if r["lines"] == "1"][:3] + [r for r in rows if r["lines"] == "2"][:3]
    out = tmp_path_factory.mktemp("gold") / "labels.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "text", "lines"])
        writer.writeheader()
        writer.writerows(picked)
    return out


def test_evaluate_real_reader_and_baselines(gold_subset: Path) -> None:
    ours = evaluate(gold_subset, GOLD, PlateReader())
    assert ours.overall.n == 6 and ours.one_line.n == 3 and ours.two_line.n == 3
    assert ours.overall.exact == 6
    assert ours.valid_wrong_rate == 0.0 and ours.ms_median > 0
    # Whole-crop rec cannot read a two-line plate as one line of text.
    rec_only = evaluate(gold_subset, GOLD, RawRecBaseline())
    assert rec_only.two_line.exact == 0
    det_rec = evaluate(gold_subset, GOLD, RawDetRecBaseline(short_side=256))
    assert det_rec.overall.n == 6 and det_rec.overall.exact <= ours.overall.exact
    assert det_rec.char_accuracy > 0.5  # it reads text, unlike a broken pipeline


def test_baseline_readers_names() -> None:
    assert list(baseline_readers()) == ["ppocrv6-rec", "ppocrv6-det-rec"]
