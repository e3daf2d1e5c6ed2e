"""Notice test fixtures: the API tests' world and databases (SQLite and PostgreSQL), a read-write
session on the test database, confirmed violations, and a real HTTP server on loopback that plays an
SMS gateway."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_sessionmaker
from tests.api.conftest import (  # noqa: F401  (fixtures shared with the API tests)
    Db,
    auth,
    client,
    count,
    db,
    device_keys,
    make_client,
    make_settings,
    pg_server,
    pg_template,
    session,
    settings,
    sqlite_template,
    world,
)

# The test packages are cars (`tests.api.evidence.build_package`): a registry entry of another class
# regime would hold their notices (`api.notices.workflow.class_hold_reason`, tested in
# test_vehicle_class.py), so the second vehicle's class is left out, as the CSV allows.
REGISTRY_CSV = (
    "plate,owner_name,phone,national_id,address,vehicle_class,colour\n"
    "30A-123.45,Nguyễn Văn An,0912 345 678,001090000001,12 Láng Hạ,car,trắng\n"
    "29-X1 234.56,Trần Thị Bình,+84987654321,,3 Tràng Tiền,,đỏ\n"
)


@pytest.fixture
def sessions(db: Db) -> Iterator[sessionmaker[Session]]:  # noqa: F811
    """Read-write sessions on the test database."""
    engine = make_engine(db.url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@dataclass
class Gateway:
    """State of the loopback SMS gateway: what it answers next and what it received."""

    url: str = ""
    modes: list[str] = field(default_factory=list)  # consumed one per request; "ok" when empty
    received: list[dict[str, object]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Called with the message id of an accepted SMS before the gateway answers the send (a gateway that
    # posts its delivery receipt before the sender has recorded the send).
    before_answer: Callable[[str], None] | None = None


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """A real HTTP server on 127.0.0.1 speaking a generic SMS-gateway protocol: POST JSON, answer
    `{"id": ...}`; modes "ok", "500", "400", "slow" (answers after 1.5 s: the client times out);
    `before_answer` runs before an accepted SMS is answered."""
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                mode = state.modes.pop(0) if state.modes else "ok"
                state.headers.append(dict(self.headers))
            if mode == "slow":
                time.sleep(1.5)
            if mode in ("500", "400"):
                self.send_response(int(mode))
                self.end_headers()
                return
            data = json.loads(body)
            with state.lock:
                if mode == "ok":
                    state.received.append(data)
                n = len(state.received)
            if mode == "ok" and state.before_answer is not None:
                state.before_answer(f"gw-{n}")
            answer = json.dumps({"id": f"gw-{n}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
