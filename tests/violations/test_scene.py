"""Scene files: loading, every-field error messages, rule enabling, checks, drawing, the shipped scenes."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, SAMPLE_CLIP, SHARED_DATA, need
from violations import geometry
from violations.draw import draw_scene
from violations.scene import Scene, SceneError, check_scene, load_scene, parse_scene

VALID = """\
camera_id: cam-1
name: "Ngã tư thử nghiệm"
resolution: [640, 480]
location: {lat: 21.0263, lon: 105.8184}
district: "Ba Đình"
stop_lines:
  - {id: sl1, points: [[40, 300], [600, 300]], approach: below, light: L1, lanes: [a]}
lights:
  - id: L1
    roi: [600, 10, 630, 80]
    lamps: {red: [615, 25], green: [615, 65]}
    reader: {hold_s: 0.4}
lanes:
  - {id: a, polygon: [[40, 300], [320, 300], [320, 480], [40, 480]], direction: up, classes: [car, bus]}
  - {id: b, polygon: [[320, 300], [600, 300], [600, 480], [320, 480]], direction: [0, -2]}
wrong_way_zones:
  - {id: w1, polygon: [[40, 300], [600, 300], [600, 480], [40, 480]], direction: up}
stop_zones:
  - {id: z1, kind: no_parking, polygon: [[40, 100], [600, 100], [600, 280], [40, 280]], max_dwell_s: 60}
sidewalks:
  - {id: s1, polygon: [[0, 0], [40, 0], [40, 480], [0, 480]]}
speed:
  image_points: [[100, 320], [540, 320], [540, 470], [100, 470]]
  ground_points_m: [[0, 0], [22, 0], [22, 7.5], [0, 7.5]]
  limits_kmh: {car: 50, bus: 50, truck: 50, motorcycle: 40}
