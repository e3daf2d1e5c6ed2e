"""The violation time the server keeps (the review list, the notice, the SMS, exports) is the one the
edge signed as ``occurred_at``: for a red-light package from the real `EvidenceBuilder` that is the
stop-line crossing, not the later frame where the rule established the violation, and the manifest's
``details.timing`` saying so is stored and read back. The manifest format is unchanged (``timing`` is
inside the free-form ``details``), so servers and devices of either side of this change agree."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import Violation
from streams.frame import Frame
from tests.api.conftest import World
from tests.api.evidence import Package
from tests.api.evidence import post_package as post
from violations.evidence import EvidenceBuilder, EvidenceConfig
from violations.legal import reference
from violations.manifest import MANIFEST_NAME, SIGNATURE_NAME, parse_manifest
from violations.types import ViolationEvent, event_id

Auth = Callable[[str], dict[str, str]]
EVENT_FRAME, CROSSED_FRAME = 30, 22


def builder_package(world: World, clip: Path, root: Path, origin: float) -> Package:
    """A red-light package made by the real builder from real frames: crossing between frames 21 and
    22, established at frame 30, added 6 frames later (held for the light reader)."""
    dev = world.devices["dev-a"]
    builder = EvidenceBuilder(
        dev.id,
        dev.private_key,
        root,
        scene_version="5" * 64,
        ts_origin=origin,
        config=EvidenceConfig(background=False, clip=False),
    )
    ref = reference("red_light", "motorcycle")
    assert ref is not None
    crossed = round(21.6 / 6.0, 3)
    event = ViolationEvent(
        event_id=event_id("cam-a1", 7, "red_light", crossed),
        rule="red_light",
        legal_reference=ref.citation,
        camera_id="cam-a1",
        track_id=7,
        frame_index=EVENT_FRAME,
        ts=EVENT_FRAME / 6.0,
        vehicle_class="motorcycle",
        box_xyxy=(215.0, 285.0, 275.0, 390.0),
        details={
            "line_id": "sl1",
            "signal": "red",
            "red_for_s": 1.45,
            "crossed_at_ts": crossed,
            "crossed_frame_index": CROSSED_FRAME,
            "front_crossed_at_ts": crossed,
            "began_at_ts": crossed,
        },
    )
    cap = cv2.VideoCapture(str(clip))
    try:
        for i in range(EVENT_FRAME + 13):
            ok, image = cap.read()
            assert ok
            builder.on_frame(Frame(image, i, i / 6.0, "cam-a1"))
            if i == EVENT_FRAME + 6:
                builder.add_event(event, signal={"state": "red", "red_for_s": 1.45})
    finally:
        cap.release()
    (result,) = builder.close()
    assert result.status == "written", result.error
    folder = result.path
    data = (folder / MANIFEST_NAME).read_bytes()
    manifest = parse_manifest(data)
    files = {f["name"]: (folder / f["name"]).read_bytes() for f in manifest["files"]}
    return Package(manifest, data, (folder / SIGNATURE_NAME).read_text().strip(), files)


def test_the_stored_time_is_the_crossing(
    client: TestClient, world: World, session: Session, auth: Auth, hanoi_clip: Path, tmp_path: Path
) -> None:
    origin = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    pkg = builder_package(world, hanoi_clip, tmp_path, origin.timestamp())
    r = post(client, pkg, world.devices["dev-a"].key)
    assert r.status_code == 201, r.text

    v = session.scalars(select(Violation)).one()
    crossing = origin + timedelta(seconds=round(21.6 / 6.0, 3))
    assert v.occurred_at == crossing  # not origin + 5.0 s, where the rule established it
    assert v.details["timing"]["occurred_at"] == "stop_line_crossing"
    assert [s["frame_index"] for s in v.details["timing"]["stills"]] == [21, 22, 30]

    body: dict[str, Any] = client.get(f"/api/v1/violations/{v.id}", headers=auth("sup")).json()
    assert datetime.fromisoformat(body["occurred_at"]) == crossing
    assert body["details"]["timing"] == v.details["timing"]
