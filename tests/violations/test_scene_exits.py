"""Exits (movements) of a stop line in scene files: validation errors naming the field, `check_scene`
warnings, drawing, and the shipped Hải Phòng scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from violations.draw import EXIT, draw_scene
from violations.scene import Scene, SceneError, check_scene, load_scene, parse_scene

STRAIGHT = "[[40, 40], [500, 40], [500, 230], [40, 230]]"

SCENE = """\
camera_id: cam-1
resolution: [640, 480]
stop_lines:
  - id: sl1
    points: [[40, 300], [600, 300]]
    approach: below
    light: L1
    exits:
      - {id: right, polygon: [[560, 130], [640, 130], [640, 280], [560, 280]], light: A}
      - {id: straight, polygon: [[40, 40], [500, 40], [500, 230], [40, 230]]}
lights:
  - {id: L1, roi: [600, 10, 630, 80], lamps: {red: [615, 25], green: [615, 65]}}
  - {id: A, roi: [600, 90, 630, 120], lamps: {green: [615, 105]}}
"""


def test_exits_load() -> None:
    scene = parse_scene(SCENE)
    (line,) = scene.stop_lines
    assert [(ex.id, ex.light, ex.free, ex.governed_by_line) for ex in line.exits] == [
        ("right", "A", False, False),
        ("straight", None, False, True),
    ]
    assert scene.light("A").reader_config().lamps.green == (615, 105)  # a head with only a green lamp
    # Light A governs an exit: not "governs no stop line or stop zone".
    assert [w for w in check_scene(scene) if not w.startswith("rule ")] == []
    assert scene.tolerances.movement_window_s == 5.0


OUTSIDE = "stop_lines.0.exits.0.polygon.1: point (700, 130) is outside the 640x480 frame"
Z_ORDER = "[[40, 40], [500, 40], [40, 230], [500, 230]]"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("light: A}", "light: B}", "stop_lines.0.exits.0.light: unknown light 'B'"),
        ("light: A}", "light: A, free: true}", "stop_lines.0.exits.0: give light or free, not both"),
        ("[640, 130], [640, 280]", "[700, 130], [640, 280]", OUTSIDE),
        ("{id: straight,", "{id: right,", "stop_lines.0.exits.1.id: duplicate exit id 'right'"),
        (STRAIGHT, Z_ORDER, "stop_lines.0.exits.1.polygon: polygon edges cross"),
        ("light: A}", "light: A, turn: right}", "stop_lines.0.exits.0.turn: Extra inputs are not permitted"),
    ],
)
def test_bad_exits_are_errors_naming_the_field(old: str, new: str, expected: str) -> None:
    assert old in SCENE
    with pytest.raises(SceneError) as err:
        parse_scene(SCENE.replace(old, new, 1), "scene.yaml")
    assert str(err.value).startswith("scene.yaml: ") and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_an_exit_outside_the_frame_is_an_error_also_in_a_scene_built_in_code() -> None:
    line = {
        "id": "sl1",
        "points": [[40, 300], [600, 300]],
        "approach": "below",
        "exits": [{"id": "r", "polygon": [[560, 130], [900, 130], [640, 280]]}],
    }
    with pytest.raises(ValueError, match=r"stop_lines\.0\.exits\.0\.polygon\.1[\s\S]*point \(900, 130\)"):
        Scene.model_validate({"camera_id": "c", "resolution": [640, 480], "stop_lines": [line]})


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            f"{STRAIGHT}}}",
            f"{STRAIGHT}, free: true}}",
            "stop line sl1: every exit has a light or free: while one is permitted, a vehicle crossing on "
            "red into no exit (e.g. straight on) is not fined; draw the other movements as exits without a "
            "light",
        ),
        (
            "[560, 280]], light: A}",
            "[560, 280]]}",
            "stop line sl1: no exit has a light or free: every crossing on red is judged as without exits "
            "(they only name the movement)",
        ),
        (
            STRAIGHT,
            "[[40, 310], [500, 310], [500, 400], [40, 400]]",
            "exit straight of stop line sl1 lies behind the line: vehicles are looked for in exits only "
            "after they crossed",
        ),
        (
            STRAIGHT,
            "[[560, 130], [640, 130], [640, 270], [560, 270]]",
            "exits right and straight of stop line sl1 overlap by more than 30 %: the first one a vehicle "
            "enters decides its movement",
        ),
    ],
)
def test_check_scene_warns_about_exits_that_cannot_work(old: str, new: str, expected: str) -> None:
    assert old in SCENE
    warnings = check_scene(parse_scene(SCENE.replace(old, new, 1)))
    assert expected in warnings, warnings


def test_exits_are_drawn() -> None:
    frame = np.full((480, 640, 3), 90, np.uint8)
    with_exits = draw_scene(frame, parse_scene(SCENE))
    start, end = SCENE.index("    exits:"), SCENE.index("lights:")
    without = draw_scene(frame, parse_scene(SCENE[:start] + SCENE[end:]))
    assert not np.array_equal(with_exits[140:270, 570:630], without[140:270, 570:630])
    outline = with_exits[140:180, 560].astype(int)  # the right exit's left edge (anti-aliased)
    assert np.abs(outline - np.array(EXIT)).max() < 20


def test_the_haiphong_scene_permits_the_right_turn_on_its_arrow() -> None:
    scene = load_scene(REPO_ROOT / "examples" / "scenes" / "haiphong_intersection.yaml")
    (line,) = scene.stop_lines
    exits = {ex.id: ex for ex in line.exits}
    assert exits["right"].light == "arrow_right" and exits["straight_or_left"].governed_by_line
    arrow = scene.light("arrow_right").lamps
    assert arrow is not None and (arrow.red, arrow.amber) == (None, None)
    assert [w for w in check_scene(scene) if not w.startswith("rule ")] == []


def test_an_exit_example_in_the_readme_is_a_valid_scene(tmp_path: Path) -> None:
    """The README's exits example (Drawing a scene) parses, with the Hải Phòng resolution."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("```yaml\nstop_lines:\n  - id: sl1\n    points: [[60, 383]")
    block = readme[start + len("```yaml\n") : readme.index("```", start + 3)]
    scene = parse_scene("camera_id: c\nresolution: [1006, 720]\n" + block)
    assert [ex.id for ex in scene.stop_lines[0].exits] == ["right", "straight_or_left"]
