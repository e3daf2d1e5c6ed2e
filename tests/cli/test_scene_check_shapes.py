"""`phatnguoi scene check` on scenes an installer got wrong: a lane clicked in "Z" order (its edges
cross) and a wrong-way zone pointing against the lane under it. Both used to print "ok" and nothing
else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import assert_one_line_error, cli
from tests.conftest import REPO_ROOT

ZORDER = """\
# A lane in perspective, corners clicked top-left, top-right, bottom-left, bottom-right.
camera_id: cam1
resolution: [1280, 720]
lanes:
  - id: buslane
    polygon: [[600, 200], [700, 200], [200, 700], [900, 700]]
    direction: up
    classes: [bus]
"""

CONTRA = """\
# The approach lane drives up the image; the one-way zone over it was given the opposite direction.
camera_id: cam1
resolution: [1280, 720]
lanes:
  - id: l1
    polygon: [[500, 200], [800, 200], [1000, 700], [300, 700]]
    direction: up
wrong_way_zones:
  - id: ow1
    polygon: [[500, 200], [800, 200], [1000, 700], [300, 700]]
    direction: down
"""


def test_a_lane_clicked_in_z_order_is_an_error_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "zorder.yaml"
    path.write_text(ZORDER)
    assert_one_line_error(
        cli("scene", "check", str(path)),
        "zorder.yaml",
        "lanes.0.polygon",
        "edges cross",
        "list the corners in order around the shape",
    )


def test_a_wrong_way_zone_against_its_lane_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "contra.yaml"
    path.write_text(CONTRA)
    proc = cli("scene", "check", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "contra.yaml: ok" in proc.stdout
    assert (
        "warning: wrong-way zone ow1 allows down but lane l1 under it runs up (180° apart): every vehicle "
        "following the lane would be fined for wrong way" in " ".join(proc.stderr.split())
    )


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "examples" / "scenes").glob("*.yaml")), ids=lambda p: p.name
)
def test_the_example_scenes_check_without_those_complaints(path: Path) -> None:
    proc = cli("scene", "check", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: ok" in proc.stdout
    assert "wrong-way zone" not in proc.stderr and "edges cross" not in proc.stderr
