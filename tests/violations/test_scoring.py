"""Matching detected event frames to labelled ones."""

from __future__ import annotations

import pytest

from violations.scoring import match_frames


@pytest.mark.parametrize(
    ("detected", "labelled", "hits"),
    [
        ([10, 20], [11, 19], 2),
        ([10, 11], [10], 1),  # one labelled event matches once
        ([10], [16], 0),  # 6 frames apart: too far
        ([10], [15], 1),
        ([], [1, 2], 0),
        ([3, 30, 31], [2, 29, 45], 2),
    ],
)
def test_match_frames(detected: list[int], labelled: list[int], hits: int) -> None:
    assert match_frames(detected, labelled) == hits
