"""While the outbox cannot take packages (disk full), the worker offers them again every few seconds,
not on every frame (each offer re-reads, re-hashes and re-checks a package), and says so once."""

from __future__ import annotations

import logging
import types
from pathlib import Path

import pytest

from phatnguoi.edge import EdgeWorker
from phatnguoi.outbox import OutboxError


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
