"""Scene mistakes an installer makes while clicking a scene together: polygon corners clicked out of
order (edges crossing), and a wrong-way zone given the opposite direction of the lane under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.violations import make_scene, moving, rules_of, run
from violations.rules import RuleEngine
from violations.scene import SceneError, check_scene, load_scene, parse_scene

HEAD = "camera_id: cam1\nresolution: [1280, 720]\n"


def lane_scene(polygon: str) -> str:
    return HEAD + f"lanes:\n  - id: buslane\n    polygon: {polygon}\n    direction: up\n    classes: [bus]\n"


@pytest.mark.parametrize(
    ("polygon", "edges"),
    [
        # A trapezoid in perspective, clicked top-left, top-right, bottom-left, bottom-right: used to
        # be accepted (it has an area), leaving a bow-tie of a lane.
        ("[[600, 200], [700, 200], [200, 700], [900, 700]]", "corner 2→3 crosses corner 4→1"),
        # A rectangle clicked the same way: used to be refused as "collinear or repeated".
        ("[[0, 0], [100, 100], [100, 0], [0, 100]]", "corner 1→2 crosses corner 3→4"),
        # Five corners, the last two swapped.
        ("[[100, 100], [300, 100], [400, 300], [100, 400], [300, 400]]", "crosses"),
    ],
)
def test_a_polygon_whose_edges_cross_is_refused_saying_so(polygon: str, edges: str) -> None:
    with pytest.raises(SceneError) as e:
        parse_scene(lane_scene(polygon), "z.yaml")
    message = str(e.value)
    assert message.startswith("z.yaml: lanes.0.polygon: polygon edges cross")
    assert edges in message
    assert "list the corners in order around the shape" in message
    assert "collinear" not in message and "one line" not in message


@pytest.mark.parametrize(
    "polygon",
    [
        "[[600, 200], [700, 200], [900, 700], [200, 700]]",  # clockwise
        "[[200, 700], [900, 700], [700, 200], [600, 200]]",  # counter-clockwise
        "[[100, 100], [400, 100], [400, 200], [200, 200], [200, 400], [100, 400]]",  # concave (an L)
    ],
)
def test_polygons_listed_around_the_shape_are_accepted(polygon: str) -> None:
    assert parse_scene(lane_scene(polygon)).lanes[0].id == "buslane"


@pytest.mark.parametrize(
    "polygon", ["[[0, 0], [100, 0], [200, 0]]", "[[10, 10], [10, 10], [50, 50], [10, 10]]"]
)
def test_a_polygon_on_one_line_is_refused_as_such(polygon: str) -> None:
    with pytest.raises(
        SceneError,
        match=r"lanes\.0\.polygon: polygon has \(almost\) no area: its corners are on one line or repeated",
    ):
        parse_scene(lane_scene(polygon))


CONTRA = (
    HEAD
    + """\
lanes:
  - {id: l1, polygon: [[500, 200], [800, 200], [1000, 700], [300, 700]], direction: up}
wrong_way_zones:
  - {id: ow1, polygon: [[500, 200], [800, 200], [1000, 700], [300, 700]], direction: down}
"""
)


def test_a_wrong_way_zone_against_its_lane_is_warned_about() -> None:
    """The zone's direction is the lane's turned round: every car following the lane is fined (three of
    three here), and `scene check` used to say nothing."""
    scene = parse_scene(CONTRA)
    cars = [moving(i, (560 + 60 * i, 690), (0, -80), 0.5 * i, 0.5 * i + 5, cls="car") for i in range(1, 4)]
    assert rules_of(run(RuleEngine(scene, rules=["wrong_way"]), cars)) == ["wrong_way"] * 3
    warnings = [w for w in check_scene(scene) if not w.startswith("rule ")]
    assert warnings == [
        "wrong-way zone ow1 allows down but lane l1 under it runs up (180° apart): every vehicle following "
        "the lane would be fined for wrong way; check both directions"
    ]


@pytest.mark.parametrize(
    ("zone_direction", "warned"),
    [
        ("up", False),
        ("[1, -1]", False),  # 45° off: a lane that bends under the zone
        ("[1, 0.2]", True),  # 101° off
        ("[-0.3, 1]", True),
    ],
)
def test_the_warning_is_for_more_than_90_degrees(zone_direction: str, warned: bool) -> None:
    scene = parse_scene(CONTRA.replace("direction: down", f"direction: {zone_direction}"))
    assert any(w.startswith("wrong-way zone ow1") for w in check_scene(scene)) == warned


def test_a_wrong_way_zone_beside_an_oncoming_lane_is_not_warned_about() -> None:
    """A two-way road: the one-way zone covers the up side only, the lane beside it runs down."""
    scene = make_scene(
        lanes=[
            {"id": "up", "polygon": [[100, 100], [300, 100], [300, 470], [100, 470]], "direction": "up"},
            {"id": "down", "polygon": [[300, 100], [540, 100], [540, 470], [300, 470]], "direction": "down"},
        ],
        wrong_way_zones=[
            {"id": "ow1", "polygon": [[100, 100], [300, 100], [300, 470], [100, 470]], "direction": "up"}
        ],
    )
    assert not [w for w in check_scene(scene) if w.startswith("wrong-way zone")]


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "examples" / "scenes").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_scenes_have_no_contrary_wrong_way_zone(path: Path) -> None:
    scene = load_scene(path)
    assert scene.wrong_way_zones and scene.lanes
    assert not [w for w in check_scene(scene) if w.startswith("wrong-way zone")]
