"""What the reviewer sees of the evidence check, in real headless Chromium against the real server:
a clean violation says its signature and details match and its signed package downloads and verifies;
a tampered one (a still replaced in the store, the rule edited in the database) says NOT valid with
each problem named, does not show the replaced still, and refuses the package download.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from api.db import make_engine, make_sessionmaker
from api.models import Violation
from api.settings import Settings
from api.storage import LocalStore
from tests.api.conftest import World
from tests.api.evidence import build_package, jpeg, post_package
from tests.web.conftest import open_tab, run_server
from violations.manifest import check_package, load_public_key

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_viewer_names_each_problem_and_offers_the_signed_package(
    browser: Any, make_settings: Callable[..., Settings], world: World, tmp_path: Path
) -> None:
    settings = make_settings()
    dev = world.devices["dev-a"]
    clean = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=3)
    tampered = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", seed=4)
    with run_server(settings, tmp_path / "server.log") as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            clean_id = int(post_package(c, clean, dev.key).json()["id"])
            tampered_id = int(post_package(c, tampered, dev.key).json()["id"])
        sha = next(f["sha256"] for f in tampered.manifest["files"] if f["name"] == "still_at.jpg")
        LocalStore(settings.evidence_dir).path_for(sha).write_bytes(jpeg(99))
        engine = make_engine(settings.database_url)
        try:
            with make_sessionmaker(engine)() as s:
                s.execute(update(Violation).where(Violation.id == tampered_id).values(rule="speeding"))
                s.commit()
        finally:
            engine.dispose()

        context, web = open_tab(browser, url)
        try:
            page = web.page
            web.login("off-a", f"/review?id={clean_id}&period=all&status=")
            page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{clean_id}'")
            page.wait_for_function("() => document.querySelector('#ev-integrity').textContent !== ''")
            assert page.locator("#ev-integrity").inner_text() == (
                "Chữ ký số hợp lệ (Ed25519, thiết bị dev-a); các tệp và thông tin vi phạm khớp với bản đã ký."
            )
            with page.expect_download() as info:
                page.get_by_role("button", name="Tải gói bằng chứng đã ký (ZIP)").click()
            assert info.value.suggested_filename == f"{clean.event_id}.zip"
            with zipfile.ZipFile(info.value.path()) as z:
                z.extractall(tmp_path / "package")
            report = check_package(
                tmp_path / "package" / clean.event_id,
                load_public_key(tmp_path / "package" / "device_public_key.pem"),
            )
            assert report.ok and report.signature_checked, report.lines()

            web.goto(f"/review?id={tampered_id}&period=all&status=")
            page.wait_for_function(f"() => document.querySelector('#ev-id').textContent === '#{tampered_id}'")
            page.wait_for_function("() => document.querySelector('#ev-integrity').textContent !== ''")
            integrity = page.locator("#ev-integrity")
            text = integrity.inner_text()
            assert text.startswith("KHÔNG hợp lệ: ") and integrity.get_attribute("class") == "error"
            assert "still_at.jpg: content changed" in text
            assert "rule: 'speeding' recorded, the device signed 'red_light'" in text
            page.wait_for_function(
                """() => document.querySelector('img[data-kind="still_at"]').closest('figure')
                           .classList.contains('missing')"""
            )
            page.get_by_role("button", name="Tải gói bằng chứng đã ký (ZIP)").click()
            page.wait_for_function(
                "() => document.querySelector('#flash').textContent.includes('still_at.jpg')"
            )
            assert "does not match its signed hash" in page.locator("#flash").inner_text()
        finally:
            context.close()
        assert web.errors == [], web.errors
