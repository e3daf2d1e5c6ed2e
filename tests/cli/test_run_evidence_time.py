"""`phatnguoi run` on the Giang Vo clip: the red-light evidence is dated at the stop-line crossing and
its stills show it, checked against the crossings labelled by eye
(tests/fixtures/violations/hanoi_giangvo_langha_events.yaml; 6 fps, frame i at i / 6 s).

Before: ``occurred_at`` was the frame where the rule could establish the violation (the rider ~60 px
past the line, then held 1 s for the light reader): 1.4-2.6 s after the crossing (tracks crossing at
5.62 / 7.30 / 8.62 / 17.08 s were dated 7.83 / 9.00 / 11.17 / 18.50 s), and the three stills were
centred there, so none showed the rider before the line.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.conftest import GIANGVO_START
from tests.conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "violations" / "hanoi_giangvo_langha_events.yaml"
START = GIANGVO_START
FPS = 6.0


def stop_line_y(x: float) -> float:
    """The painted stop line as the fixture measured it: y ~= 337 + 0.055 * (x - 40)."""
    return 337.0 + 0.055 * (x - 40.0)


@pytest.fixture(scope="module")
def manifests(run_output: Path) -> list[dict[str, Any]]:
    evidence = run_output / "evidence"
    folders = sorted(p for p in evidence.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [json.loads((p / "manifest.json").read_text()) for p in folders]


def seconds(iso: str) -> float:
    return (
        datetime.fromisoformat(iso.replace("Z", "+00:00")) - datetime.fromisoformat(START)
    ).total_seconds()


def labelled_red_crossings() -> list[int]:
    truth = yaml.safe_load(FIXTURE.read_text())
    return [c["frame"] for c in truth["crossings"] if c["light"] == "red" and c["continues"]]


def test_red_light_occurred_at_is_the_labelled_crossing(manifests: list[dict[str, Any]]) -> None:
    """Each red-light violation is dated within two frames of the frame where its rider was labelled
    past the line (the first frame clearly past it: the crossing itself is between it and the one
    before), and every labelled red-light crossing has one."""
    red = [m for m in manifests if m["rule"] == "red_light"]
    labelled = labelled_red_crossings()
    dated = sorted(seconds(m["occurred_at"]) for m in red)
    assert len(dated) == len(labelled), (dated, labelled)
    for t, frame in zip(dated, sorted(labelled), strict=True):
        assert frame / FPS - 2 / FPS - 0.01 <= t <= frame / FPS + 1 / FPS + 0.01, (t, frame)


def test_red_light_stills_show_the_rider_before_and_past_the_line(manifests: list[dict[str, Any]]) -> None:
    """The before still's box stands on the approach side of the stop line with the light already red
    (labelled red from frame 25); the at still's is past the line, the after still's well past it."""
    truth = yaml.safe_load(FIXTURE.read_text())
    red_from = next(p["first_frame"] for p in truth["light_phases"] if p["state"] == "red")
    red = [m for m in manifests if m["rule"] == "red_light"]
    assert red
    for m in red:
        timing = m["details"]["timing"]
        assert (
            timing["occurred_at"] == "stop_line_crossing" and timing["stills_at"] == "stop_line_crossing"
        ), timing
        before, at, after = timing["stills"]
        assert [s["kind"] for s in (before, at, after)] == ["still_before", "still_at", "still_after"]
        assert before["frame_index"] + 1 == at["frame_index"] == m["details"]["crossed_frame_index"]
        assert after["frame_index"] == m["frame_index"]
        assert before["frame_index"] >= red_from
        offsets = []
        for still in (before, at, after):
            assert still["box"] == "observed", (m["track_id"], still)
            x1, _, x2, y2 = still["box_xyxy"]
            offsets.append(stop_line_y((x1 + x2) / 2) - y2)  # > 0: past the line (above it in the image)
        assert offsets[0] < 0, (m["track_id"], offsets)  # behind the line, on the approach side
        assert offsets[1] > -3.0, (m["track_id"], offsets)  # over it (the rules' line is the scene's)
        assert offsets[2] > 40.0, (m["track_id"], offsets)
