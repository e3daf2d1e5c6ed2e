"""Independent verification of a stored violation: `GET /api/v1/violations/{id}/package` from the real
server (uvicorn on loopback, SQLite and PostgreSQL) gives a zip laid out as the edge writes an evidence
folder, plus the device's public key, and `phatnguoi evidence verify` (the real CLI, a subprocess)
accepts it. A blob replaced in the store makes the download refuse; a byte changed in the downloaded
package makes the verification fail; the route is district-scoped, audited, and answers 410 once the
retention job deleted the evidence. Packages the real `EvidenceBuilder` made come back byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import utcnow
from api.models import AuditEntry
from api.retention import run_retention
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import PASSWORD, Db
from tests.api.evidence import build_package, jpeg, post_package
from tests.conftest import REPO_ROOT
from tests.edge.packages import video_packages
from tests.web.conftest import run_server
from violations.manifest import check_package, load_public_key, public_key_pem

KEY_NAME = "device_public_key.pem"


def _verify(folder: Path, key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", "evidence", "verify", str(folder), "--public-key", str(key),
         "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _token(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_package_from_the_server_verifies_with_the_real_verify_command(
    db: Db, settings: Settings, tmp_path: Path, session: Session
) -> None:
    dev = db.world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=3)
    old = (utcnow() - timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    expired = build_package(
        dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=4, overrides={"occurred_at": old}
    )
    with run_server(settings, tmp_path / "server.log") as url, httpx.Client(base_url=url, timeout=30) as http:
        vid = post_package(http, pkg, dev.key).json()["id"]
        expired_id = post_package(http, expired, dev.key).json()["id"]
        officer = _token(http, "off-a")

        r = http.get(f"/api/v1/violations/{vid}/package", headers=officer)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert f'filename="{pkg.event_id}.zip"' in r.headers["content-disposition"]
        assert r.headers["cache-control"] == "private, no-store"
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            names = sorted(z.namelist())
            z.extractall(tmp_path / "download")
        assert names == sorted(
            [KEY_NAME, f"{pkg.event_id}/manifest.json", f"{pkg.event_id}/manifest.sig"]
            + [f"{pkg.event_id}/{name}" for name in pkg.files]
        )
        folder, key = tmp_path / "download" / pkg.event_id, tmp_path / "download" / KEY_NAME
        assert (folder / "manifest.json").read_bytes() == pkg.manifest_bytes  # the exact signed bytes
        assert key.read_text() == public_key_pem(dev.private_key)

        ok = _verify(folder, key)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        report = json.loads(ok.stdout)
        assert report["ok"] and report["signature_checked"] and report["event_id"] == pkg.event_id

        # One byte changed after the download: the verification names the file.
        still = folder / "still_after.jpg"
        data = bytearray(still.read_bytes())
        data[len(data) // 2] ^= 0x01
        still.write_bytes(bytes(data))
        bad = _verify(folder, key)
        assert bad.returncode == 1
        assert {f["name"]: f["status"] for f in json.loads(bad.stdout)["files"]}[
            "still_after.jpg"
        ] == "altered"

        # District-scoped like the violation itself; not without a login.
        assert http.get(f"/api/v1/violations/{vid}/package", headers=_token(http, "off-b")).status_code == 404
        assert http.get(f"/api/v1/violations/{vid}/package").status_code == 401
        assert http.get(f"/api/v1/violations/{vid}/package", headers=_token(http, "sup")).status_code == 200

        # A blob replaced in the store: the server refuses to hand out the package, naming the file.
        sha = next(f["sha256"] for f in pkg.manifest["files"] if f["name"] == "still_at.jpg")
        LocalStore(settings.evidence_dir).path_for(sha).write_bytes(jpeg(99))
        r = http.get(f"/api/v1/violations/{vid}/package", headers=officer)
        assert r.status_code == 409, r.text
        assert "still_at.jpg" in r.json()["detail"] and "signed hash" in r.json()["detail"]

        # Evidence deleted by the retention job: gone, and said so.
        assert run_retention(settings, utcnow() + timedelta(days=100)).violations_purged == 1
        r = http.get(f"/api/v1/violations/{expired_id}/package", headers=officer)
        assert r.status_code == 410, r.text
        assert "retention" in r.json()["detail"]

    session.rollback()
    audited = session.scalars(
        select(AuditEntry.actor).where(
            AuditEntry.action == "evidence.package", AuditEntry.object_id == str(vid)
        )
    ).all()
    assert audited == ["user:off-a", "user:sup"]


def test_packages_of_the_real_evidence_builder_check_clean_and_verify(
    client: TestClient, db: Db, hanoi_clip: Path, tmp_path: Path
) -> None:
    """No false alarm on what an edge device really sends: packages the `EvidenceBuilder` made from the
    Giang Vo clip (stills, clip.mp4, the rules' details) pass the viewer's check, and their package
    from the server verifies."""
    dev = db.world.devices["dev-a"]
    built = video_packages(
        dev.private_key,
        tmp_path / "edge",
        hanoi_clip,
        device_id=dev.id,
        camera_id="cam-a1",
        event_frames=(12,),
    )
    assert [b.status for b in built] == ["written"]
    folder = built[0].path
    files = sorted(p.name for p in folder.iterdir() if p.name not in ("manifest.json", "manifest.sig"))
    assert "clip.mp4" in files
    r = client.post(
        "/api/v1/violations",
        data={"signature": (folder / "manifest.sig").read_text()},
        files=[("manifest", ("manifest.json", (folder / "manifest.json").read_bytes(), "application/json"))]
        + [("files", (name, (folder / name).read_bytes(), "application/octet-stream")) for name in files],
        headers={"Authorization": f"Bearer {dev.key}"},
    )
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    token = client.post("/api/v1/auth/token", data={"username": "off-a", "password": PASSWORD}).json()
    officer = {"Authorization": f"Bearer {token['access_token']}"}
    check = client.get(f"/web/api/violations/{vid}/evidence", headers=officer).json()["check"]
    assert check["ok"] and check["problems"] == [], check

    r = client.get(f"/api/v1/violations/{vid}/package", headers=officer)
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        z.extractall(tmp_path / "download")
    downloaded = tmp_path / "download" / folder.name
    assert sorted(p.name for p in downloaded.iterdir()) == sorted(p.name for p in folder.iterdir())
    for p in folder.iterdir():  # byte for byte the folder the edge wrote
        assert (downloaded / p.name).read_bytes() == p.read_bytes(), p.name
    report = check_package(downloaded, load_public_key(tmp_path / "download" / KEY_NAME))
    assert report.ok and report.signature_checked, report.lines()
