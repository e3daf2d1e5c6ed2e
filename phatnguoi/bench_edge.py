"""`phatnguoi bench edge`: one edge process with 1, 2 and 4 cameras, uploading to a real server.

Each camera replays the same recorded clip as fast as the worker can go (files are not paced), so
the measured fps per camera is the worker's capacity; a camera is "real time" when that capacity is at
least the camera's own frame rate. Measured in one run, for each camera count:

- fps per camera (frames processed / wall time) and whether that is real time for the clip's fps;
- CPU (user + system seconds / wall seconds, in cores) and the process's peak resident memory;
- latency from the moment the rules establish a violation to the moment the server has stored it
  (p50/p95). It includes waiting for the clip's post-event seconds: at file speed those frames arrive
  fast, on a live camera the package completes `post_s` (3 s) after the event.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _scene_copy(scene_file: Path, camera_id: str, folder: Path) -> Path:
    import yaml

    data = yaml.safe_load(scene_file.read_text(encoding="utf-8"))
    data["camera_id"] = camera_id
    out = folder / f"{camera_id}.yaml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return out


def bench_edge(
    source: Path,
    scene_file: Path,
    camera_file: Path,
    counts: tuple[int, ...] = (1, 2, 4),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the worker with each camera count; see the module docstring."""
    from datetime import UTC

    from sqlalchemy import select

    from api.admin import add_camera, add_device, upgrade_db
    from api.app import create_app
    from api.db import make_engine
    from api.models import Violation
    from api.settings import load_settings
    from phatnguoi.config import load_camera
    from phatnguoi.demo import BackgroundServer, free_port
    from phatnguoi.edge import DeviceSection, EdgeCameraSection, EdgeConfig, EdgeWorker
    from phatnguoi.uploader import UploaderConfig
    from streams import open_source
    from violations.manifest import generate_keypair

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    probe = open_source(str(source))
    clip_fps, frames_per_camera = probe.fps or 25.0, probe.frame_count or 0
    probe.close()
    detector = load_camera(camera_file).detector
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="phatnguoi-bench-edge-") as tmp_name:
        tmp = Path(tmp_name)
        for n in counts:
            say(f"{n} camera(s)")
            run_dir = tmp / f"n{n}"
            run_dir.mkdir()
            settings = load_settings(
                database_url=f"sqlite:///{run_dir / 'server.sqlite'}",
                evidence_dir=str(run_dir / "server-evidence"),
                jwt_secret="bench-" + "x" * 40 + str(n),
            )
            upgrade_db(settings)
            ids = [f"bench-cam-{i}" for i in range(n)]
            for cid in ids:
                add_camera(settings, cid)
            generate_keypair(run_dir / "k.pem", run_dir / "k.pub")
            key = add_device(settings, "edge-bench", ids, (run_dir / "k.pub").read_bytes())
            server = BackgroundServer(create_app(settings), "127.0.0.1", free_port()).start()
            try:
                config = EdgeConfig(
                    device=DeviceSection(
                        id="edge-bench", private_key=run_dir / "k.pem", public_key=run_dir / "k.pub"
                    ),
                    data_dir=run_dir / "edge",
                    detector=detector.model_copy(update={"roi": None, "every": 1}),
                    cameras=tuple(
                        EdgeCameraSection(
                            id=cid,
                            source=str(source),
                            scene=_scene_copy(scene_file, cid, run_dir),
                            roi=detector.roi,
                            every=detector.every,
                            read_plates=True,
                        )
                        for cid in ids
                    ),
                    upload=UploaderConfig(server_url=server.url, backoff_initial_s=0.2, backoff_max_s=2.0),
                )
                worker = EdgeWorker(config, device_key=key)
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.perf_counter()
                worker.run(until_sent=True, deadline_s=900)
                wall = time.perf_counter() - t0
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                established = {
                    eid: ts for cam in worker.cameras for eid, ts in cam.pipeline.established_at.items()
                }
                engine = make_engine(settings.database_url)
                with engine.connect() as conn:
                    rows = conn.execute(select(Violation.event_id, Violation.received_at)).all()
                engine.dispose()
                latencies = [
                    (received.replace(tzinfo=UTC) if received.tzinfo is None else received).timestamp()
                    - established[eid]
                    for eid, received in rows
                    if eid in established
                ]
                processed = [cam.processed for cam in worker.cameras]
            finally:
                server.stop()
            fps = [p / wall for p in processed]
            results.append(
                {
                    "cameras": n,
                    "frames_per_camera": processed,
                    "wall_s": round(wall, 2),
                    "fps_per_camera": round(min(fps), 2),
                    "real_time": min(fps) >= clip_fps,
                    "cpu_cores_used": round(
                        ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) / wall, 2
                    ),
                    "peak_rss_mb": round(r1.ru_maxrss / 1024, 1),
                    "violations": len(established),
                    "stored_on_server": len(rows),
                    "latency_s": {
                        "p50": round(statistics.median(latencies), 2) if latencies else None,
                        "p95": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 2)
                        if latencies
                        else None,
                    },
                }
            )
    return {
        "source": str(source),
        "clip_fps": clip_fps,
        "clip_frames": frames_per_camera,
        "note": "files replay unpaced: fps_per_camera is capacity; real_time = capacity >= clip fps",
        "runs": results,
    }
