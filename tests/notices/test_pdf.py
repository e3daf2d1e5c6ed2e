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
from api.settings import Settings
from tests.api.conftest import Db, World
from tests.api.evidence import build_package, ingest, post_package, register_owner

pytest.importorskip("fpdf", reason="fpdf2 not installed (pip install fpdf2)")
if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
    pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed", allow_module_level=True)


def test_notice_pdf_of_a_real_evidence_package(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    register_owner(client, auth)
    vid = ingest(client, world)
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    # The confirmation made the notice; staff see its lookup code.
    created = client.post("/api/v1/notices", json={"violation_id": vid}, headers=auth("sup")).json()
    assert created["created"] is False
    code = created["notice"]["lookup_code"]
    assert code == client.get(f"/api/v1/violations/{vid}/notice", headers=auth("off-a")).json()["lookup_code"]
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


SAMPLE_CLIP = (
    Path(__file__).resolve().parents[2] / "examples" / "sample" / "hanoi_nguyenxien_khuatduytien.mp4"
)
# Where the README's picture of a notice goes when asked (the web tests' switch), else tmp.
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _sample_stills() -> dict[str, bytes]:
    """Three frames of the repository's sample clip (a real Hà Nội camera) as JPEG stills, and a plate
    crop drawn with the made-up demo plate (the clip's real plates must not become a notice's)."""
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(SAMPLE_CLIP))
    frames: dict[str, bytes] = {}
    try:
        for kind, index in (("still_before", 30), ("still_at", 60), ("still_after", 90)):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            assert ok, f"frame {index} of {SAMPLE_CLIP}"
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            frames[f"{kind}.jpg"] = bytes(buf.tobytes())
    finally:
        cap.release()
    plate = np.full((60, 240, 3), 245, np.uint8)
    cv2.rectangle(plate, (2, 2), (237, 57), (20, 20, 20), 3)
    cv2.putText(plate, "30A-123.45", (14, 43), cv2.FONT_HERSHEY_SIMPLEX, 1.25, (20, 20, 20), 3, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", plate, [cv2.IMWRITE_JPEG_QUALITY, 90])
    frames["plate.jpg"] = bytes(buf.tobytes())
    return frames


def test_notice_pdf_of_the_sample_clip_is_the_readme_picture(
    client: TestClient, settings: Settings, db: Db, auth: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    """The notice of a violation whose stills are frames of the sample clip, at the clip's own
    intersection; page 1 as a PNG (docs/notice.png with PHATNGUOI_WEB_SCREENSHOTS=docs)."""
    import hashlib
    import os

    image = pytest.importorskip("PIL.Image", reason="Pillow (a dependency of fpdf2) not installed")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from api import admin
    from tests.api.evidence import signed
    from violations.manifest import public_key_pem

    key = Ed25519PrivateKey.generate()
    admin.add_district(settings, "thanh-xuan", "Thanh Xuân")
    admin.add_camera(settings, "cam-nx", name="Nguyễn Xiển - Khuất Duy Tiến", district="thanh-xuan")
    device_key = admin.add_device(settings, "dev-nx", ["cam-nx"], public_key_pem(key))
    files = _sample_stills()
    pkg = build_package(key, device_id="dev-nx", camera_id="cam-nx")
    manifest = {
        **pkg.manifest,
        "occurred_at": "2025-12-05T04:35:34.000Z",  # 11:35:34 in Hà Nội, the clip's own time
        "created_at": "2025-12-05T04:35:40.000Z",
        "location": {"lat": 20.9936, "lon": 105.8005},
        "files": [
            {
                "name": name,
                "kind": "plate" if name == "plate.jpg" else name.removesuffix(".jpg"),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "media_type": "image/jpeg",
            }
            for name, data in files.items()
        ],
    }
    r = post_package(client, signed(manifest, key, files), device_key)
    assert r.status_code == 201, r.text
    vid = int(r.json()["id"])
    register_owner(client, auth)
    assert client.post(
        f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("sup")
    ).is_success
    code = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()["lookup_code"]
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))  # the code is printed
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    pdf_path = tmp_path / "notice.pdf"
    pdf_path.write_bytes(r.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf_path), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    for piece in (
        "30A-123.45 (nền trắng)",
        "11:35:34 ngày 05/12/2025",
        "Nguyễn Xiển - Khuất Duy Tiến, Thanh Xuân",
        code,
    ):
        assert piece in text, piece
    subprocess.run(
        ["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", str(pdf_path), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    (page,) = sorted(tmp_path.glob("page*.png"))
    with image.open(page) as img:
        small = img.convert("RGB")
        small = small.resize((760, round(small.height * 760 / small.width)), image.Resampling.LANCZOS)
        small = small.quantize(colors=128, method=image.Quantize.MEDIANCUT)
    to_docs = os.environ.get("PHATNGUOI_WEB_SCREENSHOTS") == "docs" and db.kind == "sqlite"
    out = DOCS / "notice.png" if to_docs else tmp_path / "notice.png"
    small.save(out, optimize=True)
    assert 30_000 < out.stat().st_size < 300_000  # a page with three photos, small enough for the README


def test_notice_pdf_prints_the_corrected_plate_not_the_misreading(
    client: TestClient, world: World, auth: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    register_owner(client, auth, "30A-999.99")
    vid = ingest(client, world)
    assert client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()["plate"]["formatted"] == (
        "30A-123.45"
    )
    r = client.post(
        f"/api/v1/violations/{vid}/decision",
        json={"decision": "confirm", "plate": "30A-999.99"},
        headers=auth("off-a"),
    )
    assert r.status_code == 200, r.text
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
    assert r.status_code == 200, r.text
    path = tmp_path / "notice.pdf"
    path.write_bytes(r.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert "30A-999.99" in text
    assert "30A-123.45" not in text  # the device's misreading is not what the owner is told


def test_notice_pdf_prints_only_photos_that_are_as_signed(
    client: TestClient,
    world: World,
    db: Db,
    auth: Callable[[str], dict[str, str]],
    settings: Settings,
    tmp_path: Path,
) -> None:
    """A photo replaced in the store after the confirmation, or a file record pointed at another
    violation's photo, is left out of the printed notice, not printed as evidence."""
    from api.storage import LocalStore
    from tests.api.evidence import jpeg, point_file_at

    register_owner(client, auth)
    vid = ingest(client, world, seed=7)
    other = ingest(client, world, seed=8)
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("off-a"))
    assert r.status_code == 200, r.text

    def images() -> int:
        r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
        assert r.status_code == 200, r.text
        path = tmp_path / "notice.pdf"
        path.write_bytes(r.content)
        listing = subprocess.run(
            ["pdfimages", "-list", str(path)], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        return len(listing.strip().splitlines()) - 2  # a two-line header

    printed = images()
    assert printed >= 3
    files = client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()["files"]
    still_at = next(f["sha256"] for f in files if f["name"] == "still_at.jpg")
    LocalStore(settings.evidence_dir).path_for(still_at).write_bytes(jpeg(97))
    assert images() == printed - 1
    # The database edited instead: still_before's record names the other violation's photo (its hash
    # and address consistent, so the store reads it without complaint).
    theirs = next(
        f["sha256"]
        for f in client.get(f"/api/v1/violations/{other}", headers=auth("sup")).json()["files"]
        if f["name"] == "still_before.jpg"
    )
    point_file_at(db.url, vid, "still_before.jpg", theirs)
    assert images() == printed - 2
