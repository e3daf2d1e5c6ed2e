"""Plates read on the pipeline's plate thread give the same violations, plates and evidence as reading
them inline on the frame loop, and the plate thread is where the OCR runs."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from phatnguoi.pipeline import EdgePipeline


def _pipeline(out: Path, async_plates: bool = False) -> EdgePipeline:
    """The Giang Vo camera's EdgePipeline writing under `out` (a fresh device key)."""
    from phatnguoi.config import load_camera
    from phatnguoi.pipeline import EdgePipeline
    from violations.manifest import generate_keypair, load_private_key
    from violations.scene import load_scene

    generate_keypair(out / "k.pem", out / "k.pub")
    return EdgePipeline(
        load_camera(REPO_ROOT / "examples" / "cameras" / "hanoi_giangvo_langha.yaml"),
        load_scene(REPO_ROOT / "examples" / "scenes" / "hanoi_giangvo_langha.yaml"),
        out / "run",
        "edge-t",
        load_private_key(out / "k.pem"),
        frame_rate=6.0,
        ts_origin=1664097340.0,
        async_plates=async_plates,
    )


def _run(out: Path, clip: Path, async_plates: bool) -> tuple[list[dict[str, Any]], set[str], int]:
    from streams import open_source

    pipeline = _pipeline(out, async_plates)
    threads: set[str] = set()
    scan = pipeline.scanner.scan_vehicle  # type: ignore[union-attr]

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.current_thread().name.split("_")[0])
        return scan(*args, **kwargs)

    pipeline.scanner.scan_vehicle = spy  # type: ignore[union-attr,method-assign]
    with open_source(str(clip), camera_id=pipeline.camera.id) as source:
        for frame in source:
            pipeline.step(frame)
            if frame.index >= 150:
                break
    built = pipeline.close()
    rows = [json.loads(line) for line in (out / "run" / "events.jsonl").read_text().splitlines()]
    return rows, threads, sum(1 for b in built if b.status == "written")


def test_plate_thread_matches_inline_reading(tmp_path: Path, hanoi_clip: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inline, inline_threads, inline_built = _run(tmp_path / "a", hanoi_clip, async_plates=False)
    threaded, threaded_threads, threaded_built = _run(tmp_path / "b", hanoi_clip, async_plates=True)
    assert len(inline) >= 3  # red-light runners in the first 25 s
    assert inline_threads == {"MainThread"}
    assert threaded_threads == {"plates"}  # OCR never ran on the frame loop

    def key(rows: list[dict[str, Any]]) -> list[tuple[str, int, Any]]:
        return sorted((r["rule"], r["track_id"], (r["plate"] or {}).get("text")) for r in rows)

    assert key(threaded) == key(inline)
    assert threaded_built == inline_built == len(inline)


def test_per_frame_state_stays_bounded(tmp_path: Path, hanoi_clip: Path, monkeypatch: Any) -> None:
    """A worker runs for months: per-frame timings and per-event ids are kept in bounded windows,
    while the totals and counts still cover every frame and event."""
    from phatnguoi import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "TIMING_WINDOW", 20)
    monkeypatch.setattr(pipeline_module, "ESTABLISHED_WINDOW", 2)
    created: list[Any] = []
    real = pipeline_module.EdgePipeline.__init__

    def remember(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(pipeline_module.EdgePipeline, "__init__", remember)
    rows, _threads, _built = _run(tmp_path, hanoi_clip, async_plates=False)
    (p,) = created
    summary = p.summary("clip", 151, 1.0)
    assert all(len(v) == 20 for v in p.stage_ms.values())
    assert summary.stage_ms_total["detect_track"] > sum(p.stage_ms["detect_track"])  # all 151 frames
    assert summary.events == len(rows) >= 3 and sum(summary.events_per_rule.values()) == len(rows)
    assert len(p.established_at) == 2
    assert p.job.detector_ms.maxlen is not None


def test_one_unusable_view_does_not_cost_the_plate_of_the_others(tmp_path: Path, hanoi_clip: Path) -> None:
    """A degenerate vehicle box (zero area) in one view: that view is skipped, the others are read as
    if it were not there (it used to end the reading with no plate for the violation)."""
    import cv2
    import numpy as np

    from phatnguoi.pipeline import _PlateView, _PlateViews

    pipeline = _pipeline(tmp_path)
    capture = cv2.VideoCapture(str(hanoi_clip))
    ok, image = capture.read()
    capture.release()
    assert ok
    none = np.zeros((0, 4), np.float32)
    good = _PlateView(0, image, np.array([200.0, 250.0, 420.0, 470.0], np.float32), none)
    bad = _PlateView(1, image, np.array([300.0, 300.0, 300.0, 300.0], np.float32), none)
    alone = pipeline._read_views(_PlateViews((good,), ()))
    both = pipeline._read_views(_PlateViews((bad, good), ()))
    assert both.plate == alone.plate
    assert (both.crop is None) == (alone.crop is None)
    pipeline.close()


def test_a_camera_going_silent_builds_the_evidence_of_a_held_red_light_event(
    tmp_path: Path, hanoi_clip: Path
) -> None:
    """A red-light event waits a moment for the light reader (see SignalLineRule.release); if the
    camera dies then, the worker's stall flush must build its evidence now, not keep it in memory
    for the length of the outage."""
    from streams import open_source

    pipeline = _pipeline(tmp_path)
    with open_source(str(hanoi_clip), camera_id=pipeline.camera.id) as source:
        for frame in source:
            pipeline.step(frame)
            if pipeline.engine.held:
                break
    assert pipeline.engine.held == 1 and pipeline.evidence_pending >= 1  # what the stall check sees
    pipeline.flush_evidence()  # the camera went silent
    assert pipeline.engine.held == 0
    assert [b.status for b in pipeline.built] == ["written"]
    pipeline.close()
