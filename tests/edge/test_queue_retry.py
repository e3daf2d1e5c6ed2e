"""While the outbox cannot take packages (disk full), the worker offers them again every few seconds,
not on every frame (each offer re-reads, re-hashes and re-checks a package), and says so once."""

from __future__ import annotations

import logging
import queue
import time
import types
from pathlib import Path

import pytest

from phatnguoi.edge import EdgeWorker
from phatnguoi.outbox import OutboxError
from phatnguoi.uploader import UploaderStats
from streams import HealthState, SourceHealth


class _FullOutbox:
    def __init__(self) -> None:
        self.offers: list[Path] = []
        self.full = True

    def enqueue_package(self, path: Path) -> types.SimpleNamespace:
        self.offers.append(path)
        if self.full:
            raise OutboxError("database or disk is full")
        return types.SimpleNamespace(status="queued", reason=None)

    def enqueue_flows(self, counts: list[object]) -> int:
        self.offers.append(Path(f"flows-{len(counts)}"))
        if self.full:
            raise OutboxError("database or disk is full")
        return len(counts)

    def alert(self, *args: object) -> None:
        pass


def test_a_full_outbox_is_retried_on_a_timer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr("phatnguoi.edge.time.monotonic", lambda: now[0])
    box = _FullOutbox()
    first = [types.SimpleNamespace(status="written", path=Path("ev-1"), event_id="e1", error=None)]
    cam = types.SimpleNamespace(
        pipeline=types.SimpleNamespace(built=first), config=types.SimpleNamespace(id="cam1")
    )
    worker = types.SimpleNamespace(outbox=box, _unqueued=[], _queue_retry_at=0.0)
    with caplog.at_level(logging.ERROR, logger="phatnguoi.edge"):
        for _ in range(250):  # 10 s of frames at 25 fps
            EdgeWorker._queue_built(worker, cam)  # type: ignore[arg-type]
            now[0] += 0.04
    assert 2 <= len(box.offers) <= 3
    assert len([r for r in caplog.records if "cannot queue" in r.getMessage()]) == 1
    box.full = False
    cam.pipeline.built = [
        types.SimpleNamespace(status="written", path=Path("ev-2"), event_id="e2", error=None)
    ]
    EdgeWorker._queue_built(worker, cam, force=True)  # type: ignore[arg-type]
    assert box.offers[-2:] == [Path("ev-1"), Path("ev-2")] and worker._unqueued == []


def test_flow_counts_are_retried_on_a_timer_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr("phatnguoi.edge.time.monotonic", lambda: now[0])
    box = _FullOutbox()
    worker = types.SimpleNamespace(outbox=box, _unsent_flows=["c1", "c2", "c3"], _flows_retry_at=None)
    with caplog.at_level(logging.INFO, logger="phatnguoi.edge"):
        for _ in range(250):  # 10 s of frames at 25 fps
            EdgeWorker._queue_flows(worker)  # type: ignore[arg-type]
            now[0] += 0.04
        assert 2 <= len(box.offers) <= 3
        assert len([r for r in caplog.records if "cannot queue 3 flow counts" in r.getMessage()]) == 1
        box.full = False
        worker._unsent_flows.append("c4")
        EdgeWorker._queue_flows(worker, force=True)  # type: ignore[arg-type]
    assert box.offers[-1] == Path("flows-4") and worker._unsent_flows == []
    assert worker._flows_retry_at is None
    assert caplog.records[-1].getMessage() == "the outbox takes flow counts again"


def test_a_silent_camera_does_not_hold_up_one_with_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dead camera is listed first: the live camera's frame is taken at once, without waiting on
    the dead one's queue (that wait cost every tick 50 ms and halved a live camera's frame rate)."""
    slept: list[float] = []
    monkeypatch.setattr("phatnguoi.edge.time.sleep", slept.append)
    dead = types.SimpleNamespace(ended=False, frames=queue.Queue())
    live = types.SimpleNamespace(ended=False, frames=queue.Queue())
    frame = object()
    live.frames.put(frame)
    worker = types.SimpleNamespace(cameras=[dead, live])
    assert EdgeWorker._collect(worker) == [(live, frame)]  # type: ignore[arg-type]
    assert slept == []
    # Nothing anywhere: it polls every queue until TICK_WAIT_S, then gives the loop back.
    assert EdgeWorker._collect(worker) == []  # type: ignore[arg-type]
    assert len(slept) >= 1
    ended = types.SimpleNamespace(ended=False, frames=queue.Queue())
    ended.frames.put(None)  # a file source that ended
    worker.cameras = [ended]
    assert EdgeWorker._collect(worker) == [] and ended.ended  # type: ignore[arg-type]


def _health_of(cameras: list[object], uploader: object | None = None) -> dict[str, object]:
    worker = types.SimpleNamespace(
        cameras=cameras,
        _closed=True,
        _last_outbox={},
        config=types.SimpleNamespace(device=types.SimpleNamespace(id="edge-1")),
        uploader=uploader,
    )
    return EdgeWorker.health(worker)  # type: ignore[arg-type]


def _camera(state: HealthState, last_frame_age_s: float | None, started_s_ago: float) -> object:
    health = SourceHealth(state, 10, 10, 0, 0, last_frame_age_s, None, 0.0)
    return types.SimpleNamespace(
        config=types.SimpleNamespace(id="cam1"),
        source=types.SimpleNamespace(health=lambda: health),
        started=time.monotonic() - started_s_ago,
        processed=0,
        events=0,
        gaps=0,
        last_gap=None,
    )


@pytest.mark.parametrize(
    ("state", "age", "started", "ok"),
    [
        (HealthState.LIVE, 0.1, 100.0, True),
        (HealthState.CONNECTING, None, 5.0, True),  # first connection, just started
        (HealthState.CONNECTING, None, 100.0, False),  # never connected after the grace
        (HealthState.CONNECTING, 6.0, 100.0, False),  # reconnecting: the camera is down
        (HealthState.BACKOFF, 6.0, 100.0, False),
        (HealthState.ENDED, 1.0, 100.0, True),  # a file that ended
    ],
)
def test_health_says_a_camera_that_is_not_delivering_is_not_ok(
    state: HealthState, age: float | None, started: float, ok: bool
) -> None:
    assert _health_of([_camera(state, age, started)])["ok"] is ok


def test_health_is_not_ok_while_the_server_refuses_the_device_key() -> None:
    def uploader(**stats: object) -> object:
        return types.SimpleNamespace(stats=lambda: UploaderStats(**stats))  # type: ignore[arg-type]

    refused = _health_of([], uploader(consecutive_failures=3, last_cause="auth", last_error="HTTP 401"))
    assert refused["ok"] is False and refused["uploader"]["last_cause"] == "auth"  # type: ignore[index]
    offline = _health_of([], uploader(consecutive_failures=3, last_cause="network", last_error="timeout"))
    assert offline["ok"] is True  # the uplink is down: nothing the box can do, the outbox keeps it all
    assert _health_of([], uploader())["ok"] is True
