"""Keyset pagination cursors: an opaque token for the position (occurred_at, id) in a newest-first list.

The next page is `WHERE (occurred_at, id) < cursor ORDER BY occurred_at DESC, id DESC LIMIT n`: an
index range scan that costs the same on page 1 and page 10,000 (OFFSET would read and drop every
earlier row). Rows inserted meanwhile never shift a page, nor make a row appear twice.

The token is URL-safe base64 of `v1:<ISO time>:<id>`. It is opaque to clients (they must not build
one) but not secret: it carries no more than the last row of the page they were shown.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

_VERSION = "v1"
MAX_CURSOR_CHARS = 200


class CursorError(ValueError):
    """A cursor that is not one of ours (or from an older format). One line for the client."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after which the next page starts (the last row of the previous page)."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        """The opaque token (URL-safe base64 without padding)."""
        t = self.occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
        raw = f"{_VERSION}:{t}:{self.id}".encode("ascii")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Parse a token made by `encode`.

        Raises:
            CursorError: anything else (bad base64, wrong version, bad time or id).
        """
        if not token or len(token) > MAX_CURSOR_CHARS:
            raise CursorError("invalid cursor")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            version, rest = raw.split(":", 1)
            t_text, id_text = rest.rsplit(":", 1)
            if version != _VERSION or not id_text.isdigit() or int(id_text) > 2**63 - 1:
                raise ValueError(raw)
            t = datetime.fromisoformat(t_text)
            if t.tzinfo is None or not 1900 <= t.year <= 9000:
                raise ValueError(t_text)
            t = t.astimezone(UTC)
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise CursorError("invalid cursor (use the next_cursor of a previous page)") from None
        return cls(t, int(id_text))
