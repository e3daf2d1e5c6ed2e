"""The plate a notice shows: the reading while uncorrected, the correction (formatted) after."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from api.notices.plate import shown_plate


@dataclass(frozen=True)
class _V:
    plate_formatted: str | None
    plate_corrected: str | None
    plate_key: str | None


@pytest.mark.parametrize(
    ("violation", "shown"),
    [
        (_V("30A-123.46", None, "30A12346"), "30A-123.46"),
        (_V("30A-123.46", "30A12345", "30A12345"), "30A-123.45"),
        (_V(None, "29B199999", "29B199999"), "29-B1 999.99"),
        (_V(None, None, "30A12345"), "30A-123.45"),
        (_V("30A-123.46", "XYZ", "XYZ"), "XYZ"),  # not a plate the grammar reads: as stored
        (_V(None, None, None), ""),
    ],
)
def test_shown_plate(violation: _V, shown: str) -> None:
    assert shown_plate(violation) == shown
