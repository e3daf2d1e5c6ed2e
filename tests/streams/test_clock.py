"""The live frames' clock: durations from the monotonic clock, the time of day from the wall clock."""

from __future__ import annotations

import logging
import threading
from itertools import pairwise

import pytest

from streams.clock import SLEW, STEP_S, FrameClock


class Clocks:
    """A monotonic clock and a wall clock that the test moves by hand."""

    def __init__(self, wall: float = 1_763_900_000.0) -> None:
        self.mono = 1000.0
        self.wall = wall

    def tick(self, dt: float, wall_dt: float | None = None) -> None:
        self.mono += dt
        self.wall += dt if wall_dt is None else wall_dt

    def clock(self) -> FrameClock:
        return FrameClock(wall=lambda: self.wall, monotonic=lambda: self.mono)


def test_starts_on_the_wall_clock_and_counts_monotonic_time() -> None:
    c = Clocks()
    clock = c.clock()
    assert clock() == c.wall
    c.tick(0.04)
    assert clock() == pytest.approx(c.wall, abs=1e-9)


@pytest.mark.parametrize("step_s", [0.2, -0.2, 0.9, -0.9])
def test_a_small_clock_step_does_not_bend_a_duration(step_s: float) -> None:
    """NTP steps the system clock by 0.2 s between two frames 40 ms apart: the frame times still differ
    by 40 ms (within the slew), and the frame clock reaches the wall clock again within step/SLEW."""
    c = Clocks()
    clock = c.clock()
    t0 = clock()
    c.tick(0.04, wall_dt=0.04 + step_s)
    t1 = clock()
    assert t1 - t0 == pytest.approx(0.04, abs=0.04 * SLEW + 1e-6)  # epoch seconds: ~1e-7 float steps
    for _ in range(int(abs(step_s) / SLEW) + 2):  # one second at a time
        c.tick(1.0)
        clock()
    assert clock() == pytest.approx(c.wall, abs=1e-6)


def test_a_slewing_wall_clock_is_followed_without_jumps() -> None:
    """A wall clock running 300 ppm fast (NTP slewing a drift away): frame times follow it, every
    step between frames within 0.1 % of the monotonic one."""
    c = Clocks()
    clock = c.clock()
    last = clock()
    for _ in range(36_000):  # an hour at 10 frames/s
        c.tick(0.1, wall_dt=0.1 * 1.0003)
        now = clock()
        assert 0.1 * (1 - SLEW) - 1e-6 <= now - last <= 0.1 * (1 + SLEW) + 1e-6
        last = now
    assert last == pytest.approx(c.wall, abs=0.01)


@pytest.mark.parametrize("step_s", [-3600.0, -(STEP_S + 0.5), STEP_S + 0.5, 86_400.0 * 365])
def test_the_clock_being_set_is_followed_at_once_and_logged(
    step_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone set the time (or the box booted in 1970 and NTP fixed it): the evidence must carry the
    real time of day, so the frame clock jumps with it, once, and says so."""
    c = Clocks()
    clock = c.clock()
    clock()
    with caplog.at_level(logging.WARNING, logger="streams.clock"):
        c.tick(0.04, wall_dt=0.04 + step_s)
        assert clock() == c.wall
    assert [r.getMessage() for r in caplog.records] == [
        f"system clock moved by {step_s:+.3f} s: frame times follow it in one step"
    ]
    c.tick(0.04)
    assert clock() == pytest.approx(c.wall, abs=1e-9)


def test_never_goes_back_while_the_wall_clock_does_by_less_than_a_step() -> None:
    c = Clocks()
    clock = c.clock()
    times = [clock()]
    for k in range(50):
        c.tick(0.02, wall_dt=-0.01 if k % 2 else 0.05)
        times.append(clock())
    assert all(b >= a for a, b in pairwise(times))


def test_readers_on_several_threads_see_one_increasing_clock() -> None:
    clock = FrameClock()
    seen: list[list[float]] = [[] for _ in range(4)]

    def read(out: list[float]) -> None:
        for _ in range(2000):
            out.append(clock())

    threads = [threading.Thread(target=read, args=(s,)) for s in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seen:
        assert all(b >= a for a, b in pairwise(s))
