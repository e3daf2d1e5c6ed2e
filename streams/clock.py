"""The time stamped on live frames: wall-clock seconds that advance with the monotonic clock.

A speed is a distance over the time between frames, and a red-light duration a difference of two frame
times, so those differences must not move when the system clock does. ``time.time()`` does move: NTP
steps it (ntpd steps offsets over 128 ms; chrony when configured to), an installer sets it by hand, a
box without a battery-backed clock boots in 1970 and jumps to today. A 0.2 s step inside a 1 s speed
window is a 20 % wrong speed, enough for a false fine.

`FrameClock` counts with ``time.monotonic()`` from a wall-clock anchor. It follows the wall clock
without ever being moved by it faster than `SLEW` (0.1 % of elapsed time, so a duration is off by at
most 0.1 %, well inside a speed's stated uncertainty), and takes a difference of more than `STEP_S` in
one logged jump: evidence must carry the right time of day, and the rules treat such a jump as a gap
(forward) or as time going back (backward), as they do for a reconnect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: Largest rate at which the frame clock moves towards the wall clock (seconds per second).
SLEW = 0.001
#: A wall clock further than this from the frame clock has been set, not drifted: follow it at once.
STEP_S = 1.0


class FrameClock:
    """Monotonic seconds on the wall clock's scale (epoch seconds). Thread-safe."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        slew: float = SLEW,
        step_s: float = STEP_S,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._slew = slew
        self._step_s = step_s
        self._lock = threading.Lock()
        self._base: float | None = None  # frame-clock time at `_at`
        self._at = 0.0  # monotonic time of the last reading

    def __call__(self) -> float:
        """The current time. Never decreases, except by a logged step of more than `step_s`."""
        with self._lock:
            wall, mono = self._wall(), self._monotonic()
            if self._base is None:
                self._base, self._at = wall, mono
                return wall
            elapsed = max(0.0, mono - self._at)
            now = self._base + elapsed
            offset = wall - now
            if abs(offset) > self._step_s:
                logger.warning("system clock moved by %+.3f s: frame times follow it in one step", offset)
                now = wall
            else:
                limit = self._slew * elapsed
                now += max(-limit, min(limit, offset))
            self._base, self._at = now, mono
            return now


#: The clock of every live source and of the edge service in this process.
frame_clock = FrameClock()
