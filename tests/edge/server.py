"""A real phatnguoi server for the edge tests: `phatnguoi serve` in a subprocess on a loopback port,
over a temporary SQLite database prepared with the real admin functions (migrations, a device with
its Ed25519 key), and queries of what it stored.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from api import admin
from api.db import make_engine, make_sessionmaker
from api.models import AuditEntry, FlowCount, Violation
from api.settings import Settings
from tests.conftest import REPO_ROOT
from violations.manifest import public_key_pem

DEVICE_ID = "edge-1"
CAMERAS = ("cam-a1", "cam-b1")
VIOLATIONS = "/api/v1/violations"
FLOWS = "/api/v1/flows"


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> float:
    """Poll `condition` every 20 ms; returns the seconds it took. Fails after `timeout_s`."""
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout_s, f"{what} not reached in {timeout_s} s"
        time.sleep(0.02)
    return time.monotonic() - t0


def free_port() -> int:
    """A TCP port nothing listens on at the moment (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """The server of one test. `start`/`stop` may be called several times (same database)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = f"sqlite:///{root / 'server.db'}"
        self.env = {
            **os.environ,
            "PHATNGUOI_DATABASE_URL": self.db_url,
            "PHATNGUOI_JWT_SECRET": secrets.token_urlsafe(48),
            "PHATNGUOI_EVIDENCE_DIR": str(root / "server-evidence"),
            "PHATNGUOI_PENALTY_WEBHOOK_INTERVAL_S": "0",
        }
        self.settings = settings = Settings(
            database_url=self.db_url,
            evidence_dir=root / "server-evidence",
            jwt_secret=self.env["PHATNGUOI_JWT_SECRET"],
        )
        admin.upgrade_db(settings)
        self.private_key = Ed25519PrivateKey.generate()
        self.device_key = admin.add_device(
            settings, DEVICE_ID, list(CAMERAS), public_key_pem(self.private_key)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"
        self.started_at: float | None = None

    def start(self, timeout_s: float = 30.0) -> float:
        """Start `phatnguoi serve` and wait for /healthz. Returns the seconds it took."""
        assert self.proc is None, "already running"
        t0 = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "phatnguoi.cli", "serve", "--port", str(self.port)],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        with httpx.Client(timeout=2.0) as http:
            while True:
                try:
                    if http.get(f"{self.url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited: {self.log_tail()}")
                if time.monotonic() - t0 > timeout_s:
                    raise AssertionError(f"server did not answer in {timeout_s} s: {self.log_tail()}")
                time.sleep(0.05)
        self.started_at = time.monotonic()
        return self.started_at - t0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what the server stored

    def stored(self) -> dict[str, str]:
        """event_id -> manifest_sha256 of every stored violation."""
        engine = make_engine(self.db_url)
        try:
            with make_sessionmaker(engine, read_only=True)() as s:
                rows = s.execute(select(Violation.event_id, Violation.manifest_sha256)).all()
                return {str(e): str(h) for e, h in rows}
        finally:
            engine.dispose()

    def violation_rows(self) -> int:
        return self._count(select(func.count()).select_from(Violation))

    def received_audits(self) -> int:
        """Audit entries 'violation.received': one per violation the server ever inserted."""
        return self._count(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "violation.received")
        )

    def flows(self) -> dict[tuple[str, str, str, str, str], int]:
        """(camera, lane, direction, class, interval_start ISO) -> count."""
        engine = make_engine(self.db_url)
        try:
            with make_sessionmaker(engine, read_only=True)() as s:
                rows = s.execute(
                    select(
                        FlowCount.camera_id, FlowCount.lane, FlowCount.direction, FlowCount.vehicle_class,
                        FlowCount.interval_start, FlowCount.count,
                    )
                ).all()  # fmt: skip
        finally:
            engine.dispose()
        return {(c, la, d, v, start.strftime("%Y-%m-%dT%H:%M:%SZ")): int(n) for c, la, d, v, start, n in rows}

    def _count(self, stmt: object) -> int:
        engine = make_engine(self.db_url)
        try:
            with make_sessionmaker(engine, read_only=True)() as s:
                return int(s.scalar(stmt) or 0)  # type: ignore[call-overload]
        finally:
            engine.dispose()