tolerances: {amber_grace_s: 0.8}
"""

EXAMPLES = REPO_ROOT / "examples" / "scenes"
VIDEOS = SHARED_DATA / "videos"
SCENE_VIDEOS = {
    "hanoi_giangvo_langha.yaml": VIDEOS / "hanoi_giangvo_langha.mp4",
    "haiphong_intersection.yaml": VIDEOS / "haiphong_intersection_daytime_plates.mp4",
    "us_street.yaml": VIDEOS / "us_street.mp4",
    "sample.yaml": SAMPLE_CLIP,
}


def write(tmp_path: Path, text: str, name: str = "scene.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_scene_loads(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    scene = load_scene(path)
    assert scene.camera_id == "cam-1" and scene.resolution == (640, 480)
    assert scene.scene_version == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scene.enabled_rules() == (
        "red_light",
        "stop_line",
        "wrong_way",
        "wrong_lane",
        "illegal_stop",
        "sidewalk",
        "speeding",
    )
    assert scene.lanes[1].direction == (0.0, -1.0)  # normalised
    assert scene.stop_lines[0].travel == (0.0, -1.0)
    assert scene.tolerances.amber_grace_s == 0.8
    reader = scene.light("L1").reader_config()
    assert reader.roi == (600, 10, 630, 80) and reader.lamps.red == (615, 25) and reader.hold_s == 0.4
    # 0.05 m per pixel across, 0.05 m per pixel along.
    assert geometry.apply_homography(scene.speed.homography, [[320, 395]])[0] == pytest.approx([11.0, 3.75])
    assert scene.speed.reprojection_error_m() < 1e-6
    assert check_scene(scene) == []


def test_every_bad_field_is_listed_with_the_file_name(tmp_path: Path) -> None:
    text = (
        VALID.replace("[[40, 300], [600, 300]], approach", "[[40, 300], [700, 20]], approach")
        .replace("roi: [600, 10, 630, 80]", "roi: [600, 10, 660, 80]")
        .replace("classes: [car, bus]", "classes: [car, tank]")
        .replace("max_dwell_s: 60", "max_dwell_s: -5")
        .replace("kind: no_parking", "kind: no_parking, colour: red")
        .replace("light: L1, lanes: [a]", "light: L9, lanes: [a]")
        .replace("limits_kmh: {car: 50, bus: 50, truck: 50, motorcycle: 40}", "limits_kmh: {car: 500}")
    )
    with pytest.raises(SceneError) as err:
        load_scene(write(tmp_path, text))
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'scene.yaml'}: ")
    for part in [
        "stop_lines.0.points.1: point (700, 20) is outside the 640x480 frame",
        "lights.0.roi: roi (600, 10, 660, 80) extends outside the 640x480 frame",
        "lanes.0.classes.1: Input should be 'motorcycle', 'car', 'bus', 'truck' or 'bicycle'",
        "stop_zones.0.max_dwell_s: Input should be greater than or equal to 1",
        "stop_zones.0.colour: Extra inputs are not permitted",
        "stop_lines.0.light: unknown light 'L9'",
        "speed.limits_kmh.car: Input should be less than or equal to 200",
    ]:
        assert part in msg
    assert msg.count("; ") == 6  # seven problems, nothing else


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("camera_id: cam-1", "camera_id: cam 1", "camera_id: String should match pattern"),
        ("resolution: [640, 480]", "resolution: [640]", "resolution.1: Field required"),
        ("lat: 21.0263", "lat: 121.0", "location.lat: Input should be less than or equal to 90"),
        ("approach: below", "approach: beneath", "stop_lines.0.approach: Input should be"),
        ("approach: below", "approach: left", "stop_lines.0: the travel direction runs along the stop line"),
        ("lanes: [a]}", "lanes: [zz]}", "stop_lines.0.lanes.0: unknown lane 'zz'"),
        ("direction: [0, -2]", "direction: [0, 0]", "lanes.1.direction: direction must be a non-zero vector"),
        ("direction: [0, -2]", "direction: north", "lanes.1.direction: direction must be [dx, dy] or one of"),
        ("reader: {hold_s: 0.4}", "reader: {hold_s: -1}", "lights.0.reader.hold_s: Input should be greater"),
        ("reader: {hold_s: 0.4}", "reader: {hue: 3}", "lights.0.reader.hue: Extra inputs are not permitted"),
        ("red: [615, 25]", "red: [590, 25]", "lights.0.lamps: lamps.red disc (590, 25) radius 3 must"),
        ("roi: [600, 10, 630, 80]", "roi: [630, 10, 600, 80]", "lights.0.roi: roi must be x1, y1, x2, y2"),
        ("- {id: b,", "- {id: a,", "lanes.1.id: duplicate id 'a'"),
        ("[40, 0], [40, 480], [0, 480]]", "[40, 0], [80, 0]]", "sidewalks.0.polygon: polygon has"),
        ("[[100, 320], [540", "[[100, 320], [90, 330], [540", "speed: image_points has 5 points but"),
        ("[540, 320], [540, 470]", "[200, 320], [300, 320]", "speed: the calibration points are degenerate"),
        ("{amber_grace_s: 0.8}", "{amber_grace: 0.8}", "tolerances.amber_grace: Extra inputs"),
        ("district:", "distrct:", "distrct: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_one_bad_field(old: str, new: str, expected: str) -> None:
    assert old in VALID
    with pytest.raises(SceneError) as err:
        parse_scene(VALID.replace(old, new, 1), "scene.yaml")
    assert str(err.value).startswith("scene.yaml: ")
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("camera_id: [unclosed", "scene.yaml: line 1 is not valid YAML"),
        ("- a\n- b\n", "scene.yaml: expected a mapping at the top level, got list"),
        ("", "scene.yaml: expected a mapping at the top level, got NoneType"),
    ],
)
def test_unparsable_files(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SceneError, match=expected.replace("scene.yaml", ".*scene.yaml")):
        load_scene(write(tmp_path, text))


def test_missing_file() -> None:
    with pytest.raises(SceneError, match=r"scene file not found: .*nope\.yaml"):
        load_scene("/nonexistent/nope.yaml")


def test_no_light_roi_disables_only_the_signal_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = VALID.replace("light: L1, lanes: [a]", "lanes: [a]")
    start, end = text.index("lights:"), text.index("lanes:\n")
    text = text[:start] + text[end:]
    with caplog.at_level(logging.WARNING, logger="violations.scene"):
        scene = load_scene(write(tmp_path, text))
    assert scene.enabled_rules() == ("wrong_way", "wrong_lane", "illegal_stop", "sidewalk", "speeding")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("stop lines have no traffic light" in w for w in warnings)
    assert {w.split("rule ")[1].split(" ")[0] for w in warnings} == {"red_light", "stop_line"}
    assert "stop line sl1 has no light: not enforced" in check_scene(scene)


def test_light_needs_a_roi_unless_fed_by_a_controller() -> None:
    camera_view = (
        "roi: [600, 10, 630, 80]\n    lamps: {red: [615, 25], green: [615, 65]}\n    reader: {hold_s: 0.4}"
    )
    assert camera_view in VALID
    with pytest.raises(SceneError, match=r"lights\.0: roi is required unless feed_only is true"):
        parse_scene(VALID.replace(camera_view, "feed_only: false"))
    scene = parse_scene(VALID.replace(camera_view, "feed_only: true"))
    assert scene.light("L1").reader_config() is None
    assert "red_light" in scene.enabled_rules()


def test_disabled_rules_and_scene_built_in_code() -> None:
    scene = parse_scene(VALID + "disabled_rules: [speeding, sidewalk]\n")
    assert "speeding" not in scene.enabled_rules() and "sidewalk" not in scene.enabled_rules()
    assert scene.rule_status()["speeding"] == "disabled in the scene (disabled_rules)"
    # Without load_scene's context the frame is still checked.
    with pytest.raises(ValueError, match="point \\(900, 300\\) is outside the 640x480 frame"):
        Scene.model_validate(
            {"camera_id": "c", "resolution": [640, 480],
             "sidewalks": [{"id": "s", "polygon": [[0, 0], [900, 300], [0, 300]]}]}
        )  # fmt: skip
    built = Scene.model_validate({"camera_id": "c", "resolution": [640, 480]})
    assert len(built.scene_version) == 64 and built.enabled_rules() == ()


def test_check_scene_warnings() -> None:
    # A no-parking zone reaching over the queue behind the stop line, and a light nothing uses.
    text = VALID.replace(
        "[[40, 100], [600, 100], [600, 280], [40, 280]], max_dwell_s: 60",
        "[[40, 250], [600, 250], [600, 400], [40, 400]], max_dwell_s: 60",
    ).replace("lights:\n", "lights:\n  - {id: L2, roi: [10, 10, 14, 40]}\n")
    scene = parse_scene(text)
    frame = np.zeros((360, 640, 3), np.uint8)
    warnings = check_scene(scene, frame)
    assert "the frame is 640x360 but the scene is drawn for 640x480: coordinates will not match" in warnings
    assert "light L2 governs no stop line or stop zone" in warnings
    assert "light L2: roi is only 4x30 px; lamps may not be readable" in warnings
    assert any(
        w.startswith("stop zone z1 covers the queue behind stop line sl1 but has no light") for w in warnings
    )


def test_draw_scene_returns_a_new_picture() -> None:
    scene = parse_scene(VALID)
    frame = np.full((480, 640, 3), 90, np.uint8)
    before = frame.copy()
    out = draw_scene(frame, scene)
    assert np.array_equal(frame, before)  # the input is untouched
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (out[300, 100:500] == 255).all()  # the stop line, white
    assert not np.array_equal(out[10:80, 600:630], before[10:80, 600:630])  # the light box
    # Half the size: coordinates are scaled.
    small = draw_scene(np.full((240, 320, 3), 90, np.uint8), scene)
    assert (small[150, 50:250] == 255).all()
    with pytest.raises(ValueError, match="image must be"):
        draw_scene(np.zeros((10, 10), np.uint8), scene)


# --- the shipped scenes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENE_VIDEOS))
def test_example_scene_loads_and_fits_its_frame(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        scene = load_scene(EXAMPLES / name)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert {"red_light", "stop_line"} <= set(scene.enabled_rules())
    w, h = scene.resolution
    points = [p for line in scene.stop_lines for p in line.points]
    for zone in (*scene.lanes, *scene.wrong_way_zones, *scene.stop_zones, *scene.sidewalks):
        points += list(zone.polygon)
    for light in scene.lights:
        assert light.roi is not None
        x1, y1, x2, y2 = light.roi
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        light.reader_config()
    assert all(0 <= x <= w and 0 <= y <= h for x, y in points)


@pytest.mark.parametrize("name", sorted(SCENE_VIDEOS))
def test_example_scene_matches_its_video(name: str) -> None:
    cv2 = pytest.importorskip("cv2")
    video = need(SCENE_VIDEOS[name])
    cap = cv2.VideoCapture(str(video))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok
    scene = load_scene(EXAMPLES / name)
    assert frame.shape[:2] == (scene.resolution[1], scene.resolution[0])
    warnings = check_scene(scene, frame)
    assert not [w for w in warnings if "frame" in w or "roi" in w or "queue" in w], warnings
    drawn = draw_scene(frame, scene)
    assert drawn.shape == frame.shape and not np.array_equal(drawn, frame)


def test_sample_scene_light_is_the_lit_red_lamp() -> None:
    """The demo clip's signal head shows one lit lamp at the scene's red lamp point (rendered orange)."""
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(need(SAMPLE_CLIP)))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok
    lamps = load_scene(EXAMPLES / "sample.yaml").light("main").lamps
    assert lamps is not None and lamps.red is not None
    x, y = round(lamps.red[0]), round(lamps.red[1])
    hsv = cv2.cvtColor(frame[y - 2 : y + 3, x - 2 : x + 3], cv2.COLOR_BGR2HSV).reshape(-1, 3)
    assert np.median(hsv[:, 2]) > 200 and np.median(hsv[:, 1]) > 120  # bright and saturated
    assert 15 <= np.median(hsv[:, 0]) <= 35  # orange-yellow: inside the scene's widened red range
