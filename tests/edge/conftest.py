"""Fixtures of the edge tests: a device key, an evidence folder, an outbox, a real server factory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from phatnguoi.outbox import Outbox, OutboxConfig
from tests.edge.server import LiveServer


class Clock:
    """A settable clock (epoch seconds) for outbox tests that step through days. It starts at the
    real time, so items it queues are due for an uploader on the real clock."""

    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def evidence_root(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    root.mkdir()
    return root


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_outbox(tmp_path: Path, evidence_root: Path, clock: Clock) -> Iterator[Callable[..., Outbox]]:
    """Open outboxes on ``tmp_path/outbox.db`` (several opens of the same file model restarts);
    all are closed at the end."""
    opened: list[Outbox] = []

    def make(public_key: Ed25519PublicKey, **config: Any) -> Outbox:
        # Measure the evidence folder at every call, no free-space reserve on the host's disk, a
        # small reserve file: the tests that need otherwise say so.
        settings: dict[str, Any] = {
            "usage_scan_s": 0.0,
            "min_free_bytes": 0,
            "reserve_bytes": 65536,
            **config,
        }
        ob = Outbox(
            tmp_path / "outbox.db",
            public_key,
            evidence_root=evidence_root,
            config=OutboxConfig(**settings),
            clock=clock,
        )
        opened.append(ob)
        return ob

    yield make
    for ob in opened:
        ob.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Prepare real servers (database migrated, device registered); stopped at the end."""
    servers: list[LiveServer] = []

    def make(port: int | None = None) -> LiveServer:
        srv = LiveServer(tmp_path / f"server{len(servers)}", port)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
