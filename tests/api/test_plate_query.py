"""Plate query parsing, patterns, neighbourhoods and edit distance; keyset cursors (pure functions)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from api.pagination import Cursor, CursorError
from api.plate_query import (
    PLATE_ALPHABET,
    PlateQuery,
    PlateQueryError,
    edit_distance,
    glob_pattern,
    like_pattern,
    neighbours,
    parse_plate_query,
)


@pytest.mark.parametrize(
    ("raw", "distance", "expected", "error"),
    [
        ("30A-123.45", 0, PlateQuery("30A12345", "exact"), None),
        ("  30a 123 45 ", 0, PlateQuery("30A12345", "exact"), None),
        ("50tđ-821.08", 0, PlateQuery("50TĐ82108", "exact"), None),
        ("30a*", 0, PlateQuery("30A*", "wildcard"), None),
        ("**12345", 0, PlateQuery("*12345", "wildcard"), None),
        ("30A?2345", 0, PlateQuery("30A?2345", "wildcard"), None),
        ("30A12345", 1, PlateQuery("30A12345", "fuzzy", 1), None),
        ("30A12345", 2, PlateQuery("30A12345", "fuzzy", 2), None),
        ("", 0, None, "empty"),
        ("-. ", 0, None, "empty"),
        ("30A%", 0, None, "only letters, digits"),
        ("30A_1", 0, PlateQuery("30A1", "exact"), None),  # '_' is a separator, not a wildcard
        ("30A'; DROP", 0, None, "only letters, digits"),
        ("30A\x00", 0, None, "only letters, digits"),
        ("*1*", 0, None, "at least 2 plate characters"),
        ("30A*", 1, None, "cannot contain"),
        ("30A12345", 3, None, "0, 1 or 2"),
        ("1" * 17, 0, None, "longer than 16"),
    ],
)
def test_parse_plate_query(raw: str, distance: int, expected: PlateQuery | None, error: str | None) -> None:
    if error is not None:
        with pytest.raises(PlateQueryError, match=error):
            parse_plate_query(raw, distance)
        return
    assert parse_plate_query(raw, distance) == expected


@pytest.mark.parametrize(
    ("text", "like", "glob", "prefix"),
    [
        ("30A*", "30A%", "30A*", "30A"),
        ("*12345", "%12345", "*12345", ""),
        ("30A?2345", "30A_2345", "30A?2345", "30A"),
    ],
)
def test_patterns(text: str, like: str, glob: str, prefix: str) -> None:
    q = PlateQuery(text, "wildcard")
    assert (like_pattern(q), glob_pattern(q), q.literal_prefix) == (like, glob, prefix)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("30A12345", "30A12345", 0),
        ("30A12345", "30A12346", 1),
        ("30A12345", "30B12345", 1),
        ("30A12345", "30A1234", 1),
        ("30A12345", "30AA12345", 1),
        ("30A12345", "3A12345", 1),
        ("30A12345", "80A12845", 2),
        ("30A12345", "03A12345", 2),  # a transposition is two edits
        ("30A12345", "29B112345", 4),
        ("", "ABC", 3),
    ],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance == edit_distance(b, a)
    assert edit_distance(a, b, limit=1) == min(distance, 2)


def test_neighbours_are_exactly_the_strings_one_edit_away() -> None:
    text = "51G12"
    near = neighbours(text)
    assert text in near
    assert all(edit_distance(text, s) <= 1 for s in near)
    # Every string of length 4..6 over a small alphabet that is within distance 1 is in the set.
    alphabet = "15G2X"
    small = neighbours(text, alphabet)
    for n in (4, 5, 6):
        for chars in itertools.product(alphabet, repeat=n):
            s = "".join(chars)
            assert (edit_distance(text, s) <= 1) == (s in small), s
    n, k = len(text), len(PLATE_ALPHABET)
    assert len(near) <= 1 + n * (k - 1) + (n + 1) * k + n


def test_cursor_round_trip_and_refusals() -> None:
    rng = random.Random(1)
    for _ in range(50):
        t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**14))
        c = Cursor(t, rng.randrange(1, 2**62))
        assert Cursor.decode(c.encode()) == c
    hanoi = datetime(2026, 11, 23, 7, 0, tzinfo=timezone(timedelta(hours=7)))
    assert Cursor.decode(Cursor(hanoi, 5).encode()).occurred_at == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    import base64

    def token(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    for bad in (
        "",
        "not base64 !",
        "x" * 300,
        token("v0:2026-11-23T00:00:00+00:00:5"),
        token("v1:2026-11-23T00:00:00:5"),  # naive time
        token("v1:2026-11-23T00:00:00+00:00:-5"),
        token("v1:0001-01-01T00:00:00+05:00:5"),
        token("v1:yesterday:5"),
        token("v1:2026-11-23T00:00:00+00:00:" + "9" * 30),
    ):
        with pytest.raises(CursorError):
            Cursor.decode(bad)
