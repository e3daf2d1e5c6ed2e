"""Plate queries of the review list: normalisation, wildcards and edit-distance neighbourhoods.

Pure functions (no database): `api.services.review` turns a `PlateQuery` into SQL.

Query syntax (what an officer types): the plate with or without separators, any case
(`30a-123.45` = `30A12345`); `*` for any run of characters and `?` for exactly one (`30A*`,
`*12345`, `30A?2345`). A fuzzy query (`max_distance` 1 or 2) finds plates within that Levenshtein
distance (one or two characters substituted, inserted or deleted: the usual OCR slips `8`/`B`,
`0`/`D`, a lost character).

Distance 1 is answered exactly and from the plate index: the query's whole neighbourhood (every string
one edit away, ~700 strings for a 9-character plate) is looked up with `IN`. Distance 2 has ~250,000
neighbours, too many to look up, so it is a bounded scan instead (see `api.services.review`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

# Characters of stored plate keys: what the grammar produces (digits, Latin capitals and Đ of the
# TĐ/MĐ series) plus the letters it never issues (I J O Q W), which an invalid OCR reading may hold.
PLATE_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZĐ"
MAX_QUERY_CHARS: Final = 16
MIN_WILDCARD_LITERALS: Final = 2
_SEPARATORS: Final = str.maketrans("", "", " -.·:_")
_QUERY = re.compile(r"^[0-9A-ZĐ*?]+$")

QueryKind = Literal["exact", "wildcard", "fuzzy"]


class PlateQueryError(ValueError):
    """A plate query that cannot be searched; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class PlateQuery:
    """A normalised plate query. `text` holds only `PLATE_ALPHABET`, `*` and `?`."""

    text: str
    kind: QueryKind
    max_distance: int = 0

    @property
    def literal_prefix(self) -> str:
        """The characters before the first wildcard (the part a B-tree range can use)."""
        return re.split(r"[*?]", self.text, maxsplit=1)[0]


def normalise_plate(text: str) -> str:
    """Upper case without separators: `30a-123.45` → `30A12345` (no validation)."""
    return text.strip().upper().translate(_SEPARATORS)


def parse_plate_query(raw: str, max_distance: int = 0) -> PlateQuery:
    """Parse what an officer typed.

    Args:
        raw: the query, e.g. `30A-123.45`, `30a*`, `*12345`, `30A?2345`.
        max_distance: 0 for exact/wildcard search, 1 or 2 for fuzzy search.

    Raises:
        PlateQueryError: empty or too long, characters other than plate characters and `*`/`?`,
            a wildcard query with fewer than 2 plate characters, wildcards in a fuzzy query, or a
            distance other than 0-2.
    """
    if max_distance not in (0, 1, 2):
        raise PlateQueryError(f"fuzzy distance must be 0, 1 or 2 (got {max_distance})")
    text = normalise_plate(raw)
    if not text:
        raise PlateQueryError("plate query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise PlateQueryError(f"plate query longer than {MAX_QUERY_CHARS} characters")
    if not _QUERY.fullmatch(text):
        raise PlateQueryError("plate query may hold only letters, digits, '*' and '?'")
    wild = "*" in text or "?" in text
    if wild:
        if max_distance:
            raise PlateQueryError("a fuzzy plate query cannot contain '*' or '?'")
        literals = sum(1 for c in text if c not in "*?")
        if literals < MIN_WILDCARD_LITERALS:
            raise PlateQueryError(f"a wildcard query needs at least {MIN_WILDCARD_LITERALS} plate characters")
        # Runs of '*' mean the same as one; keeping one keeps the SQL pattern short.
        text = re.sub(r"\*+", "*", text)
        return PlateQuery(text, "wildcard")
    return PlateQuery(text, "fuzzy" if max_distance else "exact", max_distance)


def like_pattern(query: PlateQuery) -> str:
    """The SQL LIKE pattern of a wildcard query (`*` → `%`, `?` → `_`; nothing else needs escaping
    because a query holds only plate characters)."""
    return query.text.replace("*", "%").replace("?", "_")


def glob_pattern(query: PlateQuery) -> str:
    """The SQLite GLOB pattern of a wildcard query (GLOB already speaks `*` and `?`, is case-sensitive
    and uses the plate index for the literal prefix)."""
    return query.text


def neighbours(text: str, alphabet: str = PLATE_ALPHABET) -> frozenset[str]:
    """Every string within Levenshtein distance 1 of `text` (itself included).

    For a string of length n over an alphabet of size k: n·(k-1) substitutions, (n+1)·k insertions and
    n deletions, before removing repeats (about 700 for a 9-character plate).
    """
    out = {text}
    for i in range(len(text) + 1):
        head, tail = text[:i], text[i:]
        for c in alphabet:
            out.add(head + c + tail)  # insertion before position i
            if tail:
                out.add(head + c + tail[1:])  # substitution at position i
        if tail:
            out.add(head + tail[1:])  # deletion at position i
    return frozenset(out)


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance between `a` and `b`.

    With `limit`, stops as soon as the distance is known to exceed it and returns `limit + 1`
    (cheap rejection for the bounded fuzzy scan).
    """
    if a == b:
        return 0
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if limit is not None and min(current) > limit:
            return limit + 1
        previous = current
    d = previous[-1]
    return d if limit is None or d <= limit else limit + 1
