"""crossings.jsonl of `phatnguoi run` on the Hải Phòng clip gives each vehicle's movement (turn counts):
the labelled crossings (tests/fixtures/violations/haiphong_intersection_crossings.yaml) it logs carry the
exit of their labelled movement (straight: ``straight_or_left``, right: ``right``), and a clip cut while
a vehicle is between the line and any exit still logs that vehicle, once, with no movement.

Measured 2026-11 (movement_window_s 5 s): the 4 crossings logged (0.6 s, 1.55 s, 2.3 s, 5.15 s) have
their labelled movements, decided 0.1-1.0 s after they were 60 px past the line (the last one at 5.9 s,
when it entered the right exit). Cut after 118 frames (5.85 s), the last one is 60 px past the line but
in no exit: before, a record waiting for its movement at the end of the file was lost (3 lines).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT, need
from tests.violations.test_rules_exits_real_clip import CLIP, SCENE, label_at

EXIT_OF = {"straight": "straight_or_left", "right": "right"}  # labelled movement → the scene's exit


def run_clip(out: Path, *extra: str) -> list[dict[str, Any]]:
    """`phatnguoi run` over the clip (no plates); the lines of crossings.jsonl."""
    args = ["run", "--source", str(need(CLIP)), "--scene", str(SCENE), "--out", str(out), "--no-plates"]
    proc = subprocess.run(
        [sys.executable, "-m", "phatnguoi.cli", *args, *extra, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    logged = [json.loads(line) for line in (out / "crossings.jsonl").read_text().splitlines()]
    assert json.loads(proc.stdout)["stop_line_crossings"] == len(logged)
    return logged


def test_logged_crossings_carry_their_labelled_movement(tmp_path: Path) -> None:
    logged = run_clip(tmp_path)
    found = {label_at(c["ts"])["t"]: c["movement"] for c in logged}
    assert len(found) == len(logged) >= 4  # one record per labelled crossing
    assert found == {t: EXIT_OF[label_at(t)["movement"]] for t in found}


def test_a_clip_cut_before_the_movement_logs_the_crossing_once(tmp_path: Path) -> None:
    logged = run_clip(tmp_path, "--max-frames", "118")
    found = {label_at(c["ts"])["t"]: c["movement"] for c in logged}
    assert len(found) == len(logged)
    assert found == {0.6: "straight_or_left", 1.55: "right", 2.3: "straight_or_left", 5.15: None}
