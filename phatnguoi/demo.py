"""`phatnguoi demo`: the whole chain on one machine with the embedded defaults.

1. a server on SQLite in the output folder (schema migrated, a demo admin with a random password),
2. an edge device registered with a fresh signing key,
3. the edge worker on the sample clip shipped in `examples/sample/` (or the user's source and scene),
   uploading its evidence through the durable outbox,
4. the URL where the violations can be reviewed; the server keeps running until Ctrl-C.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SOURCE = REPO_ROOT / "examples" / "sample" / "hanoi_nguyenxien_khuatduytien.mp4"
SAMPLE_SCENE = REPO_ROOT / "examples" / "scenes" / "sample.yaml"
SAMPLE_CAMERA = REPO_ROOT / "examples" / "cameras" / "sample.yaml"
# the camera's on-screen clock at the first frame (Hanoi time, UTC+7)
SAMPLE_START = "2025-12-05T11:35:31+07:00"


@dataclass(slots=True)
class DemoResult:
    """What the demo did, and where to look."""

    url: str
    username: str
    password: str
    frames: int
    violations: int
    crossings: int
    uploaded: int
    queued: int
    server_violations: int
    out_dir: Path


def slug(text: str) -> str:
    """'Thanh Xuân' → 'thanh-xuan' (server ids are ASCII)."""
    import re
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:64] or "district"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """The server app under uvicorn on a background thread."""

    def __init__(self, app: object, host: str, port: int) -> None:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))  # type: ignore[arg-type]
        self._thread = threading.Thread(target=self._server.run, name="demo-server", daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                from api.errors import ServerError

                raise ServerError(f"the demo server could not listen on {self.url} (is the port in use?)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def run_demo(
    out_dir: Path,
    *,
    source: Path | str | None = None,
    scene_file: Path | None = None,
    camera_file: Path | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[DemoResult, BackgroundServer]:
    """Set up and run the chain; returns the result and the still-running server (stop it yourself)."""
    from api.admin import add_camera, add_device, add_user, upgrade_db
    from api.app import create_app
    from api.settings import load_settings
    from detector.config import DetectorConfig
    from phatnguoi.config import load_camera
    from phatnguoi.edge import DeviceSection, EdgeCameraSection, EdgeConfig, EdgeWorker
    from phatnguoi.uploader import UploaderConfig
    from violations.manifest import generate_keypair
    from violations.scene import load_scene

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    scene_path = scene_file or SAMPLE_SCENE
    scene = load_scene(scene_path)
    src = str(source) if source is not None else str(SAMPLE_SOURCE)

    say("server: SQLite database, schema, demo admin")
    secret_file = out_dir / "jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(48))
        secret_file.chmod(0o600)
    settings = load_settings(
        database_url=f"sqlite:///{out_dir / 'server.sqlite'}",
        evidence_dir=str(out_dir / "server-evidence"),
        jwt_secret=secret_file.read_text().strip(),
    )
    upgrade_db(settings)
    password = secrets.token_urlsafe(9)
    username = f"demo-{secrets.token_hex(2)}"
    add_user(settings, username, password, "admin")
    district = slug(scene.district) if scene.district else None
    if district and scene.district:
        from api.admin import add_district

        add_district(settings, district, scene.district)
    location = scene.location
    add_camera(
        settings,
        scene.camera_id,
        name=scene.name or None,
        district=district,
        lat=location.lat if location else None,
        lon=location.lon if location else None,
    )

    say("edge device: signing key and API key")
    device_id = f"edge-demo-{secrets.token_hex(2)}"
    keys = out_dir / "device"
    keys.mkdir(exist_ok=True)
    private, public = keys / f"{device_id}.pem", keys / f"{device_id}.pub"
    generate_keypair(private, public)
    api_key = add_device(settings, device_id, [scene.camera_id], public.read_bytes())

    port = port or free_port(host)
    server = BackgroundServer(create_app(settings), host, port).start()
    say(f"server listening on {server.url}")

    camera_path = camera_file or (SAMPLE_CAMERA if source is None else None)
    camera_detector = load_camera(camera_path).detector if camera_path is not None else None
    config = EdgeConfig(
        device=DeviceSection(id=device_id, private_key=private, public_key=public),
        data_dir=out_dir / "edge",
        detector=(
            camera_detector.model_copy(update={"roi": None, "every": 1})
            if camera_detector
            else DetectorConfig()
        ),
        cameras=(
            EdgeCameraSection(
                id=scene.camera_id,
                source=src,
                scene=scene_path,
                roi=camera_detector.roi if camera_detector else None,
                every=camera_detector.every if camera_detector else 1,
                start_time=SAMPLE_START if source is None else None,
            ),
        ),
        upload=UploaderConfig(server_url=server.url, backoff_initial_s=0.5, backoff_max_s=5.0),
    )
    say("edge worker: detect, track, signal, rules, plates, evidence, outbox, upload")
    worker = EdgeWorker(config, device_key=api_key)
    worker.run(until_sent=True, deadline_s=600)
    cam = worker.cameras[0]
    from phatnguoi.outbox import Outbox  # the worker closed its own; read the final state
    from violations.manifest import load_public_key

    with Outbox(config.data_dir / "outbox.sqlite", load_public_key(public)) as box:
        s = box.stats()
    sent = s.evidence.get("sent", 0)
    queued = s.evidence.get("queued", 0) + s.evidence.get("sending", 0)

    from sqlalchemy import func, select

    from api.db import make_engine
    from api.models import Violation

    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        stored = int(conn.execute(select(func.count()).select_from(Violation)).scalar_one())
    engine.dispose()
    result = DemoResult(
        url=f"{server.url}/map?period=all",  # the demo clip is dated: "today" would show nothing
        username=username,
        password=password,
        frames=cam.processed,
        violations=cam.events,
        crossings=cam.pipeline.crossings,
        uploaded=sent,
        queued=queued,
        server_violations=stored,
        out_dir=out_dir,
    )
    return result, server
