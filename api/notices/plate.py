"""The plate a notice shows (SMS, paper notice, public lookup): one rule for every place it is printed.

The device's formatted reading (`plate_formatted`) is shown only while no reviewer corrected the plate;
after a correction it is the corrected plate (`plate_key`), formatted the Vietnamese way
(`30A-123.45`) when the grammar reads it without repairs, else as stored.
"""

from __future__ import annotations

from typing import Protocol

from plates.grammar import parse_vn


class PlatedViolation(Protocol):
    """The plate fields of `api.models.Violation` that `shown_plate` reads."""

    @property
    def plate_formatted(self) -> str | None: ...

    @property
    def plate_corrected(self) -> str | None: ...

    @property
    def plate_key(self) -> str | None: ...


def shown_plate(violation: PlatedViolation) -> str:
    """The plate printed for `violation`: the reading while uncorrected, else the correction ("" when
    there is neither)."""
    if violation.plate_corrected is None and violation.plate_formatted:
        return violation.plate_formatted
    return formatted_plate(violation.plate_key or "")


def formatted_plate(key: str) -> str:
    """A compact plate (`30A12345`) the Vietnamese way (`30A-123.45`) when the grammar reads it without
    repairs, else as it is."""
    if not key:
        return ""
    parsed = parse_vn(key)
    if parsed.valid and not parsed.corrections and parsed.compact == key and parsed.formatted:
        return parsed.formatted
    return key
