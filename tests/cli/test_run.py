"""`phatnguoi run` on the Giang Vo clip against the stop-line events labelled by eye.

Ground truth: tests/fixtures/violations/hanoi_giangvo_langha_events.yaml. A detected crossing matches a
labelled one when their frames are within 5 (0.8 s at 6 fps), one to one in time order.
Measured 2026-11: crossings 6/6 detected are right, 6 of 7 found (the one missed starts the clip on
the line); red-light violations 4/4 right, 4 of 4 found.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT
from violations.scoring import match_frames as match

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "violations" / "hanoi_giangvo_langha_events.yaml"


def test_stop_line_crossings_precision_and_recall(run_output: Path) -> None:
    truth = yaml.safe_load(FIXTURE.read_text())
    labelled = [c["frame"] for c in truth["crossings"]]
    found = [
        json.loads(line)["frame_index"] for line in (run_output / "crossings.jsonl").read_text().splitlines()
    ]
    hits = match(found, labelled)
    precision, recall = hits / max(len(found), 1), hits / len(labelled)
    assert precision >= 0.9 and recall >= 0.8, (found, labelled)


def test_red_light_violations_precision_and_recall(run_output: Path) -> None:
    truth = yaml.safe_load(FIXTURE.read_text())
    red_start = next(p["first_frame"] for p in truth["light_phases"] if p["state"] == "red")
    labelled = [c["frame"] for c in truth["crossings"] if c["light"] == "red" and c["continues"]]
    assert all(f > red_start for f in labelled)
    events = [json.loads(line) for line in (run_output / "events.jsonl").read_text().splitlines()]
    found = [e["details"]["crossed_frame_index"] for e in events if e["rule"] == "red_light"]
    hits = match(found, labelled)
    assert hits / max(len(found), 1) >= 0.9 and hits / len(labelled) >= 0.8, (found, labelled)
    for e in events:
        assert e["legal_reference"].endswith("Nghị định 168/2024/NĐ-CP")


def test_stop_line_violations_are_the_labelled_stops_past_the_line(run_output: Path) -> None:
    """Nobody on this clip stops past the line (the queue's rear wheels stay behind it). A queued
    rider whose rear wheel the rider behind hid (its box ending higher up) was fined for it."""
    truth = yaml.safe_load(FIXTURE.read_text())
    labelled = [s["frame"] for s in truth["stopped_past_line"]]
    events = [json.loads(line) for line in (run_output / "events.jsonl").read_text().splitlines()]
    found = [e["details"]["crossed_frame_index"] for e in events if e["rule"] == "stop_line"]
    assert match(found, labelled) == len(found) == len(labelled), (found, labelled)


def test_evidence_is_signed_and_verifies(run_output: Path) -> None:
    packages = sorted(
        p for p in (run_output / "evidence").iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    assert packages
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "phatnguoi.cli",
            "evidence",
            "verify",
            str(packages[0]),
            "--public-key",
            str(run_output / "device_key.pub"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((packages[0] / "manifest.json").read_text())
    assert manifest["occurred_at"].startswith("2022-09-25T09:15")
    assert manifest["camera_id"] == "hanoi-giangvo-langha"


def test_rules_and_evidence_cost_under_a_tenth_of_detection(run_output: Path) -> None:
    summary = json.loads((run_output / "summary.json").read_text())
    assert summary["frames"] == 360
    assert summary["rules_evidence_share_of_detect_track"] < 0.10, summary["stage_ms_total"]
    assert summary["evidence_failed"] == 0
