"""Vietnamese licence-plate grammar: what a valid plate is, confusion repair, canonical forms.

Rules implemented (Circular 79/2024/TT-BCA on vehicle registration, as amended by Circulars
13/2025 and 51/2025; plate sizes and layouts in QCVN 08:2024/BCA):

Province code
    Two digits, 11-99, except the never-issued 13, 42, 44, 45, 46, 87, 91, 96 (see
    `plates.grammar.provinces`). The 2025 province merger kept every existing code in use, so
    plates with a pre-merger code are valid.

Series
    Letters from the 20 used in series: ``A B C D E F G H K L M N P S T U V X Y Z``. ``I J O Q W``
    never appear. ``R`` appears only as the trailer series ``R``, in ``RM``, as the second letter
    of a two-letter motorbike series, and in the motorbike series ``R1``-``R9`` of before 2010,
    which therefore come only with 4 digits (``51-R4`` over ``2488``: seen on real plates in the
    checked evaluation set, although the circular no longer issues them).

    ============  ===========================  =====================================  ===============
    kind          series                       example                                vehicle
    ============  ===========================  =====================================  ===============
    civilian      one letter                   ``51G-123.45``, ``52Y-6490``, square   car
                                               rear plate ``30G`` / ``823.47``
    civilian      letter + digit 1-9           ``59-X1`` / ``234.56``; old ``2345``   motorbike
    civilian      ``R`` + digit, 4 digits only ``51-R4`` / ``2488``                   motorbike
    50cc          two letters                  ``29-AA`` / ``123.45``                 motorbike
    special       ``LD KT DA TĐ HC CD RM``     ``93LD-001.03``, ``50TĐ-821.08``        see below
    special       ``R`` (trailers)             ``51R-141.39``                         car
    special       ``MĐ`` + digit (electric)    ``29-MĐ1`` / ``013.53``                motorbike
    special       ``MK`` [+ digit] (tractors)  ``29MK1-123.45``                       unknown
    special       ``T`` temporary              ``T29-123.45``                         unknown
    foreign       ``NG NN QT CV``              ``41-291-NG-01``, ``80NG`` / ``636-70``  car / moto
    ============  ===========================  =====================================  ===============

    LD (foreign-invested firms), KT (military enterprises), DA (foreign-funded projects), TĐ
    (pilot vehicles) and CD are issued to cars and motorbikes alike: vehicle ``unknown``. HC
    (restricted-area cars) and RM (semi-trailers) are cars.

Number
    4 digits (older plates, printed ``6490``) or 5 digits (printed ``123.45``).

Foreign plates (NG diplomatic, QT international organisations, CV administrative/technical staff,
NN other foreign organisations and persons): province/office code, a 3-digit country or
organisation code, the series, and an order number of 2 digits (cars) or 3 digits (motorbikes).
Long (one-line) plates print ``41-291-NG-01``; short (two-line) plates print ``80NG`` over
``636-70``; the arrangement ``80-011`` over ``NG-01`` is accepted as well. Sources: the
Circular 58/2020 (and 15/2014) text on foreign plates quoted by plo.vn and thuvienphapluat.vn, the
example ``41-291-NG-01`` (Hungarian consulate, giatgan.com), and the layouts handled by public plate
parsers (github.com/poohoh/regex_license_plate; hongquan's vietnam-plate parser: ``80NG-636-70``,
``80-011-NG-01``). The temporary ``T`` + province + 5 digits layout comes from those parsers too
and could not be checked against the circular's appendix.

Not covered: military plates (red, two letters + digits, no province code) and economic-zone
series; such readings come out invalid.

Confusions repaired, only where the layout needs the other class (each one counted in
`PlateText.corrections`): letter for digit ``D→0 B→8 S→5 Z→2 G→6 T→1 A→4 O→0 I→1 Q→0`` (and a
lower-case ``l→1``); digit for letter ``0→D 8→B 5→S 2→Z 6→G 1→T 4→A``. Among readings that fit,
the one with the fewest corrections wins. A consequence to know: ``5919 12345`` reads as
``59-T9 123.45`` with one correction, because ``1``/``T`` is a confusion pair; ``5979 12345`` stays
invalid (``7`` is no letter's look-alike). OCR's ``D`` is read as ``Đ`` where the series is ``TĐ``
or ``MĐ`` (not a correction); ``TD`` is always ``TĐ``, while ``MD`` without a digit is the 50cc
series ``MD``.

Canonical forms: `PlateText.compact` is the characters top line first (``59X123456``,
``51G12345``, ``50TĐ82108``), the form of the evaluation labels. `PlateText.formatted` is
``59-X1 234.56`` for motorbikes and ``51G-123.45`` for everything else, whatever the layout
(``30G`` over ``823.47`` is ``30G-823.47``); foreign plates keep their own groups.

Separators: a dash, dot, space or junk character is accepted between groups, at the dot of
``123.45`` and at the ends, never inside the province code or the series (``5-9`` or ``X-1`` is not a
plate). A two-line plate typed or read as one line (``59-X1 234.56``, ``59X123456``) is accepted and
reported with ``lines=2``; when a string fits both a one-line and a two-line layout with the same
characters (``59X12345`` is ``59X-123.45`` or ``59-X1 2345``), the one-line car reading wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from plates.grammar.core import (
    DEFAULT_CONFUSION_WEIGHT,
    DIGITS,
    Field,
    Layout,
    LineLattice,
    LineTemplate,
    Match,
    PlateText,
    Readings,
    TemplateGrammar,
    Vehicle,
    compact,
    fold_char,
    join_templates,
)
from plates.grammar.provinces import PROVINCE_CODES

# ----------------------------------------------------------------------------------------------------
# Colours


class PlateColour(StrEnum):
    """Background colour of a Vietnamese plate (decided from pixels elsewhere) and what it means."""

    WHITE = "white"
    YELLOW = "yellow"
    BLUE = "blue"
    RED = "red"

    @property
    def meaning(self) -> str:
        """Who carries plates of this colour."""
        return COLOUR_MEANING[self]


COLOUR_MEANING: MappingProxyType[PlateColour, str] = MappingProxyType(
    {
        PlateColour.WHITE: "private: persons and firms not in the transport business; foreign plates",
        PlateColour.YELLOW: "commercial: transport businesses (and economic-zone vehicles)",
        PlateColour.BLUE: "state: government agencies and public bodies",
        PlateColour.RED: "military: army units and defence enterprises",
    }
)

# ----------------------------------------------------------------------------------------------------
# Character classes and confusion pairs

#: The 20 series letters.
SERIES_LETTERS = frozenset("ABCDEFGHKLMNPSTUVXYZ")
#: Letters that never appear in a series.
NEVER_LETTERS = frozenset("IJOQW")
#: Two-letter special series without a digit.
SPECIAL_SERIES = frozenset({"LD", "KT", "DA", "TĐ", "HC", "CD", "RM"})
#: Foreign series.
FOREIGN_SERIES = frozenset({"NG", "NN", "QT", "CV"})
#: Two-letter 50cc series: any two series letters (second may be R) not reserved for another use.
FIFTY_CC_SERIES = (
    frozenset(a + b for a in SERIES_LETTERS for b in SERIES_LETTERS | {"R"})
    - SPECIAL_SERIES
    - FOREIGN_SERIES
    - {"MK", "TD"}
)
#: Vehicle of special series used on one class only; the rest are ``unknown``.
_SERIES_VEHICLE: dict[str, Vehicle] = {"R": "car", "RM": "car", "HC": "car"}

#: Digit a letter is mistaken for, where the grammar needs a digit.
DIGIT_FOR_LETTER: MappingProxyType[str, str] = MappingProxyType(
    {"D": "0", "B": "8", "S": "5", "Z": "2", "G": "6", "T": "1", "A": "4", "O": "0", "I": "1", "Q": "0"}
)
#: Letter a digit is mistaken for, where the grammar needs a letter.
LETTER_FOR_DIGIT: MappingProxyType[str, str] = MappingProxyType(
    {"0": "D", "8": "B", "5": "S", "2": "Z", "6": "G", "1": "T", "4": "A"}
)


@lru_cache(maxsize=1024)
def vn_reads(ch: str) -> Readings:
    """What one raw OCR character may stand for on a Vietnamese plate: ``((char, is_correction), ...)``.

    ``D`` (or ``Đ``) stands for both ``D`` and ``Đ``; a lower-case ``l`` for ``L`` or, as a
    correction, ``1``. Non-alphanumerics stand for nothing.
    """
    if ch == "l":
        return (("L", False), ("1", True))
    c = fold_char(ch)
    if not c:
        return ()
    if c == "Đ":
        c = "D"
    out: list[tuple[str, bool]] = [(c, False)]
    if c == "D":
        out.append(("Đ", False))
    if c in DIGIT_FOR_LETTER:
        out.append((DIGIT_FOR_LETTER[c], True))
    if c in LETTER_FOR_DIGIT:
        letter = LETTER_FOR_DIGIT[c]
        out.append((letter, True))
        if letter == "D":
            out.append(("Đ", True))
    return tuple(out)


# ----------------------------------------------------------------------------------------------------
# Templates and layouts


def _set(chars: Iterable[str]) -> frozenset[str]:
    return frozenset(chars)


_D = DIGITS
_N = DIGITS - {"0"}
_L = SERIES_LETTERS

PROVINCE = Field("province", (_D, _D), pair=PROVINCE_CODES)
NUMBER4 = Field("number", (_D,) * 4)
NUMBER5 = Field("number", (_D,) * 5, inner_open=(3,))
COUNTRY = Field("country", (_D,) * 3)
ORDER2 = Field("order", (_D,) * 2)
ORDER3 = Field("order", (_D,) * 3)
TEMPORARY = Field("prefix", (_set("T"),), exact=True)

S_LETTER = Field("series", (_L,))
S_TRAILER = Field("series", (_set("R"),))
S_MOTO = Field("series", (_L, _N))
S_MOTO_R = Field("series", (_set("R"), _N))
S_50CC = Field("series", (_L, _L | {"R"}), pair=FIFTY_CC_SERIES)
S_SPECIAL = Field(
    "series",
    (_set({s[0] for s in SPECIAL_SERIES}), _set({s[1] for s in SPECIAL_SERIES})),
    pair=SPECIAL_SERIES,
)
S_ELECTRIC = Field("series", (_set("M"), _set("Đ"), _N))
S_TRACTOR = Field("series", (_set("M"), _set("K")))
S_TRACTOR_N = Field("series", (_set("M"), _set("K"), _N))
S_FOREIGN = Field(
    "series",
    (_set({s[0] for s in FOREIGN_SERIES}), _set({s[1] for s in FOREIGN_SERIES})),
    pair=FOREIGN_SERIES,
)


def _layouts() -> tuple[Layout, ...]:
    t = LineTemplate.build
    numbers = {"5": NUMBER5, "4": NUMBER4}
    bottoms = {nd: t(f"bottom:{nd}", number) for nd, number in numbers.items()}
    out: list[Layout] = []

    def plate(name: str, series: Field, vehicle: Vehicle, kind: str, digits: str = "54") -> None:
        for nd in digits:
            tpl = t(f"line:{name}+{nd}", PROVINCE, series, numbers[nd])
            out.append(Layout(name, (tpl,), vehicle, kind, "plate"))

    def square(
        name: str, series: Field, vehicle: Vehicle, kind: str, joinable: bool, digits: str = "54"
    ) -> None:
        top = t(f"top:{name}", PROVINCE, series)
        for nd in digits:
            joined = join_templates(f"joined:{name}+{nd}", top, bottoms[nd]) if joinable else None
            out.append(Layout(name, (top, bottoms[nd]), vehicle, kind, "plate", joined))

    def foreign(order: Field, vehicle: Vehicle) -> None:
        n = len(order.slots)
        long = t(f"line:foreign+{n}", PROVINCE, COUNTRY, S_FOREIGN, order)
        out.append(Layout("foreign-long", (long,), vehicle, "foreign", "foreign-long"))
        top, bottom = t("top:foreign", PROVINCE, S_FOREIGN), t(f"bottom:country+{n}", COUNTRY, order)
        joined = join_templates(f"joined:foreign+{n}", top, bottom)
        out.append(Layout("foreign-short", (top, bottom), vehicle, "foreign", "foreign-short", joined))
        top, bottom = t("top:country", PROVINCE, COUNTRY), t(f"bottom:foreign+{n}", S_FOREIGN, order)
        out.append(Layout("foreign-country-top", (top, bottom), vehicle, "foreign", "foreign-long"))

    # Order = preference when two layouts fit with as many corrections: one-line before two-line
    # (for text on one line), common before rare.
    plate("car", S_LETTER, "car", "civilian")
    plate("trailer", S_TRAILER, "car", "special")
    plate("special", S_SPECIAL, "unknown", "special")
    plate("tractor-digit", S_TRACTOR_N, "unknown", "special")
    plate("tractor", S_TRACTOR, "unknown", "special")
    temporary = t("line:temporary", TEMPORARY, PROVINCE, NUMBER5)
    out.append(Layout("temporary", (temporary,), "unknown", "special", "temporary"))
    # Two-line plates; `joinable` where the one-line form is not already a one-line layout.
    square("motorbike", S_MOTO, "motorbike", "civilian", True)
    # R1..R9: motorbike series of before 2010, so only with a 4-digit number (51-R4 2488).
    square("motorbike-r", S_MOTO_R, "motorbike", "civilian", True, digits="4")
    square("electric", S_ELECTRIC, "motorbike", "special", True)
    square("50cc", S_50CC, "motorbike", "50cc", True)
    square("car-square", S_LETTER, "car", "civilian", False)
    square("trailer-square", S_TRAILER, "car", "special", False)
    square("special-square", S_SPECIAL, "unknown", "special", False)
    square("tractor-digit-square", S_TRACTOR_N, "unknown", "special", False)
    square("tractor-square", S_TRACTOR, "unknown", "special", False)
    temporary_top = t("top:temporary", TEMPORARY, PROVINCE)
    out.append(Layout("temporary-square", (temporary_top, bottoms["5"]), "unknown", "special", "temporary"))
    foreign(ORDER2, "car")
    foreign(ORDER3, "motorbike")
    # One-line layouts first (stable): for text on one line a one-line reading beats a joined one.
    return tuple(sorted(out, key=lambda lay: len(lay.lines)))


#: Every Vietnamese layout, in order of preference when two fit equally well.
LAYOUTS: tuple[Layout, ...] = _layouts()


def _unique(tpls: list[LineTemplate]) -> tuple[LineTemplate, ...]:
    seen: dict[str, LineTemplate] = {}
    for tpl in tpls:
        seen.setdefault(tpl.name, tpl)
    return tuple(seen.values())


#: Per-position character classes of every line a Vietnamese plate can have, for constrained
#: decoding. Keys: ``one_line`` (plates printed on one line), ``top`` and ``bottom`` (the lines of
#: two-line plates; `LAYOUTS` says which top goes with which bottom), ``joined`` (a two-line plate
#: read as one line). Each `LineTemplate` has ``slots`` (allowed characters per position),
#: ``pairs`` (two-slot constraints: province codes, two-letter series), ``pattern`` (``DD-LN``) and
#: ``accepts(text)``. Slots hold output characters: ``Đ`` appears in ``TĐ`` / ``MĐ``; an OCR ``D``
#: stands for it.
LINE_TEMPLATES: MappingProxyType[str, tuple[LineTemplate, ...]] = MappingProxyType(
    {
        "one_line": _unique([lay.lines[0] for lay in LAYOUTS if len(lay.lines) == 1]),
        "top": _unique([lay.lines[0] for lay in LAYOUTS if len(lay.lines) == 2]),
        "bottom": _unique([lay.lines[1] for lay in LAYOUTS if len(lay.lines) == 2]),
        "joined": _unique([lay.joined for lay in LAYOUTS if lay.joined is not None]),
    }
)


# ----------------------------------------------------------------------------------------------------
# Results


def _number(digits: str) -> str:
    return f"{digits[:3]}.{digits[3:]}" if len(digits) == 5 else digits


def _build(m: Match, raw: str) -> PlateText:
    parts = m.parts
    province = parts.get("province", "")
    series = parts.get("series", "")
    vehicle: Vehicle = _SERIES_VEHICLE.get(series, m.layout.vehicle)
    style = m.layout.style
    if style == "foreign-long":
        formatted = f"{province}-{parts['country']}-{series}-{parts['order']}"
    elif style == "foreign-short":
        formatted = f"{province}{series}-{parts['country']}-{parts['order']}"
    elif style == "temporary":
        series = "T"
        formatted = f"T{province}-{_number(parts['number'])}"
    elif vehicle == "motorbike":
        formatted = f"{province}-{series} {_number(parts['number'])}"
    else:
        formatted = f"{province}{series}-{_number(parts['number'])}"
    return PlateText(
        raw=raw,
        valid=True,
        compact=m.compact,
        formatted=formatted,
        lines=m.lines,
        vehicle=vehicle,
        series_kind=m.layout.series_kind,
        corrections=m.corrections,
        problem=None,
        province=province,
        series=series,
        top_length=m.top_length,
    )


def _diagnose(cleaned: list[str], raw_lines: list[str]) -> str:
    """One phrase on why no layout fits; `cleaned` are the non-empty lines in `compact` form."""
    text = "".join(cleaned)
    if len(text) < 6:
        return f"too short for a plate: {text!r}"
    if text[0] == "T" and text[1:].isdigit() and text[1:3] in PROVINCE_CODES:
        return f"temporary plate needs 5 digits after the province code, got {len(text) - 3}"
    head = text[:2]
    province = "".join(DIGIT_FOR_LETTER.get(c, c) for c in head)
    if not province.isdigit():
        return f"no province code: plate starts with {head!r}"
    if province not in PROVINCE_CODES:
        return f"unknown province code {province}"
    if len(cleaned) == 2:
        top_rest, number = cleaned[0][2:], cleaned[1]
    else:
        rest = text[2:]
        top_rest = rest[: len(rest) - len(rest.lstrip("ABCDĐEFGHIJKLMNOPQRSTUVWXYZ"))]
        number = rest[len(top_rest) :]
    series = top_rest.rstrip("0123456789")
    series_digits = top_rest[len(series) :]
    first = (top_rest or number)[:1]
    if not series:
        return f"series must start with a letter, got {first!r}" if first else "no series after the code"
    bad = [c for c in series if c in NEVER_LETTERS]
    if bad:
        return f"letter {bad[0]} is never used in a series"
    if series == "R" and len(series_digits) == 1 and len(number) != 4:
        return f"series {top_rest} exists only on old plates with 4 digits"
    if series[0] == "R" and series not in ("R", "RM"):
        return "R starts no series except R, RM and the old R1-R9"
    if series in FOREIGN_SERIES:
        return f"foreign series {series} needs a 3-digit country code and a 2- or 3-digit order"
    if len(series) > 2 and series[:2] not in ("MĐ", "MD", "MK"):
        return f"series {series} is not a plate series"
    if series_digits == "0" and len(series) == 1:
        return "series digit must be 1-9, got 0"
    if len(series_digits) > 1:
        return f"series {top_rest} has too many digits"
    letters = [c for c in number if not c.isdigit()]
    if letters:
        return f"unexpected letter {letters[0]} in the number"
    if len(number) not in (4, 5):
        return f"expected 4 or 5 digits, got {len(number)}"
    if any(len(compact(r)) != len(r) for r in raw_lines) and VN.parse(cleaned).valid:
        return "separator inside the province code or series"
    return f"no plate layout fits {text!r}"


def _reject(m: Match) -> str | None:
    """Why a reading the layouts allow is still no plate: numbers run from 0001 / 000.01 up."""
    number = m.parts.get("number", "")
    if number and not number.strip("0"):
        return f"number {_number(number)} is never issued"
    return None


#: The Vietnamese grammar object (a `plates.grammar.Grammar`).
VN = TemplateGrammar("vn", LAYOUTS, vn_reads, _build, _diagnose, reject=_reject)


def parse_vn(lines: str | Sequence[str]) -> PlateText:
    """Judge OCR text of a Vietnamese plate.

    Args:
        lines: 1 or 2 OCR strings, top to bottom (a bare string is one line). Separators (``-``,
            ``.``, space, ``·``, ``:``), lower case and stray characters at the ends (``|``) are
            tolerated; empty lines are dropped.

    Returns:
        A `PlateText`: valid with canonical forms, or invalid with the raw text and the reason.
        Never raises on bad text.
    """
    return VN.parse(lines)


def best_valid(
    lines_candidates: Sequence[LineLattice],
    *,
    confusion_weight: float = DEFAULT_CONFUSION_WEIGHT,
) -> tuple[PlateText, float] | None:
    """Most probable valid Vietnamese plate over per-position alternatives.

    Args:
        lines_candidates: per line (1 or 2, top first), per position, ``(char, prob)`` alternatives
            (top-k from CTC). ``""`` means "maybe no character"; separator characters may be
            skipped between groups.
        confusion_weight: factor on a character taken through a confusion pair (``S`` where a
            digit must be, read as ``5``); 0 allows only characters among the alternatives.

    Returns:
        (plate, probability): the probability is the product of the chosen characters'
        probabilities (with `confusion_weight` per correction); None when no layout fits.

    Raises:
        ValueError: `confusion_weight` outside [0, 1].
    """
    return VN.best_valid(lines_candidates, confusion_weight=confusion_weight)


def n_best_valid(
    lines_candidates: Sequence[LineLattice],
    n: int = 5,
    *,
    confusion_weight: float = DEFAULT_CONFUSION_WEIGHT,
) -> list[tuple[PlateText, float]]:
    """Up to `n` distinct valid Vietnamese plates, most probable first (see `best_valid`).

    Raises:
        ValueError: `n` < 1 or `confusion_weight` outside [0, 1].
    """
    return VN.n_best_valid(lines_candidates, n, confusion_weight=confusion_weight)
