"""The real server over real HTTP: uvicorn in a subprocess on a free loopback port, httpx as the client.

Also the import-weight contract: after starting and handling ingests, the server process has not
imported OpenCV or ONNX Runtime (checked in that process: this test process imports cv2 itself).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import Violation
from tests.api.conftest import JWT_SECRET, PASSWORD, Db
from tests.api.evidence import build_package, post_package
from tests.api.pg import _free_port
from tests.conftest import REPO_ROOT


def test_real_server_ingests_over_http_without_heavy_imports(
    db: Db, tmp_path: Path, session: Session
) -> None:
    port = _free_port()
    report = tmp_path / "modules.json"
    env = {
        **os.environ,
        "PHATNGUOI_DATABASE_URL": db.url,
        "PHATNGUOI_JWT_SECRET": JWT_SECRET,
        "PHATNGUOI_EVIDENCE_DIR": str(tmp_path / "evidence"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.api.serve_probe", str(report), str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start in 30 s"
                time.sleep(0.1)

            dev = db.world.devices["dev-a"]
            pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1")
            statuses = [post_package(http, pkg, dev.key).status_code for _ in range(3)]
            assert statuses == [201, 200, 200]

            # The same new package from four connections at once: stored once, everyone told so.
            racing = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=2)

            def post_once(_: int) -> tuple[int, int]:
                with httpx.Client(base_url=base, timeout=30) as c:
                    r = post_package(c, racing, dev.key)
                    return r.status_code, r.json()["id"]

            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(post_once, range(4)))
            assert sorted(s for s, _ in results) == [200, 200, 200, 201]
            assert len({vid for _, vid in results}) == 1

            token = http.post("/api/v1/auth/token", data={"username": "off-a", "password": PASSWORD}).json()
            r = http.get(
                f"/api/v1/violations/{results[0][1]}",
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            assert r.status_code == 200 and r.json()["event_id"] == racing.event_id

            # The public lookup's plate and code open the owner's page: not in the access log.
            r = http.get("/api/v1/lookup", params={"plate": "30A-123.45", "code": "K7Q2M-9XWPD"})
            assert r.status_code == 404, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert '"GET /api/v1/lookup?… HTTP/1.1" 404' in out, out
    assert "K7Q2M" not in out and "123.45" not in out
    assert '"POST /api/v1/auth/token HTTP/1.1" 200' in out  # other lines as they were
    modules = json.loads(report.read_text())
    assert modules["cv2"] is False and modules["onnxruntime"] is False, modules
    assert session.scalar(select(func.count()).select_from(Violation)) == 2
