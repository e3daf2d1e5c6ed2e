"""Result types of the plate reader.

`PlateReading` is what `PlateReader.read` returns for one crop; `StageTimes` says where the time went.
Character alternatives come from the CTC decoder as plain tuples so that the grammar (which knows
nothing of the recogniser) can consume them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from plates.grammar import PlateText

#: Alternatives at one emitted character position, best first: ((char, prob), ...).
Position: TypeAlias = tuple[tuple[str, float], ...]
#: One text line as a sequence of positions.
LineCandidates: TypeAlias = tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds spent in each stage of reading one crop."""

    detect_ms: float = 0.0
    rectify_ms: float = 0.0
    recognise_ms: float = 0.0
    grammar_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class PlateReading:
    """The reading of one plate crop.

    Attributes:
        raw: what the recogniser saw, lines top to bottom joined by ``" / "`` (separators kept).
        plate: the grammar's best valid parse, or None when no valid plate fits the characters.
        confidence: 0..1, share of `plate` in the probability of all valid readings of the
            characters (recogniser probabilities times the series-kind prior); 0 when `plate` is None.
        valid: a grammar-valid plate was found (it may still be below the confidence threshold).
        readable: `valid` and ``confidence >= threshold``; only a readable plate should be acted on.
        lines: 1 or 2 text lines found on the crop (0 when no text was found).
        alternatives: valid plates (formatted, share as for `confidence`), best first; the first
            is `plate`. Empty when no valid plate fits.
        times: per-stage milliseconds.
    """

    raw: str
    plate: PlateText | None
    confidence: float
    valid: bool
    readable: bool
    lines: int
    alternatives: tuple[tuple[str, float], ...]
    times: StageTimes

    @property
    def compact(self) -> str | None:
        """Canonical text (``59X123456``) of a readable plate, else None."""
        return self.plate.compact if self.readable and self.plate is not None else None

    @property
    def text(self) -> str | None:
        """Formatted text (``59-X1 234.56``) of a readable plate, else None."""
        return self.plate.formatted if self.readable and self.plate is not None else None
