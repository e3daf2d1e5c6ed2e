"""`phatnguoi demo --source CLIP --scene SCENE --config CAMERA`, looked at as a user would: log in with
the printed credentials, open the printed URL and see the violations on the map.

The Giang Vo clip (shared evaluation data) has red-light runners; the shipped 3.8-second sample clip
has none that the rules can establish (its riders creep past the line but stop short of the distance
that proves they went through), so the map check runs on the Giang Vo clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from tests.web.conftest import open_tab
from tests.web.test_browser import map_violation_total


def test_demo_shows_its_violations_on_the_map(browser: Any, tmp_path: Path, hanoi_clip: Path) -> None:
    from phatnguoi.demo import run_demo

    result, server = run_demo(
        tmp_path / "demo",
        source=hanoi_clip,
        scene_file=REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml",
        camera_file=REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml",
    )
    try:
        assert result.violations >= 4, "the 4 red-light runners labelled by eye, at least"
        assert result.server_violations == result.uploaded == result.violations
        context, web = open_tab(browser, server.url)
        try:
            page = web.page
            page.goto(result.url)
            page.wait_for_url(lambda u: "/login" in u)
            page.get_by_label("Tên đăng nhập").fill(result.username)
            page.get_by_label("Mật khẩu").fill(result.password)
            page.get_by_role("button", name="Đăng nhập").click()
            page.wait_for_url(lambda u: "/map" in u)
            page.wait_for_selector(".cam-marker")
            page.wait_for_function("() => document.querySelector('#map-count').textContent !== ''")
            count = result.server_violations
            assert page.locator("#map-count").inner_text() == f"{count} vi phạm trên bản đồ"
            assert map_violation_total(page) == count
            cameras = page.eval_on_selector_all(".cam-marker", "ns => ns.map(n => n.dataset.camera)")
            assert cameras == ["hanoi-giangvo-langha"]
            page.screenshot(path=str(tmp_path / "demo-map.png"))
            assert web.off_origin() == [] and web.errors == [], (web.off_origin(), web.errors)
        finally:
            context.close()
    finally:
        server.stop()
