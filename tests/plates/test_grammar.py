"""Tests of `plates.grammar`: Vietnamese layouts, confusion repair, lattices, other countries, real labels."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from plates.grammar import (
    COLOUR_MEANING,
    GRAMMARS,
    LAYOUTS,
    LINE_TEMPLATES,
    NEVER_ISSUED,
    PROVINCE_CODES,
    PlateColour,
    PlateText,
    best_valid,
    compact,
    get_grammar,
    n_best_valid,
    parse,
    parse_vn,
    province_name,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"

# ----------------------------------------------------------------------------------------------------
# Valid plates of every layout

VALID = [
    # lines, compact, formatted, rows, vehicle, series_kind, corrections
    pytest.param(["51G-123.45"], "51G12345", "51G-123.45", 1, "car", "civilian", 0, id="car-5"),
    pytest.param(["52Y-6490"], "52Y6490", "52Y-6490", 1, "car", "civilian", 0, id="car-4-old"),
    pytest.param(["30V-3993"], "30V3993", "30V-3993", 1, "car", "civilian", 0, id="car-4-old-2"),
    pytest.param(["60M 8965"], "60M8965", "60M-8965", 1, "car", "civilian", 0, id="car-4-space"),
    pytest.param(["30G", "823.47"], "30G82347", "30G-823.47", 2, "car", "civilian", 0, id="car-square"),
    pytest.param(["60M", "8965"], "60M8965", "60M-8965", 2, "car", "civilian", 0, id="car-square-4"),
    pytest.param(["59-X1", "234.56"], "59X123456", "59-X1 234.56", 2, "motorbike", "civilian", 0, id="moto"),
    pytest.param(
        ["59-X1 234.56"], "59X123456", "59-X1 234.56", 2, "motorbike", "civilian", 0, id="moto-1-line"
    ),
    pytest.param(
        ["59X123456"], "59X123456", "59-X1 234.56", 2, "motorbike", "civilian", 0, id="moto-compact"
    ),
    pytest.param(["29-B1", "2345"], "29B12345", "29-B1 2345", 2, "motorbike", "civilian", 0, id="moto-4-old"),
    # Same characters as car 59X-123.45: on one line, with nothing to tell them apart, the car wins.
    pytest.param(["59X12345"], "59X12345", "59X-123.45", 1, "car", "civilian", 0, id="moto-4-or-car"),
    pytest.param(["59-X1 2345"], "59X12345", "59-X1 2345", 2, "motorbike", "civilian", 0, id="moto-4-1-line"),
    pytest.param(["51-R4", "2488"], "51R42488", "51-R4 2488", 2, "motorbike", "civilian", 0, id="moto-r-old"),
    pytest.param(["29-AA", "123.45"], "29AA12345", "29-AA 123.45", 2, "motorbike", "50cc", 0, id="50cc-AA"),
    pytest.param(["34-AA 119.50"], "34AA11950", "34-AA 119.50", 2, "motorbike", "50cc", 0, id="50cc-1-line"),
    pytest.param(["29-HB", "2345"], "29HB2345", "29-HB 2345", 2, "motorbike", "50cc", 0, id="50cc-HB-4"),
    pytest.param(["59-XS", "234.56"], "59XS23456", "59-XS 234.56", 2, "motorbike", "50cc", 0, id="50cc-XS"),
    pytest.param(["93LD-001.03"], "93LD00103", "93LD-001.03", 1, "unknown", "special", 0, id="LD"),
    pytest.param(["60LD-4379"], "60LD4379", "60LD-4379", 1, "unknown", "special", 0, id="LD-4"),
    pytest.param(["99-LD", "011.09"], "99LD01109", "99LD-011.09", 2, "unknown", "special", 0, id="LD-2-line"),
    pytest.param(["30KT-123.45"], "30KT12345", "30KT-123.45", 1, "unknown", "special", 0, id="KT"),
    pytest.param(["51HC-123.45"], "51HC12345", "51HC-123.45", 1, "car", "special", 0, id="HC-car"),
    pytest.param(["51R-141.39"], "51R14139", "51R-141.39", 1, "car", "special", 0, id="trailer-R"),
    pytest.param(["51RM-141.39"], "51RM14139", "51RM-141.39", 1, "car", "special", 0, id="trailer-RM"),
    pytest.param(["50TD-821.08"], "50TĐ82108", "50TĐ-821.08", 1, "unknown", "special", 0, id="TD-to-TĐ"),
    pytest.param(["50TĐ-821.08"], "50TĐ82108", "50TĐ-821.08", 1, "unknown", "special", 0, id="TĐ"),
    pytest.param(
        ["29-MD1", "013.53"], "29MĐ101353", "29-MĐ1 013.53", 2, "motorbike", "special", 0, id="MD-to-MĐ"
    ),
    pytest.param(
        ["29-MD", "123.45"], "29MD12345", "29-MD 123.45", 2, "motorbike", "50cc", 0, id="MD-no-digit-50cc"
    ),
    pytest.param(["29MK1-123.45"], "29MK112345", "29MK1-123.45", 1, "unknown", "special", 0, id="tractor"),
    pytest.param(["T29-123.45"], "T2912345", "T29-123.45", 1, "unknown", "special", 0, id="temporary"),
    pytest.param(["41-291-NG-01"], "41291NG01", "41-291-NG-01", 1, "car", "foreign", 0, id="NG-long"),
    pytest.param(["80-631-CV-01"], "80631CV01", "80-631-CV-01", 1, "car", "foreign", 0, id="CV-long"),
    pytest.param(["80NG", "636-70"], "80NG63670", "80NG-636-70", 2, "car", "foreign", 0, id="NG-short"),
    pytest.param(["80QT", "546-42"], "80QT54642", "80QT-546-42", 2, "car", "foreign", 0, id="QT-short"),
    pytest.param(
        ["29-NN", "123.456"], "29NN123456", "29NN-123-456", 2, "motorbike", "foreign", 0, id="NN-moto"
    ),
    pytest.param(
        ["80-011", "NG-01"], "80011NG01", "80-011-NG-01", 2, "car", "foreign", 0, id="NG-country-top"
    ),
    pytest.param(["51g-123.45"], "51G12345", "51G-123.45", 1, "car", "civilian", 0, id="lower-case"),
    pytest.param(["|51G-123.45|"], "51G12345", "51G-123.45", 1, "car", "civilian", 0, id="stray-bars"),
    pytest.param(["51G·123:45"], "51G12345", "51G-123.45", 1, "car", "civilian", 0, id="odd-separators"),
    pytest.param(
        [" 59-X1 ", "", " 234.56 "],
        "59X123456",
        "59-X1 234.56",
        2,
        "motorbike",
        "civilian",
        0,
        id="empty-line-dropped",
    ),
    pytest.param("51G-123.45", "51G12345", "51G-123.45", 1, "car", "civilian", 0, id="bare-string"),
]


@pytest.mark.parametrize(("lines", "compact_", "formatted", "rows", "vehicle", "kind", "corrections"), VALID)
def test_valid_plates(
    lines: str | list[str],
    compact_: str,
    formatted: str,
    rows: int,
    vehicle: str,
    kind: str,
    corrections: int,
) -> None:
    p = parse_vn(lines)
    assert p.problem is None
    assert p.valid
    assert (p.compact, p.formatted, p.lines) == (compact_, formatted, rows)
    assert (p.vehicle, p.series_kind, p.corrections) == (vehicle, kind, corrections)
    assert p.raw == (lines if isinstance(lines, str) else "\n".join(lines))


@pytest.mark.parametrize(("lines", "compact_", "formatted"), [v.values[:3] for v in VALID])
def test_formatted_text_parses_back_to_itself(lines: list[str], compact_: str, formatted: str) -> None:
    again = parse_vn([formatted])
    assert (again.compact, again.formatted) == (compact_, formatted)


def test_province_and_series_fields() -> None:
    p = parse_vn(["59-X1", "234.56"])
    assert (p.province, p.series) == ("59", "X1")
    assert province_name("59") == "Hồ Chí Minh City"
    assert province_name("61") == "Hồ Chí Minh City"  # Bình Dương, merged in 2025
    assert province_name("13") is None


# ----------------------------------------------------------------------------------------------------
# Invalid readings

INVALID = [
    pytest.param(["13A-123.45"], "unknown province code 13", id="province-13"),
    pytest.param(["42A-123.45"], "unknown province code 42", id="province-42"),
    pytest.param(["00A-123.45"], "unknown province code 00", id="province-00"),
    pytest.param(["96-X1", "234.56"], "unknown province code 96", id="province-96-2-line"),
    pytest.param(["51I-123.45"], "letter I is never used in a series", id="letter-I"),
    pytest.param(["51O-123.45"], "letter O is never used in a series", id="letter-O"),
    pytest.param(["51Q-123.45"], "letter Q is never used in a series", id="letter-Q"),
    pytest.param(["51W-123.45"], "letter W is never used in a series", id="letter-W"),
    pytest.param(["59-W1", "234.56"], "letter W is never used in a series", id="letter-W-moto"),
    pytest.param(["51RA-123.45"], "R starts no series except R, RM and the old R1-R9", id="R-first"),
    pytest.param(["59-RA", "234.56"], "R starts no series except R, RM and the old R1-R9", id="R-first-50cc"),
    pytest.param(["59-R1", "234.56"], "series R1 exists only on old plates with 4 digits", id="R-digit-5"),
    pytest.param(["51G-123"], "expected 4 or 5 digits, got 3", id="3-digits"),
    pytest.param(["51G-123456"], "expected 4 or 5 digits, got 6", id="6-digits"),
    pytest.param(["59-X1", "234567"], "expected 4 or 5 digits, got 6", id="6-digits-2-line"),
    pytest.param(["59-X1", "234"], "expected 4 or 5 digits, got 3", id="3-digits-2-line"),
    pytest.param(["59-X1", "23K56"], "unexpected letter K in the number", id="letter-in-number"),
    pytest.param([""], "empty reading", id="empty"),
    pytest.param([], "empty reading", id="no-lines"),
    pytest.param(["-- . |"], "empty reading", id="only-junk"),
    pytest.param(["hello world"], "no province code: plate starts with 'HE'", id="garbage"),
    pytest.param(["#5"], "too short for a plate: '5'", id="too-short"),
    pytest.param(["59", "71", "12345"], "expected 1 or 2 text lines, got 3", id="three-lines"),
    pytest.param(["5979 12345"], "series must start with a letter, got '7'", id="digit-series-7"),
    pytest.param(["59-71", "234.56"], "series must start with a letter, got '7'", id="digit-series-2-line"),
    pytest.param(["5-1G-123.45"], "separator inside the province code or series", id="dash-in-province"),
    pytest.param(["T29-1234"], "temporary plate needs 5 digits after the province code, got 4", id="temp-4"),
    pytest.param(["30A-000.00"], "number 000.00 is never issued", id="zero-number"),
    pytest.param(["29-X1", "0000"], "number 0000 is never issued", id="zero-number-moto"),
]


@pytest.mark.parametrize(("lines", "problem"), INVALID)
def test_invalid_readings(lines: list[str], problem: str) -> None:
    p = parse_vn(lines)
    assert not p.valid
    assert (p.compact, p.formatted, p.vehicle, p.series_kind) == (None, None, "unknown", "unknown")
    assert p.raw == "\n".join(lines)
    assert p.problem
    if problem:
        assert p.problem == problem


def test_foreign_series_with_a_civilian_number_says_what_a_foreign_plate_needs() -> None:
    p = parse_vn(["59NN", "1234"])
    assert p.problem == "foreign series NN needs a 3-digit country code and a 2- or 3-digit order"


# ----------------------------------------------------------------------------------------------------
# Confusions: fixed only where the layout needs the other class

CONFUSIONS = [
    # lines, formatted, corrections
    pytest.param(["S9-X1 Z34.S6"], "59-X1 234.56", 3, id="brief-example"),
    pytest.param(["S9-X1", "Z34.S6"], "59-X1 234.56", 3, id="brief-example-2-lines"),
    pytest.param(["51G-l23.45"], "51G-123.45", 1, id="lower-l-is-1"),
    pytest.param(["5I-G1", "234.56"], "51-G1 234.56", 1, id="I-in-province"),
    pytest.param(["B0A-123.45"], "80A-123.45", 1, id="B-in-province"),
    pytest.param(["5AA-123.45"], "54A-123.45", 1, id="A-in-province-only"),
    pytest.param(["598-123.45"], "59B-123.45", 1, id="8-in-series"),
    pytest.param(["590-123.45"], "59D-123.45", 1, id="0-in-series"),
    pytest.param(["596-123.45"], "59G-123.45", 1, id="6-in-series"),
    pytest.param(["59-XI", "234.56"], "59-X1 234.56", 1, id="I-as-series-digit"),
    pytest.param(["59-X1", "O12.34"], "59-X1 012.34", 1, id="O-in-number"),
    pytest.param(["59-X1", "Q12.34"], "59-X1 012.34", 1, id="Q-in-number"),
    pytest.param(["51G-123.4S"], "51G-123.45", 1, id="S-in-number"),
    pytest.param(["51G-DB2.GT"], "51G-082.61", 4, id="many-in-number"),
    pytest.param(["93L0-001.03"], "93LD-001.03", 1, id="0-to-D-in-LD"),
    pytest.param(["5O-T0", "123.45"], "50TĐ-123.45", 2, id="O-province-0-TĐ"),
    # Letters stay letters and digits stay digits where the layout allows them.
    pytest.param(["51A-444.44"], "51A-444.44", 0, id="A-and-4-untouched"),
    pytest.param(["59-X5", "234.56"], "59-X5 234.56", 0, id="X5-stays"),
    pytest.param(["59-XS", "234.56"], "59-XS 234.56", 0, id="XS-stays-50cc"),
    pytest.param(["59-XT", "234.56"], "59-XT 234.56", 0, id="XT-not-X1"),
    # Documented choice: 1/T is a confusion pair, so a 1 where only a letter fits becomes T.
    pytest.param(["5919 12345"], "59-T9 123.45", 1, id="1-becomes-T"),
    pytest.param(["59-11", "234.56"], "59-T1 234.56", 1, id="59-11-is-T1"),
    # A series digit 0 is not a motorbike series; 0/D makes it the 50cc series XD.
    pytest.param(["59-X0", "123.45"], "59-XD 123.45", 1, id="X0-becomes-XD"),
]


@pytest.mark.parametrize(("lines", "formatted", "corrections"), CONFUSIONS)
def test_confusions_fixed_only_where_needed(lines: list[str], formatted: str, corrections: int) -> None:
    p = parse_vn(lines)
    assert p.valid, p.problem
    assert (p.formatted, p.corrections) == (formatted, corrections)


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["129-123.45"], id="digit-not-bent-into-temporary-T"),
        pytest.param(["13A-123.45"], id="13-not-bent-into-T3"),
        pytest.param(["59-71", "234.56"], id="7-is-no-letter"),
    ],
)
def test_confusions_do_not_invent_rare_layouts(lines: list[str]) -> None:
    assert not parse_vn(lines).valid


def test_vietnamese_confusion_tables_follow_the_brief() -> None:
    from plates.grammar import DIGIT_FOR_LETTER, LETTER_FOR_DIGIT

    assert dict(LETTER_FOR_DIGIT) == {"0": "D", "8": "B", "5": "S", "2": "Z", "6": "G", "1": "T", "4": "A"}
    assert {k: v for k, v in DIGIT_FOR_LETTER.items() if k in "OIQ"} == {"O": "0", "I": "1", "Q": "0"}
    for letter, digit in DIGIT_FOR_LETTER.items():
        assert digit.isdigit() and letter.isalpha()


# ----------------------------------------------------------------------------------------------------
# Templates, codes, colours


def test_province_codes() -> None:
    assert len(PROVINCE_CODES) == 81
    assert set(NEVER_ISSUED) == {"13", "42", "44", "45", "46", "87", "91", "96"}
    assert not PROVINCE_CODES & NEVER_ISSUED
    assert set(PROVINCE_CODES | NEVER_ISSUED) == {f"{n:02d}" for n in range(11, 100)}


@pytest.mark.parametrize(
    ("kind", "name", "text", "accepted"),
    [
        ("one_line", "line:car+5", "51G12345", True),
        ("one_line", "line:car+5", "13G12345", False),  # province pair constraint
        ("one_line", "line:car+5", "51I12345", False),  # never a series letter
        ("one_line", "line:car+5", "51R12345", False),  # R is its own layout (trailer)
        ("one_line", "line:trailer+5", "51R12345", True),
        ("one_line", "line:special+5", "93LD00103", True),
        ("one_line", "line:special+5", "93LK00103", False),  # no such special series
        ("one_line", "line:special+5", "50TĐ82108", True),
        ("one_line", "line:special+5", "50TD82108", False),  # slots hold output characters
        ("top", "top:motorbike", "59X1", True),
        ("top", "top:motorbike", "59X0", False),  # series digit 1-9
        ("top", "top:50cc", "29AA", True),
        ("top", "top:50cc", "29LD", False),  # reserved special series
        ("top", "top:50cc", "29NG", False),  # reserved foreign series
        ("top", "top:foreign", "80NG", True),
        ("bottom", "bottom:5", "23456", True),
        ("bottom", "bottom:4", "23456", False),
        ("joined", "joined:motorbike+5", "59X123456", True),
    ],
)
def test_line_templates_accept(kind: str, name: str, text: str, accepted: bool) -> None:
    tpl = {t.name: t for t in LINE_TEMPLATES[kind]}[name]
    assert tpl.accepts(text) is accepted


@pytest.mark.parametrize(
    ("kind", "name", "pattern"),
    [
        ("one_line", "line:car+5", "DD-L-DDD-DD"),
        ("one_line", "line:car+4", "DD-L-DDDD"),
        ("top", "top:motorbike", "DD-LN"),
        ("top", "top:car-square", "DD-L"),
        ("bottom", "bottom:4", "DDDD"),
        ("one_line", "line:foreign+2", "DD-DDD-[CNQ][GNTV]-DD"),
    ],
)
def test_line_template_patterns(kind: str, name: str, pattern: str) -> None:
    assert {t.name: t for t in LINE_TEMPLATES[kind]}[name].pattern == pattern


def test_layouts_pair_templates_of_the_catalogue() -> None:
    names = {kind: {t.name for t in tpls} for kind, tpls in LINE_TEMPLATES.items()}
    for layout in LAYOUTS:
        if len(layout.lines) == 1:
            assert layout.lines[0].name in names["one_line"]
        else:
            assert [t.name for t in layout.lines] in (
                [top, bottom] for top in names["top"] for bottom in names["bottom"]
            )
    # Slots are sets of single upper-case letters, digits or Đ.
    for tpls in LINE_TEMPLATES.values():
        for tpl in tpls:
            for allowed in tpl.slots:
                assert allowed and all(len(c) == 1 and (c.isdigit() or c.isupper()) for c in allowed)


def test_colour_meanings() -> None:
    assert set(COLOUR_MEANING) == set(PlateColour)
    assert PlateColour("yellow") is PlateColour.YELLOW
    assert "private" in PlateColour.WHITE.meaning
    assert "commercial" in PlateColour.YELLOW.meaning
    assert "state" in PlateColour.BLUE.meaning
    assert "military" in PlateColour.RED.meaning


@pytest.mark.parametrize(
    ("text", "fold_d", "expected"),
    [
        ("59-x1 234.56", False, "59X123456"),
        ("51G-123.45", False, "51G12345"),
        ("50tđ-821.08", False, "50TĐ82108"),
        ("50TĐ-821.08", True, "50TD82108"),
        ("ＡＢ１２", False, "AB12"),  # full-width forms fold to ASCII
        (" |-. ", False, ""),
    ],
)
def test_compact(text: str, fold_d: bool, expected: str) -> None:
    assert compact(text, fold_d=fold_d) == expected


# ----------------------------------------------------------------------------------------------------
# Lattices (best_valid / n_best_valid)

Position = list[tuple[str, float]]


def line(*positions: str | Position) -> list[Position]:
    """A lattice line: a plain string gives certain characters ((c, 1.0)); a list gives alternatives."""
    out: list[Position] = []
    for p in positions:
        if isinstance(p, str):
            out.extend([(c, 1.0)] for c in p)
        else:
            out.append(p)
    return out


LATTICES = [
    # lattice, formatted, probability, corrections
    pytest.param([line("51G12345")], "51G-123.45", 1.0, 0, id="certain-car"),
    pytest.param([line("59X1"), line("23456")], "59-X1 234.56", 1.0, 0, id="certain-moto"),
    pytest.param(
        [line("51", [("6", 0.6), ("G", 0.4)], "12345")], "51G-123.45", 0.4, 0, id="letter-alternative"
    ),
    pytest.param([line("51", [("6", 0.9), ("8", 0.1)], "12345")], "51G-123.45", 0.45, 1, id="confusion-6-G"),
    pytest.param([line([("1", 0.7), ("5", 0.3)], "3G12345")], "53G-123.45", 0.3, 0, id="province-13-avoided"),
    pytest.param(
        [line("59", [("X", 0.5), ("K", 0.4)], "1"), line("2345", [("6", 0.8), ("G", 0.2)])],
        "59-X1 234.56",
        0.4,
        0,
        id="two-lines",
    ),
    pytest.param([line([("|", 0.8), ("1", 0.2)], "51G12345")], "51G-123.45", 0.8, 0, id="junk-at-edge"),
    pytest.param(
        [line("59X1"), line("234", [("4", 0.6), ("", 0.4)], "56")], "59-X1 234.56", 0.4, 0, id="blank-skip"
    ),
    pytest.param([line("51G", [("-", 0.9), ("1", 0.1)], "123.45")], "51G-123.45", 0.9, 0, id="separators"),
    pytest.param([line("50T", [("D", 0.7), ("0", 0.3)], "82108")], "50TĐ-821.08", 0.7, 0, id="D-as-Đ"),
    pytest.param([line("59X123456")], "59-X1 234.56", 1.0, 0, id="moto-on-one-line"),
]


@pytest.mark.parametrize(("lattice", "formatted", "prob", "corrections"), LATTICES)
def test_best_valid(lattice: list[list[Position]], formatted: str, prob: float, corrections: int) -> None:
    found = best_valid(lattice)
    assert found is not None
    plate, p = found
    assert plate.valid
    assert (plate.formatted, plate.corrections) == (formatted, corrections)
    assert p == pytest.approx(prob)


@pytest.mark.parametrize(
    "lattice",
    [
        pytest.param([line("ABC")], id="garbage"),
        pytest.param([line("13G12345")], id="province-13"),
        pytest.param([line("59X-123456")], id="dash-inside-series"),
        pytest.param([line("59X1"), line("234567")], id="6-digits"),
        pytest.param([], id="empty"),
        pytest.param([line("59"), line("X1"), line("23456")], id="three-lines"),
    ],
)
def test_best_valid_none(lattice: list[list[Position]]) -> None:
    assert best_valid(lattice) is None


def test_best_valid_skips_a_number_that_is_never_issued() -> None:
    lattice = [line("30A000", [("0", 0.6), ("1", 0.4)], [("0", 0.7), ("8", 0.3)])]
    found = n_best_valid(lattice, 3)
    assert [(p.formatted, round(q, 6)) for p, q in found][:2] == [("30A-000.10", 0.28), ("30A-000.08", 0.18)]
    best = best_valid(lattice)
    assert best is not None and best[0].formatted == "30A-000.10"


def test_best_valid_confusion_weight() -> None:
    lattice = [line("51", [("6", 0.9), ("8", 0.1)], "12345")]
    assert best_valid(lattice, confusion_weight=0.0) is None
    found = best_valid(lattice, confusion_weight=1.0)
    assert found is not None and found[1] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="confusion_weight"):
        best_valid(lattice, confusion_weight=1.5)


def test_best_valid_raw_is_top_choice_per_position() -> None:
    found = best_valid([line("59", [("K", 0.3), ("X", 0.7)], "1"), line("234", [("S", 0.9)], "6")])
    assert found is not None
    assert found[0].raw == "59X1\n234S6"
    assert found[0].formatted == "59-X1 234.56"


def test_n_best_valid_is_ranked_and_distinct() -> None:
    lattice = [line("51", [("G", 0.6), ("C", 0.3), ("6", 0.1)], "12345")]
    found = n_best_valid(lattice, 5)
    # A one-line reading also fits a two-line 50cc plate typed on one line, through 1 -> T.
    assert [(p.formatted, round(q, 6), p.corrections) for p, q in found] == [
        ("51G-123.45", 0.6, 0),
        ("51C-123.45", 0.3, 0),
        ("51-GT 2345", 0.3, 1),
        ("51-CT 2345", 0.15, 1),
    ]
    assert len({p.compact for p, _ in found}) == len(found)
    assert n_best_valid(lattice, 1) == found[:1]
    with pytest.raises(ValueError, match="n must be"):
        n_best_valid(lattice, 0)


@pytest.mark.parametrize(("lines", "compact_"), [(v.values[0], v.values[1]) for v in VALID])
def test_best_valid_on_certain_text_agrees_with_parse(lines: str | list[str], compact_: str) -> None:
    given = [lines] if isinstance(lines, str) else [t for t in lines if t.strip()]
    found = best_valid([line(t) for t in given])
    assert found is not None
    assert found[0].compact == compact_
    assert found[1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------
# Other countries


@pytest.mark.parametrize(
    ("country", "lines", "compact_", "formatted", "kind", "corrections"),
    [
        ("br", ["AYO-9034"], "AYO9034", "AYO-9034", "legacy", 0),
        ("br", ["ABC1D23"], "ABC1D23", "ABC1D23", "mercosur", 0),
        ("br", ["ABC1B34"], "ABC1B34", "ABC1B34", "mercosur", 0),  # fifth character is a letter
        ("br", ["AYO-903A"], "AYO9034", "AYO-9034", "legacy", 1),
        ("br", ["AYO-9O34"], "AYO9O34", "AYO9O34", "mercosur", 0),  # a letter fits Mercosur's fifth
        ("br", ["4Y0-9034"], "AYO9034", "AYO-9034", "legacy", 2),
        ("br", ["ABC", "1234"], "ABC1234", "ABC-1234", "legacy", 0),
        ("eu", ["BA 268-IM"], "BA268IM", "BA268IM", "generic", 0),
        ("eu", ["RK3OOAG"], "RK3OOAG", "RK3OOAG", "generic", 0),
        ("eu", ["M5", "XSX"], "M5XSX", "M5XSX", "generic", 0),
        ("vn", ["51G-123.45"], "51G12345", "51G-123.45", "civilian", 0),
    ],
)
def test_other_countries(
    country: str, lines: list[str], compact_: str, formatted: str, kind: str, corrections: int
) -> None:
    p = parse(lines, country=country)
    assert p.valid, p.problem
    assert (p.compact, p.formatted, p.series_kind, p.corrections) == (compact_, formatted, kind, corrections)


@pytest.mark.parametrize(
    ("country", "lines", "problem"),
    [
        ("br", ["AB-1234"], "expected LLL-NNNN or Mercosur LLLNLNN, got 'AB1234'"),
        ("eu", ["AB1"], "expected 4 to 8 letters or digits, got 3"),
        ("eu", ["ABCDE12345"], "expected 4 to 8 letters or digits, got 10"),
    ],
)
def test_other_countries_invalid(country: str, lines: list[str], problem: str) -> None:
    p = parse(lines, country=country)
    assert not p.valid
    assert p.problem == problem


def test_grammar_registry() -> None:
    assert set(GRAMMARS) == {"vn", "eu", "br"}
    assert get_grammar("VN") is GRAMMARS["vn"]
    assert all(GRAMMARS[key].name == key for key in GRAMMARS)
    with pytest.raises(ValueError, match="unknown plate grammar 'xx'"):
        parse(["ABC"], country="xx")
    found = GRAMMARS["br"].best_valid([line("ABC", [("1", 0.6), ("I", 0.4)], "234")])
    assert found is not None and found[0].formatted == "ABC-1234"


# ----------------------------------------------------------------------------------------------------
# Real labels


def _labels(name: str) -> list[dict[str, str]]:
    path = DATA / name / "labels.csv"
    if not path.is_file():
        pytest.skip(f"plate data not found at {path} (the shared data folder beside the checkout)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _two_line_splits(label: str) -> list[list[str]]:
    """Every reading of a compact two-line label as (top, bottom): the bottom is its last 4-5 digits.

    ``59F11846`` can be ``59-F1`` / ``1846`` or ``59F`` / ``118.46``; both are returned.
    """
    m = re.fullmatch(r"(\d\d[A-ZĐ]+)(\d+)", label)
    assert m, f"label {label!r} is not province + letters + digits"
    head, digits = m.groups()
    splits = [[head, digits]] if len(digits) in (4, 5) else []
    if len(head) == 3 and len(digits) in (5, 6) and digits[0] != "0":
        splits.append([head + digits[0], digits[1:]])
    return splits


@pytest.mark.parametrize("name", ["vn_gold", "vn_crops"])
def test_every_vietnamese_label_parses(name: str) -> None:
    rows = _labels(name)
    failures: list[str] = []
    for row in rows:
        label, rows_ = row["text"], int(row["lines"])
        readings: Sequence[Sequence[str]] = [[label]] if rows_ == 1 else _two_line_splits(label)
        if not readings:
            failures.append(f"{label}: no 4-5 digit bottom line")
        for lines in readings:
            p = parse_vn(lines)
            if not p.valid or p.compact != label or (rows_ == 2 and p.lines != 2):
                failures.append(f"{label} as {lines}: {p.problem or p.compact}")
        whole = parse_vn(label)
        if not whole.valid or whole.compact != label:
            failures.append(f"{label} on one line: {whole.problem or whole.compact}")
    assert not failures, f"{len(failures)} of {len(rows)} labels fail: {failures[:20]}"


def test_every_scene_label_parses() -> None:
    rows = [r for r in _labels("vn_scenes") if r["text"]]
    failures = [(r["text"], p.problem) for r in rows for p in [parse_vn(r["text"])] if p.compact != r["text"]]
    assert not failures


@pytest.mark.parametrize("country", ["EU", "BR"])
def test_openalpr_labels_parse(country: str) -> None:
    rows = [r for r in _labels("openalpr") if r["country"] == country]
    assert rows
    results: list[tuple[str, PlateText]] = [
        (r["text"], parse(r["text"], country=country.lower())) for r in rows
    ]
    failures = [(text, p.problem or p.compact) for text, p in results if not p.valid or p.compact != text]
    assert not failures
