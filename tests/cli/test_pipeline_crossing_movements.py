"""crossings.jsonl of the edge pipeline on a stop line with exits: each crossing is written once with the
movement the vehicle made, also when the video ends before its movement is seen (the record waits for
it, and `close` writes what is left). The real pipeline (ByteTrack, light readers, rules, evidence
builder) on synthetic frames with scripted detections, as in `test_pipeline_clock_step`; the scene of
`tests/violations/test_rules_exits.py` (line at y = 300, a right exit under a green arrow head, a
straight exit). The light ROIs stay dark: the log holds every crossing, whatever the light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_pipeline_clock_step import T0, _feed, _pipeline, detector  # noqa: F401 (a fixture)
from tests.violations import Drive, make_scene
from tests.violations.test_rules_exits import LIGHTS, RIGHT_TURN, STRAIGHT, exit_scene


def _logged(pipeline: Any) -> list[dict[str, Any]]:
    path: Path = pipeline.out_dir / "crossings.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("waypoints", "until", "movement"),
    [
        pytest.param(RIGHT_TURN, 6.0, "right", id="right_turn"),
        pytest.param(STRAIGHT, 6.0, "straight", id="straight"),
        # The video ends at 3.4 s: 65 px past the line (it drove on), in no exit yet.
        pytest.param(RIGHT_TURN, 3.4, None, id="video_ends_before_the_movement"),
    ],
)
def test_each_crossing_is_written_once_with_its_movement(
    tmp_path: Path,
    detector: Any,  # noqa: F811
    waypoints: list[tuple[float, float, float]],
    until: float,
    movement: str | None,
) -> None:
    pipeline = _pipeline(tmp_path, exit_scene(), detector)
    _feed(pipeline, [Drive(1, waypoints)], lambda t: 0.0, until)
    pipeline.close()
    (row,) = _logged(pipeline)
    assert row["line_id"] == "sl1" and row["ts"] - T0 == pytest.approx(2.0, abs=0.1)
    assert row["movement"] == movement
    # The flow counter at the edge drains them after `close` (`EdgeWorker._finish`): the same one.
    assert [(c.line_id, c.movement) for c in pipeline.pop_crossings()] == [("sl1", movement)]
    summary = pipeline.summary("synthetic", int(until * 10) + 1, 1.0)
    assert summary.stop_line_crossings == 1


def test_a_line_without_exits_writes_no_movement(tmp_path: Path, detector: Any) -> None:  # noqa: F811
    pipeline = _pipeline(tmp_path, make_scene(lights=LIGHTS), detector)
    _feed(pipeline, [Drive(1, RIGHT_TURN)], lambda t: 0.0, 6.0)
    pipeline.close()
    (row,) = _logged(pipeline)
    assert "movement" not in row and row["line_id"] == "sl1"


def test_giang_vo_crossings_keep_their_fields(run_output: Path) -> None:
    """The Giang Vo scene has no exits: its crossing log is as before (no movement field)."""
    rows = [json.loads(line) for line in (run_output / "crossings.jsonl").read_text().splitlines()]
    assert len(rows) >= 6
    fields = {"vehicle_key", "tracker_id", "line_id", "ts", "frame_index", "x", "vehicle_class", "signal"}
    assert all(set(row) == fields | {"on_red", "front_ts"} for row in rows)
