"""Scoring detected events against events labelled by eye (frame numbers), for tests and tools."""

from __future__ import annotations

from collections.abc import Iterable


def match_frames(detected: Iterable[int], labelled: Iterable[int], tolerance: int = 5) -> int:
    """Greedy one-to-one matching of frame numbers in time order; returns the number of matches.

    A detected event matches the nearest still-free labelled one when they are at most `tolerance`
    frames apart (0.8 s at 6 fps for the default).
    """
    free = sorted(labelled)
    hits = 0
    for frame in sorted(detected):
        best = min(free, key=lambda f: abs(f - frame), default=None)
        if best is not None and abs(best - frame) <= tolerance:
            free.remove(best)
            hits += 1
    return hits
