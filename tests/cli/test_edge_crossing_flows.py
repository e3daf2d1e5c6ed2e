"""Flow counts by stop-line crossing on a line with exits (`flows.source: crossings`): the edge worker on
a real clip cut, where a crossing record waits for the vehicle's movement and one is still waiting when
the file ends. Every crossing in crossings.jsonl is counted once, the one decided at the end too.

The cut: the first 118 frames of the Hải Phòng clip (to 5.85 s), re-encoded; the rider labelled at
5.15 s (right turn) is past the line but not yet in the right exit when it ends. Measured 2026-11: 4
crossings logged (0.6, 1.55, 2.3 s with their movements; 5.15 s with none), 4 motorbikes counted.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import need
from tests.violations.test_rules_exits_real_clip import CLIP, SCENE, label_at

CUT_FRAMES = 118
LANE = ("line:sl1", "in", "motorcycle")  # lane, direction, class of the flow counts


def _cut(clip: Path, out: Path, frames: int) -> Path:
    """The first `frames` frames of `clip`, re-encoded at its nominal frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    try:
        for _ in range(frames):
            ok, image = cap.read()
            assert ok
            writer.write(image)
    finally:
        writer.release()
        cap.release()
    return out


def test_crossings_decided_at_the_end_of_the_file_are_counted_once(tmp_path: Path) -> None:
    from phatnguoi.edge import DeviceSection, EdgeCameraSection, EdgeConfig, EdgeWorker
    from phatnguoi.flows import FlowConfig
    from phatnguoi.outbox import Outbox
    from violations.manifest import generate_keypair, load_public_key

    source = _cut(need(CLIP), tmp_path / "cut.mp4", CUT_FRAMES)
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    config = EdgeConfig(
        device=DeviceSection(id="edge-t", private_key=tmp_path / "k.pem", public_key=tmp_path / "k.pub"),
        data_dir=tmp_path / "edge",
        cameras=(
            EdgeCameraSection(id="haiphong-intersection", source=str(source), read_plates=False, scene=SCENE),
        ),
        flows=FlowConfig(source="crossings"),
    )
    EdgeWorker(config).run(deadline_s=120)
    crossings = tmp_path / "edge" / "haiphong-intersection" / "crossings.jsonl"
    log = [json.loads(x) for x in crossings.read_text().splitlines()]
    found = {label_at(c["ts"])["t"]: c["movement"] for c in log}
    assert len(found) == len(log)
    assert found == {0.6: "straight_or_left", 1.55: "right", 2.3: "straight_or_left", 5.15: None}
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(tmp_path / "k.pub")) as box:
        rows = box.flow_rows()
    assert {(r["lane"], r["direction"], r["vehicle_class"]) for r in rows} == {LANE}
    assert sum(r["count"] for r in rows) == len(log)
