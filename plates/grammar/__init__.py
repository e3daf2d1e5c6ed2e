"""Licence-plate grammars: which readings are valid plates, confusion repair, canonical forms.

The Vietnamese grammar (`parse_vn`, `best_valid`) is the one the edge worker uses; ``eu`` and ``br``
exist for the OpenALPR benchmark. Every grammar implements `Grammar`; `parse` picks one by key.

    >>> parse_vn(["S9-X1", "Z34.S6"]).formatted
    '59-X1 234.56'
    >>> parse_vn("51G-l23.45").compact
    '51G12345'

Pure Python, no numpy or OpenCV: safe to import on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from plates.grammar.core import (
    DEFAULT_CONFUSION_WEIGHT,
    Field,
    Grammar,
    Layout,
    LineLattice,
    LineTemplate,
    Match,
    PlateText,
    TemplateGrammar,
    Vehicle,
    compact,
)
from plates.grammar.countries import BR, EU
from plates.grammar.provinces import NEVER_ISSUED, PROVINCE_CODES, PROVINCES, province_name
from plates.grammar.vn import (
    COLOUR_MEANING,
    DIGIT_FOR_LETTER,
    LAYOUTS,
    LETTER_FOR_DIGIT,
    LINE_TEMPLATES,
    SERIES_LETTERS,
    VN,
    PlateColour,
    best_valid,
    n_best_valid,
    parse_vn,
)

#: Grammars by key.
GRAMMARS: MappingProxyType[str, Grammar] = MappingProxyType({"vn": VN, "eu": EU, "br": BR})


def get_grammar(country: str) -> Grammar:
    """The grammar registered under `country` (``"vn"``, ``"eu"``, ``"br"``; case-insensitive).

    Raises:
        ValueError: no grammar has that key.
    """
    grammar = GRAMMARS.get(country.lower())
    if grammar is None:
        raise ValueError(f"unknown plate grammar {country!r}; choose one of {', '.join(GRAMMARS)}")
    return grammar


def parse(lines: str | Sequence[str], country: str = "vn") -> PlateText:
    """Judge OCR text lines (top to bottom) with the grammar of `country`.

    Raises:
        ValueError: unknown `country`.
    """
    return get_grammar(country).parse(lines)


__all__ = [
    "COLOUR_MEANING",
    "DEFAULT_CONFUSION_WEIGHT",
    "DIGIT_FOR_LETTER",
    "GRAMMARS",
    "LAYOUTS",
    "LETTER_FOR_DIGIT",
    "LINE_TEMPLATES",
    "NEVER_ISSUED",
    "PROVINCES",
    "PROVINCE_CODES",
    "SERIES_LETTERS",
    "Field",
    "Grammar",
    "Layout",
    "LineLattice",
    "LineTemplate",
    "Match",
    "PlateColour",
    "PlateText",
    "TemplateGrammar",
    "Vehicle",
    "best_valid",
    "compact",
    "get_grammar",
    "n_best_valid",
    "parse",
    "parse_vn",
    "province_name",
]
