"""Illegal stop in stopped traffic: queueing is not parking, parking next to a queue-free street is.

A 1920x1080 camera looks along a street that traffic drives up (towards smaller y). The no-parking
zone covers the traffic lane (x = 1000) and the curb lane (x = 1450); the zone has no light, so only
the traffic around a stopped car tells a queue from a parked car. Cars are 200x160 px boxes, tracks are
fed at 10 fps with a little box jitter through the real `RuleEngine`.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from tests.violations import Drive, make_scene, moving, run
from violations.rules import RuleEngine
from violations.types import ViolationEvent

CAR = (200.0, 160.0)
BIKE = (70.0, 120.0)
LANE_X, CURB_X = 1000.0, 1450.0
#: A car's bottom-centre is in view between these (its box top stays inside the frame).
TOP, BOTTOM = 160.0, 1080.0
ZONE: dict[str, Any] = {"id": "street", "kind": "no_parking", "max_dwell_s": 20,
                        "polygon": [[500, 350], [1700, 350], [1700, 1000], [500, 1000]]}  # fmt: skip


def engine(**zone: Any) -> RuleEngine:
    scene = make_scene(resolution=[1920, 1080], stop_lines=None, lights=None, stop_zones=[{**ZONE, **zone}])
    return RuleEngine(scene, rules=["illegal_stop"])


def _cross(path: list[tuple[float, float]], level: float) -> tuple[float, float] | None:
    """Where a (t, y) path with y never increasing first goes below `level`."""
    for (t0, y0), (t1, y1) in itertools.pairwise(path):
        if y0 >= level > y1:
            return t0 + (y0 - level) / (y0 - y1) * (t1 - t0), level
    return None


def in_view(tid: int, x: float, path: list[tuple[float, float]], cls: str = "car") -> Drive:
    """A vehicle driving up column `x` along a (t, y) path, tracked while its box is in the frame."""
    start = path[0] if path[0][1] <= BOTTOM else _cross(path, BOTTOM)
    end = path[-1] if path[-1][1] >= TOP else _cross(path, TOP)
    assert start is not None and end is not None, "the path never enters the frame"
    inner = [p for p in path if start[0] < p[0] < end[0]]
    points = [start, *inner, end]
    size = CAR if cls in ("car", "bus", "truck") else BIKE
    return Drive(tid, [(t, x, y) for t, y in points], cls, size=size, jitter=1.5, seed=tid)


# --- a stop-and-go jam ------------------------------------------------------------------------------

SLOT0, SLOT_PX = 400.0, 220.0  # bottom-centres of a stopped column: the front car at 400, then every 220 px
CREEP_S, WAVE_S = 4.0, 1.5  # creeping one slot takes 4 s; each car starts 1.5 s after the one ahead
STOPS_S = (30.0, 45.0, 60.0, 35.0, 50.0, 40.0, 30.0)  # how long the column stands between creeps


def jam(cars: int = 6, x: float = LANE_X) -> list[Drive]:
    """A column of `cars` cars arriving at 150 px/s, then standing 30-60 s at a time and creeping one slot
    forward between stops, through the zone and out of the top of the frame; at the end the jam clears."""
    go = [2.0 + STOPS_S[0]]
    for stop in STOPS_S[1:]:
        go.append(go[-1] + CREEP_S + stop)
    drives = []
    for i in range(cars):
        y = SLOT0 + SLOT_PX * i
        arrive = 2.0 + WAVE_S * i
        path = [(arrive - 900.0 / 150.0, y + 900.0), (arrive, y)]
        for k, g in enumerate(go):
            start = g + WAVE_S * i
            if k < len(go) - 1:
                path += [(start, y), (start + CREEP_S, y - SLOT_PX)]
                y -= SLOT_PX
            else:  # the jam clears: drive off at 300 px/s
                path += [(start, y), (start + (y + 200.0) / 300.0, -200.0)]
        drives.append(in_view(1 + i, x, path))
    return drives


def traffic(first_tid: int, t0: float, t1: float, every_s: float = 4.0, x: float = LANE_X) -> list[Drive]:
    """Cars driving up the traffic lane at 400 px/s (about 30 km/h), one every `every_s`."""
    return [
        moving(first_tid + k, (x, BOTTOM), (0.0, -400.0), t, t + (BOTTOM - TOP) / 400.0, cls="car", size=CAR)
        for k, t in enumerate(np.arange(t0, t1, every_s))
    ]


def oncoming(first_tid: int, t0: float, t1: float, every_s: float = 3.0) -> list[Drive]:
    """Cars driving down the far lane (x = 600) at 400 px/s."""
    return [
        moving(first_tid + k, (600.0, TOP), (0.0, 400.0), t, t + (BOTTOM - TOP) / 400.0, cls="car", size=CAR)
        for k, t in enumerate(np.arange(t0, t1, every_s))
    ]


def filtering_bikes(first_tid: int, t0: float, t1: float, every_s: float = 2.0) -> list[Drive]:
    """Motorbikes riding up between the jammed cars and the curb at 250 px/s."""
    return [
        moving(first_tid + k, (1220.0, BOTTOM), (0.0, -250.0), t, t + (BOTTOM - TOP) / 250.0, size=BIKE)
        for k, t in enumerate(np.arange(t0, t1, every_s))
    ]


JAM_END = 2.0 + sum(STOPS_S) + CREEP_S * (len(STOPS_S) - 1)

JAM_CASES: list[tuple[str, list[Drive]]] = [
    ("jam", jam()),
    ("jam_with_oncoming_traffic", jam() + oncoming(100, 0.0, JAM_END)),
    ("jam_with_motorbikes_filtering_past", jam() + filtering_bikes(100, 0.0, JAM_END)),
]


@pytest.mark.parametrize("drives", [pytest.param(d, id=name) for name, d in JAM_CASES])
def test_stop_and_go_jam_is_not_illegal_stopping(drives: list[Drive]) -> None:
    """Six cars stand 30-60 s at a time inside the zone (max_dwell_s 20) while the jam creeps through it."""
    assert run(engine(), drives) == []


def test_jam_already_standing_when_tracking_starts_is_not_fined() -> None:
    """The camera (re)starts in a jam: the cars were never seen driving, so their direction of travel is
    unknown; standing close together still makes them a queue. They stand 50 s, creep a slot, stand 35 s."""
    drives = []
    for i in range(4):
        y, wave = SLOT0 + SLOT_PX * i, WAVE_S * i
        path = [(0.0, y), (50.0 + wave, y), (54.0 + wave, y - SLOT_PX), (90.0, y - SLOT_PX)]
        drives.append(in_view(1 + i, LANE_X, path))
    assert run(engine(), drives) == []


def test_without_the_queue_excuse_the_jam_would_be_fined() -> None:
    """The jam of the test above does stand in the zone longer than allowed: with max_queue_s 0 (no
    queue excuse) its stops are fined."""
    events = run(engine(max_queue_s=0), jam())
    assert len({e.track_id for e in events}) == 6


# --- parked cars ------------------------------------------------------------------------------------


def parked(tid: int, y: float, t_park: float, t_leave: float, x: float = CURB_X) -> Drive:
    """Drives up the curb lane at 200 px/s, parks at `y` from `t_park` to `t_leave`, drives off."""
    come = (BOTTOM - y) / 200.0 + 0.5
    path = [(t_park - come, y + 200.0 * come), (t_park, y), (t_leave, y), (t_leave + 5.0, y - 1000.0)]
    return in_view(tid, x, path)


def fined_at(events: list[ViolationEvent]) -> dict[int, float]:
    """Track id → when its (single) illegal-stop event was established."""
    assert len(events) == len({e.track_id for e in events}), "a vehicle was reported twice"
    return {e.track_id: e.ts for e in events}


#: Fined within this long after max_dwell_s of standing: the stationary test needs a full motion window.
LATE_S = 2.0


def test_car_parked_while_traffic_drives_past_is_fined_after_max_dwell() -> None:
    events = run(engine(), [parked(1, 600.0, 3.0, 183.0), *traffic(100, 0.0, 190.0)])
    assert fined_at(events).keys() == {1}
    assert 3.0 + 20.0 <= events[0].ts <= 3.0 + 20.0 + LATE_S
    assert events[0].details["traffic_queue_s"] == 0


def test_row_of_parked_cars_next_to_flowing_traffic_is_fined() -> None:
    """A car that parks behind another one is in a column until the next car drives past it (traffic
    comes every 4 s): fined after max_dwell_s, that wait at most added."""
    parks = {1: (500.0, 3.0), 2: (720.0, 8.0), 3: (940.0, 13.0)}
    drives = [parked(tid, y, t, 183.0) for tid, (y, t) in parks.items()]
    events = run(engine(), drives + traffic(100, 0.0, 190.0, every_s=4.0))
    when = fined_at(events)
    assert when.keys() == {1, 2, 3}
    for tid, (_, t_park) in parks.items():
        assert t_park + 20.0 <= when[tid] <= t_park + 20.0 + 4.0 + LATE_S


def test_lone_car_parked_on_an_empty_street_is_fined_after_max_dwell() -> None:
    events = run(engine(), [parked(1, 600.0, 3.0, 183.0)])
    assert fined_at(events).keys() == {1}
    assert 3.0 + 20.0 <= events[0].ts <= 3.0 + 20.0 + LATE_S


@pytest.mark.parametrize("max_queue_s", [60.0, 180.0])
def test_row_of_parked_cars_on_an_empty_street_is_fined_within_the_queue_bound(max_queue_s: float) -> None:
    """With no traffic at all a parked row looks like a queue: it is excused for max_queue_s at most."""
    parks = {1: (500.0, 3.0), 2: (720.0, 8.0), 3: (940.0, 13.0)}
    drives = [parked(tid, y, t, 250.0) for tid, (y, t) in parks.items()]
    events = run(engine(max_queue_s=max_queue_s), drives)
    when = fined_at(events)
    assert when.keys() == {1, 2, 3}
    for ev in events:
        t_park = parks[ev.track_id][1]
        assert when[ev.track_id] <= t_park + 20.0 + max_queue_s + LATE_S
        assert ev.details["traffic_queue_s"] <= max_queue_s
        assert ev.details["dwell_s"] >= 20.0
