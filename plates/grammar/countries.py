"""Plate grammars of other countries, for the OpenALPR benchmark: a generic European one and Brazil.

``eu``
    Generic: 4 to 8 letters or digits, read in order; lines are joined. No layout, so nothing is
    corrected (``RK3OOAG`` stays as it is). This accepts every EU label of the OpenALPR benchmark
    (Croatian ``ZA834CO``, German ``WOBVWMK4``, vanity ``GWAGEN``, ...).
``br``
    Brazil: the legacy ``LLL-NNNN`` (``AYO-9034``) and Mercosur ``LLLNLNN`` (``ABC1D23``), on one
    line (cars) or two (motorcycles: ``ABC`` over ``1234`` / ``1D23``). All 26 letters are used.
    Confusions are corrected where the layout needs the other class: letter for digit
    ``O→0 Q→0 D→0 I→1 T→1 B→8 S→5 Z→2 G→6 A→4``, digit for letter ``0→O 1→I 8→B 5→S 2→Z 6→G 4→A``.
    Mercosur's fifth character is a letter, so ``ABC1B34`` is Mercosur, not legacy ``ABC-1834``.
"""

from __future__ import annotations

from functools import lru_cache

from plates.grammar.core import (
    DIGITS,
    Field,
    Layout,
    LineTemplate,
    Match,
    PlateText,
    Readings,
    TemplateGrammar,
    compact,
    fold_char,
)

_LATIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _LATIN | DIGITS


def _plain_reads(ch: str) -> Readings:
    c = fold_char(ch)
    if not c:
        return ()
    return (("D" if c == "Đ" else c, False),)


def _eu_layouts() -> tuple[Layout, ...]:
    out = []
    for n in range(4, 9):
        # One group per character: a separator may stand anywhere.
        tpl = LineTemplate.build(f"line:eu{n}", *[Field("text", (_ALNUM,)) for _ in range(n)])
        out.append(Layout(f"eu{n}", (tpl,), "unknown", "generic", "generic"))
    return tuple(out)


def _eu_build(m: Match, raw: str) -> PlateText:
    rows = sum(1 for line in raw.split("\n") if compact(line)) or 1
    return PlateText(
        raw, True, m.compact, m.compact, rows, "unknown", "generic", 0, None, top_length=len(m.compact)
    )


def _eu_diagnose(cleaned: list[str], raw_lines: list[str]) -> str:
    return f"expected 4 to 8 letters or digits, got {sum(len(c) for c in cleaned)}"


#: Generic European grammar.
EU = TemplateGrammar("eu", _eu_layouts(), _plain_reads, _eu_build, _eu_diagnose, join_lines=True)

_BR_DIGIT_FOR_LETTER = {
    "O": "0", "Q": "0", "D": "0", "I": "1", "T": "1", "B": "8", "S": "5", "Z": "2", "G": "6", "A": "4",
}  # fmt: skip
_BR_LETTER_FOR_DIGIT = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A"}


@lru_cache(maxsize=512)
def br_reads(ch: str) -> Readings:
    """What one raw character may stand for on a Brazilian plate: ``((char, is_correction), ...)``."""
    if ch == "l":
        return (("L", False), ("1", True))
    c = fold_char(ch)
    if not c:
        return ()
    if c == "Đ":
        c = "D"
    out = [(c, False)]
    if c in _BR_DIGIT_FOR_LETTER:
        out.append((_BR_DIGIT_FOR_LETTER[c], True))
    if c in _BR_LETTER_FOR_DIGIT:
        out.append((_BR_LETTER_FOR_DIGIT[c], True))
    return tuple(out)


def _br_layouts() -> tuple[Layout, ...]:
    letters = Field("letters", (_LATIN,) * 3)
    legacy = Field("digits", (DIGITS,) * 4)
    mercosur = Field("digits", (DIGITS, _LATIN, DIGITS, DIGITS))
    t = LineTemplate.build
    top = t("top:br", letters)
    old_bottom, new_bottom = t("bottom:br-legacy", legacy), t("bottom:br-mercosur", mercosur)
    return (
        Layout("legacy", (t("line:br-legacy", letters, legacy),), "car", "legacy", "legacy"),
        Layout("mercosur", (t("line:br-mercosur", letters, mercosur),), "car", "mercosur", "mercosur"),
        Layout("legacy-moto", (top, old_bottom), "motorbike", "legacy", "legacy"),
        Layout("mercosur-moto", (top, new_bottom), "motorbike", "mercosur", "mercosur"),
    )


def _br_build(m: Match, raw: str) -> PlateText:
    letters, digits = m.parts["letters"], m.parts["digits"]
    formatted = f"{letters}-{digits}" if m.layout.style == "legacy" else f"{letters}{digits}"
    return PlateText(
        raw=raw,
        valid=True,
        compact=m.compact,
        formatted=formatted,
        lines=m.lines,
        vehicle=m.layout.vehicle,
        series_kind=m.layout.series_kind,
        corrections=m.corrections,
        problem=None,
        series=letters,
        top_length=m.top_length,
    )


def _br_diagnose(cleaned: list[str], raw_lines: list[str]) -> str:
    return f"expected LLL-NNNN or Mercosur LLLNLNN, got {''.join(cleaned)!r}"


#: Brazilian grammar.
BR = TemplateGrammar("br", _br_layouts(), br_reads, _br_build, _br_diagnose)
