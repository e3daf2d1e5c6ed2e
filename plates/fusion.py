"""Per-track plate fusion: read a vehicle's plate on a few good frames, vote, stop once confident.

A plate is never read on every frame. `rank_views` orders the frames of a track by how readable its
plate is likely to be (plate size, sharpness, how square-on it is); `PlateVote` accumulates the
readings of the best few and `PlateVote.result` returns the fused plate, its confidence and ranked
alternatives. Voting is per character between readings of the same layout (a character misread in
one frame is outvoted by the others), with the grammar checking that the voted string is a plate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from plates.grammar import compact as compact_text
from plates.grammar import parse
from plates.types import PlateReading

#: Share of the (quality × confidence) weight that must read a character for the fused plate to keep it.
CHARACTER_MAJORITY = 2 / 3


@dataclass(frozen=True, slots=True)
class View:
    """One candidate frame of a vehicle's plate."""

    frame_index: int
    crop: npt.NDArray[np.uint8]  # the plate crop, BGR
    plate_wh: tuple[float, float]  # plate box size in the frame, pixels
    detector_confidence: float


def sharpness(crop: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of the grey crop: low for motion blur and defocus."""
    import cv2

    if crop.size == 0:
        return 0.0
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def view_quality(view: View) -> float:
    """A score for how readable a view is likely to be; only the ranking matters.

    Height matters most (characters need ~15 px to read), sharpness next; a plate much narrower than
    its usual aspect is seen at an angle.
    """
    w, h = view.plate_wh
    if w <= 0 or h <= 0:
        return 0.0
    size = min(h, 60.0) / 60.0
    sharp = min(sharpness(view.crop), 800.0) / 800.0
    aspect = w / h
    # one-line plates ≈ 4.3:1, two-line ≈ 1.4:1; anything in between is plausible, far outside is not
    angle = 1.0 if 1.0 <= aspect <= 5.5 else 0.5
    return (0.5 * size + 0.3 * sharp + 0.2 * view.detector_confidence) * angle


def rank_views(views: Sequence[View], limit: int = 5) -> list[View]:
    """The `limit` most readable views, best first."""
    return sorted(views, key=view_quality, reverse=True)[:limit]


@dataclass(frozen=True, slots=True)
class FusedPlate:
    """The fused reading of one vehicle's plate."""

    formatted: str | None  # "59-X1 234.56", or None when unreadable
    compact: str | None  # "59X123456"
    confidence: float  # 0..1: weighted share of the readings that support it, times their confidence
    reads: int  # how many readings were fused
    agreeing: int  # how many of them read exactly this plate
    alternatives: tuple[tuple[str, float], ...]  # (formatted, score), best first
    raw: tuple[str, ...]  # each reading's raw text, for the evidence


@dataclass(slots=True)
class PlateVote:
    """Accumulates readings of one vehicle's plate.

    Args:
        min_agree: readings that must agree before `confident` can be true.
        stop_confidence: fused confidence at which reading more frames is pointless.
    """

    min_agree: int = 2
    stop_confidence: float = 0.8
    _readings: list[tuple[PlateReading, float]] = field(default_factory=list)

    def add(self, reading: PlateReading, weight: float = 1.0) -> None:
        """Add one reading, weighted by the view's quality."""
        self._readings.append((reading, max(weight, 1e-3)))

    @property
    def confident(self) -> bool:
        """Enough agreeing, confident readings: stop reading this vehicle."""
        r = self.result()
        return (
            r.formatted is not None and r.agreeing >= self.min_agree and r.confidence >= self.stop_confidence
        )

    def result(self) -> FusedPlate:
        """The fused plate so far.

        A wrong plate sends a fine to someone else, an unreadable one goes to an officer who reads the
        stills: so a plate is reported only when readings the reader itself calls readable back it
        (one of them read exactly it, or three or more agree on it character by character) and it has
        at least half of their weight. Two readable readings that disagree, or a lone reading below
        the reader's threshold, give unreadable, with the candidates kept as alternatives.
        """
        raws = tuple(r.raw for r, _ in self._readings)
        scores: dict[str, float] = defaultdict(float)  # every reading: the alternatives shown
        backing: dict[str, float] = defaultdict(float)  # readable readings only: what decides
        total = sum(w for _, w in self._readings)
        for reading, w in self._readings:
            for formatted, prob in reading.alternatives:
                scores[formatted] += w * prob
                if reading.readable:
                    backing[formatted] += w * prob
        voted = self._vote_characters()
        if voted is not None:
            # A per-character vote that forms a valid plate is backed by every reading that shares its
            # characters; give it the support of its best-matching readings.
            support = self._support(voted)
            scores[voted] = max(scores.get(voted, 0.0), support)
            backing[voted] = max(backing.get(voted, 0.0), support)
        if not scores or total <= 0:
            return FusedPlate(None, None, 0.0, len(self._readings), 0, (), raws)
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        alternatives = tuple((f, round(s / total, 4)) for f, s in ranked[:5])
        read_exactly = {r.text for r, _ in self._readings if r.readable}
        backed = [(f, b) for f, b in backing.items() if f in read_exactly or f == voted]
        best, best_score = max(backed, key=lambda kv: kv[1]) if backed else (None, 0.0)
        # Out of the readable readings' weight: a view too blurred to read (or read just under the
        # reader's threshold) is no evidence against the plate the readable ones agree on.
        readable_total = sum(w for r, w in self._readings if r.readable)
        confidence = min(1.0, best_score / readable_total) if readable_total > 0 else 0.0
        if best is None or confidence < 0.5 or not self._agreed_per_character(best):
            top = ranked[0][1] / total
            return FusedPlate(None, None, round(min(1.0, top), 4), len(self._readings), 0, alternatives, raws)
        agreeing = sum(1 for r, _ in self._readings if r.readable and r.text == best)
        return FusedPlate(
            best, compact_text(best), round(confidence, 4), len(self._readings), agreeing, alternatives, raws
        )

    def _agreed_per_character(self, formatted: str) -> bool:
        """Whether, at every position, at least `CHARACTER_MAJORITY` of the weight of the readable
        readings of the same length reads this plate's character: one sharp view reading a 7 where
        two smaller ones read a 1 is a disputed character, not a plate."""
        target = compact_text(formatted)
        members = [
            (r.plate.compact, w * max(r.confidence, 1e-3))
            for r, w in self._readings
            if r.readable and r.plate is not None and r.plate.compact and len(r.plate.compact) == len(target)
        ]
        if len(members) < 2:
            return True
        weight = sum(w for _, w in members)
        for i, ch in enumerate(target):
            if sum(w for text, w in members if text[i] == ch) < CHARACTER_MAJORITY * weight:
                return False
        return True

    def _support(self, formatted: str) -> float:
        target = compact_text(formatted)
        support = 0.0
        for reading, w in self._readings:
            if not reading.readable or reading.plate is None or reading.plate.compact is None:
                continue
            other = reading.plate.compact
            if len(other) != len(target):
                continue
            same = sum(a == b for a, b in zip(other, target, strict=True)) / len(target)
            support += w * reading.confidence * same
        return support

    def _vote_characters(self) -> str | None:
        """Weighted per-position vote among valid readings of the most common length and layout."""
        groups: dict[tuple[int, int], list[tuple[str, float]]] = defaultdict(list)
        for reading, w in self._readings:
            plate = reading.plate
            if not reading.readable or plate is None or plate.compact is None or plate.formatted is None:
                continue
            top = plate.top_length if plate.top_length is not None else len(plate.compact)
            key = (len(plate.compact), top)
            groups[key].append((plate.compact, w * max(reading.confidence, 1e-3)))
        if not groups:
            return None
        (length, top), members = max(groups.items(), key=lambda kv: sum(w for _, w in kv[1]))
        if len(members) < 3:
            return None  # two readings that differ are a disagreement, not a vote
        chars = []
        for i in range(length):
            tally: dict[str, float] = defaultdict(float)
            for text, w in members:
                tally[text[i]] += w
            chars.append(max(tally.items(), key=lambda kv: kv[1])[0])
        voted = "".join(chars)
        parsed = parse([voted] if top >= length else [voted[:top], voted[top:]])
        return parsed.formatted if parsed.valid else None
