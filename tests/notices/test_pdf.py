"""The printable notice for a real (signed, ingested) evidence package, checked as a person would: the
PDF is rendered to PNG with pdftoppm and its text extracted with pdftotext."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.notices.catalogue import VIETNAM_TZ
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package

pytest.importorskip("fpdf", reason="fpdf2 not installed (pip install fpdf2)")
if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
    pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed", allow_module_level=True)


def test_notice_pdf_of_a_real_evidence_package(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    dev = world.devices["dev-a"]
    r = post_package(client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1"), dev.key)
    assert r.status_code == 201, r.text
    vid = int(r.json()["id"])
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    created = client.post("/api/v1/notices", json={"violation_id": vid}, headers=auth("sup")).json()
    code = created["lookup_code"]
    assert (
        client.get(
            f"/api/v1/violations/{vid}/notice.pdf", params={"code": "WRONG-CODE1"}, headers=auth("sup")
        ).status_code
        == 422
    )
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", params={"code": code}, headers=auth("sup"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    path = tmp_path / "notice.pdf"
    path.write_bytes(r.content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", str(path), str(tmp_path / "page")], check=True, timeout=60
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 10_000  # a page with three photos, not a blank sheet
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    occurred = client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()["occurred_at"]
    local = datetime.fromisoformat(occurred).astimezone(VIETNAM_TZ).strftime("%H:%M:%S ngày %d/%m/%Y")
    for piece in (
        "THÔNG BÁO",
        "30A-123.45",
        local,
        "Giảng Võ - Láng Hạ, Ba Đình",
        "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP",
        "từ 18.000.000 đồng đến 20.000.000 đồng",
        "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông",
        code,
        "Thời điểm vi phạm",
    ):
        assert piece in text, piece
