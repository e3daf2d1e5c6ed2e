"""Capped exponential backoff with jitter, for reconnecting to cameras.

Jitter spreads the reconnects of many edge workers that lost the same network at the same moment,
so they do not all knock on the server (or the NVR) in step.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays ``initial, 2·initial, 4·initial, …`` capped at ``maximum``, each scaled by a random
    factor in ``[1 - jitter, 1 + jitter]`` and capped again.

    Args:
        initial_s: first delay in seconds (> 0).
        maximum_s: largest delay in seconds (>= initial_s).
        jitter: fraction in [0, 1).
        rng: random source; pass a seeded ``random.Random`` for reproducible delays.

    Raises:
        ValueError: on out-of-range arguments.
    """

    def __init__(
        self, initial_s: float, maximum_s: float, jitter: float, rng: random.Random | None = None
    ) -> None:
        if initial_s <= 0:
            raise ValueError(f"initial_s must be > 0, got {initial_s}")
        if maximum_s < initial_s:
            raise ValueError(f"maximum_s ({maximum_s}) must be >= initial_s ({initial_s})")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._base = initial_s

    def next_delay(self) -> float:
        """The delay to sleep now; doubles the next one (up to the cap)."""
        base = self._base
        self._base = min(self._base * 2.0, self.maximum_s)
        factor = 1.0 + self._rng.uniform(-self.jitter, self.jitter) if self.jitter else 1.0
        return min(base * factor, self.maximum_s)

    def reset(self) -> None:
        """Start again from ``initial_s`` (after a connection proved healthy)."""
        self._base = self.initial_s
