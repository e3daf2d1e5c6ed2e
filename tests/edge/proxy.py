"""A fault-injecting HTTP proxy on loopback, in front of the real server.

It speaks real HTTP to both sides: the uploader under test talks to the proxy, the proxy forwards to
the real `phatnguoi serve` process. A plan decides, per request, whether to forward it, answer with
an error status instead (500, 503 + Retry-After), forward it and then drop the connection without
answering (the server stored the package but the edge never hears so: the lost acknowledgement), or
hold the server's answer for a while (a window to SIGKILL the uploader in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal

import httpx


@dataclass(frozen=True)
class Action:
    """What the proxy does with one request."""

    kind: Literal["forward", "status", "drop_after_forward"] = "forward"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    hold_s: float = 0.0  # after the server answered, wait this long before answering (forward only)


FORWARD = Action()
Plan = Callable[[int, str], Action]


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled: arrival time, path, the how-many-th POST on that path, outcome."""

    at: float
    path: str
    n: int
    outcome: str


class FaultProxy:
    """Proxy from ``url`` to `upstream`; `plan(n, path)` picks the action of the n-th POST to a path
    (of a GET with n = 0)."""

    def __init__(self, upstream: str, plan: Plan | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan: Plan = plan or (lambda n, path: FORWARD)
        self.seen: list[Seen] = []
        self.holding = threading.Event()  # set while an answer is held back (hold_s > 0)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        t_in = time.monotonic()
        path = handler.path
        if handler.command == "POST":
            with self._lock:
                n = self._counts[path] = self._counts.get(path, 0) + 1
            action = self.plan(n, path)
        else:
            n, action = 0, self.plan(0, path)
        if action.kind == "status":
            self._record(t_in, path, n, str(action.status))
            self._answer(
                handler, action.status, b'{"detail":"injected fault"}', "application/json", action.headers
            )
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("authorization", "content-type")}
        try:
            r = self._client.request(handler.command, self.upstream + path, content=body, headers=headers)
        except httpx.TransportError:
            self._record(t_in, path, n, "upstream_down")
            handler.close_connection = True
            return
        if action.kind == "drop_after_forward":
            self._record(t_in, path, n, f"dropped_after_{r.status_code}")
            handler.close_connection = True  # no answer at all: the client sees the connection close
            return
        if action.hold_s > 0:
            self.holding.set()
            time.sleep(action.hold_s)
            self.holding.clear()
        self._record(t_in, path, n, str(r.status_code))
        extra = {"Retry-After": r.headers["Retry-After"]} if "Retry-After" in r.headers else {}
        self._answer(
            handler, r.status_code, r.content, r.headers.get("Content-Type", "application/json"), extra
        )

    def _record(self, at: float, path: str, n: int, outcome: str) -> None:
        with self._lock:
            self.seen.append(Seen(at, path, n, outcome))

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, headers: dict[str, str]
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (killed uploader): nothing to answer

    def _posts(self, path: str) -> list[Seen]:
        with self._lock:
            return sorted((s for s in self.seen if s.path == path and s.n > 0), key=lambda s: s.n)

    def outcomes(self, path: str) -> list[str]:
        """Outcomes of the POSTs to `path`, in the order they arrived."""
        return [s.outcome for s in self._posts(path)]

    def times(self, path: str) -> list[float]:
        """Arrival times (monotonic) of the POSTs to `path`, in order."""
        return [s.at for s in self._posts(path)]

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._client.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
