"""`phatnguoi edge --config EDGE.yaml`: the long-running worker of an intersection box.

One process for one or more cameras. Each camera has a reader thread (its `streams` source) feeding a
small queue. The main loop takes the next frame of every camera that has one, runs the shared
detector once over the frames that need detection (one batched call; cameras with different input
shapes get one call per shape), and then runs each camera's `EdgePipeline` (track, signal, rules,
plates, evidence). Finished evidence packages and closed flow intervals go to the durable
`Outbox`; the `Uploader` sends them to the server. `/metrics` and `/healthz` tell the operator how it
is doing. SIGTERM finishes evidence in flight, queues it, lets the uploader flush, then exits.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detector.config import DetectorConfig, TrackerConfig
from phatnguoi.config import CameraConfig, ConfigError, load_yaml_model
from phatnguoi.flows import FlowConfig
from phatnguoi.outbox import OutboxConfig
from phatnguoi.uploader import UploaderConfig
from streams.clock import frame_clock
from streams.frame import Frame
from violations.evidence import EvidenceConfig

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

logger = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per upload otherwise

DEVICE_KEY_ENV = "PHATNGUOI_DEVICE_KEY"
#: A live camera silent this long (or 5 frame periods, if longer) has had a gap, reported to the operator.
GAP_MIN_S = 1.0


class DeviceSection(BaseModel):
    """Who this box is: its id on the server and its signing key pair."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Device id.")
    private_key: Path = Field(description="Ed25519 private key (PEM) that signs evidence.")
    public_key: Path = Field(description="The matching public key (PEM), to check packages before queuing.")


class EdgeCameraSection(BaseModel):
    """One camera of the box."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Camera id.")
    source: str = Field(min_length=1, description="rtsp://, http(s):// URL, file path or device index.")
    scene: Path = Field(description="Scene file of this camera (stop lines, lights, lanes, zones).")
    roi: tuple[int, int, int, int] | None = Field(None, description="Detection region x1, y1, x2, y2.")
    every: int = Field(1, ge=1, le=10, description="Detect on every k-th frame of this camera.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    read_plates: bool = Field(True, description="Read the plates of violating vehicles.")
    start_time: str | None = Field(None, description="For a file: wall-clock time of its first frame (ISO).")


class MetricsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address of /metrics and /healthz.")
    port: int = Field(9108, ge=0, le=65535, description="Port (0: any free port).")


class EdgeConfig(BaseModel):
    """The whole edge configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: DeviceSection
    data_dir: Path = Field(description="Outbox database and evidence packages live here.")
    detector: DetectorConfig = Field(
        default_factory=DetectorConfig,
        description="The detector shared by every camera (roi and every per camera).",
    )
    cameras: tuple[EdgeCameraSection, ...] = Field(min_length=1, description="The cameras of this box.")
    upload: UploaderConfig | None = Field(
        None, description="The server; None keeps evidence on the box only."
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    flows: FlowConfig = Field(default_factory=FlowConfig)
    metrics: MetricsSection = Field(default_factory=MetricsSection)

    @model_validator(mode="after")
    def _unique_cameras(self) -> EdgeConfig:
        ids = [c.id for c in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError(f"camera ids must be unique, got {ids}")
        return self


def load_edge_config(path: Path) -> EdgeConfig:
    """Load an edge config; relative paths in it are relative to the file. Raises `ConfigError`."""
    cfg = load_yaml_model(path, EdgeConfig)
    base = path.resolve().parent

    def rel(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    device = cfg.device.model_copy(
        update={"private_key": rel(cfg.device.private_key), "public_key": rel(cfg.device.public_key)}
    )
    cameras = tuple(
        c.model_copy(
            update={
                "scene": rel(c.scene),
                "source": str(rel(Path(c.source)))
                if _is_path(c.source) and (base / c.source).exists()
                else c.source,
            }
        )
        for c in cfg.cameras
    )
    return cfg.model_copy(update={"device": device, "cameras": cameras, "data_dir": rel(cfg.data_dir)})


def _is_path(source: str) -> bool:
    return "://" not in source and not source.isdigit()


@dataclass(slots=True)
class _Camera:
    config: EdgeCameraSection
    pipeline: Any  # EdgePipeline
    source: Any  # VideoSource
    flows: Any  # FlowCounter
    frames: queue.Queue[Frame | None]
    thread: threading.Thread | None = None
    ended: bool = False
    processed: int = 0
    events: int = 0
    plates_read: int = 0
    last_frame_at: float | None = None  # read time (frame clock, epoch s) of the last frame
    gaps: int = 0
    last_gap: dict[str, float] | None = None  # start/end (wall clock) and length of the last gap
    started: float = field(default_factory=time.monotonic)
    frames_read: int = 0  # the source's frames_read at the last metrics update
    fps_marks: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic time, processed)
    stall_flushed: bool = False  # the evidence pending when the camera went silent was built


OUTBOX_METRICS_EVERY_S = 2.0  # how often the outbox gauges are refreshed from its database
FPS_WINDOW_S = 10.0  # the processed frame rate on /metrics is measured over this window
QUEUE_RETRY_S = 5.0  # packages the outbox could not take (disk full) are offered again this often
TICK_WAIT_S = 0.05  # with no frame from any camera, a tick waits this long for one, polling
IDLE_METRICS_EVERY_S = 0.5  # the stream gauges are refreshed this often while no camera has frames
STARTUP_GRACE_S = 30.0  # a camera still connecting for the first time is healthy this long after start


class EdgeWorker:
    """All cameras of one box. `run()` blocks until `stop()` (or every file source has ended)."""

    def __init__(self, config: EdgeConfig, device_key: str | None = None) -> None:
        from detector.yolo_onnx import YoloOnnxDetector
        from phatnguoi.detect import DetectJob
        from phatnguoi.flows import FlowCounter
        from phatnguoi.metrics import EdgeMetrics
        from phatnguoi.outbox import Outbox
        from phatnguoi.pipeline import EdgePipeline
        from phatnguoi.uploader import Uploader
        from streams import open_source
        from violations.manifest import EvidenceError, load_private_key, load_public_key
        from violations.scene import load_scene

        self.config = config
        self.metrics = EdgeMetrics()
        self._stop = threading.Event()
        self._stopper: threading.Thread | None = None
        # the keys first: a box set up without them stops here, before it creates anything
        private_key = load_private_key(config.device.private_key)
        try:
            public_key = load_public_key(config.device.public_key)
        except OSError as e:
            private, public = config.device.private_key, config.device.public_key
            raise EvidenceError(
                f"cannot read public key {public}: {e.strerror or e}; it is made with the private key by "
                f"`phatnguoi keys generate --private {private} --public {public}`"
            ) from None
        _check_key_pair(private_key, public_key, config.device)
        data = config.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create data_dir {data}: {e.strerror or e}") from None
        self.outbox = Outbox(data / "outbox.sqlite", public_key, evidence_root=data, config=config.outbox)
        self.uploader: Uploader | None = None
        if config.upload is not None:
            key = device_key or os.environ.get(DEVICE_KEY_ENV, "")
            if not key:
                raise ConfigError(f"uploading needs the device's API key in ${DEVICE_KEY_ENV}")
            self.uploader = Uploader(self.outbox, key, config.upload, key_file=config.device.public_key)
        self.detector = YoloOnnxDetector(config.detector)
        self.cameras: list[_Camera] = []
        for cam in config.cameras:
            scene = load_scene(cam.scene)
            if scene.camera_id != cam.id:
                raise ConfigError(f"camera {cam.id}: its scene {cam.scene} is for camera {scene.camera_id}")
            camera_cfg = CameraConfig(
                id=cam.id,
                source=cam.source,
                tracker=cam.tracker,
                detector=config.detector.model_copy(update={"roi": cam.roi, "every": cam.every}),
            )
            source = open_source(cam.source, camera_id=cam.id)
            origin = _origin(cam.start_time) if source.frame_count else 0.0
            job = DetectJob(
                camera_cfg, detector=self.detector, frame_rate=source.fps or 25.0, keep_finished=False
            )
            pipeline = EdgePipeline(
                camera_cfg,
                scene,
                data / cam.id,
                config.device.id,
                private_key,
                frame_rate=source.fps or 25.0,
                read_plates=cam.read_plates,
                ts_origin=origin,
                evidence=config.evidence,
                job=job,
            )
            flows = FlowCounter(
                cam.id,
                scene,
                class_names=self.detector.class_names,
                config=config.flows,
                ts_origin=origin,
                resume_after=self.outbox.flows_until(cam.id),
            )
            self.cameras.append(_Camera(cam, pipeline, source, flows, queue.Queue(maxsize=4)))
        self._closed = False
        self._unqueued: list[Path] = []  # packages the outbox could not take yet (disk full): retried
        self._queue_retry_at = 0.0  # monotonic time of the next retry while _unqueued is not empty
        self._flows_retry_at: float | None = None  # likewise for _unsent_flows after a failure
        self._unsent_flows: list[Any] = []
        self._last_outbox: dict[str, Any] = {}
        self._metrics_at = 0.0  # monotonic time of the last stream-gauge refresh
        self._adopt_due = True
        self._adopt()

    def _adopt(self) -> None:
        """Queue the packages written before a crash or restart but never queued. On a full disk the
        outbox may not take them yet: the worker starts anyway (uploading is what frees the disk) and
        tries again every few seconds."""
        from phatnguoi.outbox import OutboxError

        try:
            for result in self.outbox.adopt():
                logger.info("adopted evidence package %s (%s)", result.event_id, result.status)
        except OutboxError as e:
            logger.error("cannot adopt the packages left by the last run yet: %s", e)
            return
        self._adopt_due = False

    # -- life cycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to finish (safe from a signal handler).

        The sources are closed (which wakes one waiting for its camera) on a helper thread: a signal
        handler runs on the main thread, which may hold a source's lock at that moment (`health`)."""
        self._stop.set()

        def close_sources() -> None:
            for cam in self.cameras:
                cam.source.close()

        self._stopper = threading.Thread(target=close_sources, name="stop-sources", daemon=True)
        self._stopper.start()

    def _reader(self, cam: _Camera) -> None:
        try:
            for frame in cam.source:
                while not self._stop.is_set():
                    try:
                        cam.frames.put(frame, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    break
        finally:
            cam.frames.put(None)

    def run(self, until_sent: bool = False, deadline_s: float | None = None) -> None:
        """Process every camera until stopped or until every (file) source ended.

        Args:
            until_sent: after the sources end, wait until the outbox has sent everything.
            deadline_s: stop after this many seconds whatever happens (tests, demo).
        """
        t_end = time.monotonic() + deadline_s if deadline_s is not None else None
        if self.uploader is not None:
            self.uploader.start()
        for cam in self.cameras:
            cam.thread = threading.Thread(
                target=self._reader, args=(cam,), name=f"read-{cam.config.id}", daemon=True
            )
            cam.thread.start()
        next_outbox_metrics = 0.0
        try:
            try:
                while not self._stop.is_set() and not all(c.ended for c in self.cameras):
                    if t_end is not None and time.monotonic() > t_end:
                        break
                    self._tick()
                    if time.monotonic() >= next_outbox_metrics:
                        if self._adopt_due:
                            self._adopt()
                        self._update_outbox_metrics()
                        next_outbox_metrics = time.monotonic() + OUTBOX_METRICS_EVERY_S
            except BaseException:
                # A failing stage (the detector, say) ends the run: the events already established
                # still get their evidence, written and queued, before the worker goes down.
                try:
                    self._finish()
                except Exception:
                    logger.exception("could not finish the pending evidence")
                raise
            self._finish()
            while (
                until_sent
                and self.uploader is not None
                and not self._stop.is_set()
                and (t_end is None or time.monotonic() < t_end)
                and self.outbox.stats().evidence.get("queued", 0)
                + self.outbox.stats().evidence.get("sending", 0)
            ):
                time.sleep(0.2)
                self._update_outbox_metrics()
        finally:
            self.close()

    def _collect(self) -> list[tuple[_Camera, Frame]]:
        """The next frame of every camera that has one. Nobody waits on a silent camera while another
        has frames (waiting on each queue in turn, a dead camera listed first cost every tick 50 ms);
        with no frame anywhere, it polls all queues for up to TICK_WAIT_S."""
        deadline = time.monotonic() + TICK_WAIT_S
        while True:
            batch: list[tuple[_Camera, Frame]] = []
            for cam in self.cameras:
                if cam.ended:
                    continue
                try:
                    frame = cam.frames.get_nowait()
                except queue.Empty:
                    continue
                if frame is None:
                    cam.ended = True
                    continue
                batch.append((cam, frame))
            if batch or time.monotonic() >= deadline or all(c.ended for c in self.cameras):
                return batch
            time.sleep(0.002)

    def _tick(self) -> None:
        batch = self._collect()
        with_frame = {id(cam) for cam, _ in batch}
        for cam in self.cameras:
            if not cam.ended and id(cam) not in with_frame:
                self._flush_if_stalled(cam)
        if not batch:
            if time.monotonic() - self._metrics_at >= IDLE_METRICS_EVERY_S:
                self._update_metrics()  # a dead camera must show on /metrics, not its last fps
            return
        need = [(cam, f) for cam, f in batch if cam.pipeline.job.wants_detection()]
        detections: dict[str, Any] = {}
        if need:
            t0 = time.perf_counter()
            found = self.detector.detect_batch(
                [f.image for _, f in need], [cam.config.roi for cam, _ in need]
            )
            self.metrics.detector_ms.observe((time.perf_counter() - t0) * 1000)
            detections = {cam.config.id: d for (cam, _), d in zip(need, found, strict=True)}
        for cam, frame in batch:
            steps = cam.pipeline.clock_steps
            events = cam.pipeline.step(frame, detections.get(cam.config.id))
            stepped = cam.pipeline.clock_steps != steps  # the frame clock was set: see EdgePipeline
            self._note_gap(cam, frame.ts, stepped=stepped)
            cam.processed += 1
            read = cam.pipeline.plates_read
            if read > cam.plates_read:
                self.metrics.plates_read.labels(cam.config.id).inc(read - cam.plates_read)
                cam.plates_read = read
            for e in events:
                self.metrics.events.labels(cam.config.id, e.rule).inc()
            cam.events += len(events)
            self.metrics.frames_out.labels(cam.config.id).inc()
            cam.flows.add_tracks(cam.pipeline.job.pop_finished())
            cam.flows.add_crossings(cam.pipeline.pop_crossings())
            if stepped:  # the tracks just counted ended at the step, dated by the old clock
                cam.flows.clock_stepped(frame.ts)
            self._unsent_flows += cam.flows.close_intervals(frame.ts)
            self._queue_built(cam)
        self._queue_flows()
        self._update_metrics()

    def _flush_if_stalled(self, cam: _Camera) -> None:
        """A live camera silent for longer than the evidence's `post_s`: the packages waiting for its
        next frames are built with the frames they have and queued now, not held in memory for the
        length of the outage (a power cut during it would lose them)."""
        if cam.stall_flushed or cam.last_frame_at is None or cam.source.frame_count:
            return
        if frame_clock() - cam.last_frame_at < self.config.evidence.post_s + 1.0:
            return
        cam.stall_flushed = True
        if cam.pipeline.evidence_pending:
            logger.warning(
                "camera %s: silent for more than %.0f s; building its pending evidence now",
                cam.config.id,
                self.config.evidence.post_s + 1.0,
            )
            cam.pipeline.flush_evidence()
            self._queue_built(cam)

    def _note_gap(self, cam: _Camera, ts: float, *, stepped: bool = False) -> None:
        """Report an interruption of a live camera's frames (by their wall-clock read times): the time
        without frames is when nothing was enforced, which the operator and a reviewer must see. Across
        a step of the clock (`stepped`, logged by the pipeline) read times differ by the step, not by a
        gap: none is reported."""
        last, cam.last_frame_at = cam.last_frame_at, ts
        cam.stall_flushed = False
        if last is None or stepped or cam.source.frame_count:  # files are read at our pace: no gaps
            return
        gap = ts - last
        if gap < max(GAP_MIN_S, 5.0 / (cam.source.fps or 25.0)):
            return
        cam.gaps += 1
        cam.last_gap = {"from": round(last, 3), "to": round(ts, 3), "seconds": round(gap, 2)}
        self.metrics.gaps.labels(cam.config.id).inc()
        self.metrics.gap_seconds.labels(cam.config.id).inc(gap)
        logger.warning("camera %s: no frames for %.1f s; frames resumed", cam.config.id, gap)

    def _queue_built(self, cam: _Camera, *, force: bool = False) -> None:
        from phatnguoi.outbox import OutboxError

        built, cam.pipeline.built = cam.pipeline.built, []
        for b in built:
            if b.status == "failed":
                why = f"evidence of {b.event_id} could not be written: {b.error}"
                self.outbox.alert("evidence_failed", cam.config.id, why)
        paths = self._unqueued + [b.path for b in built if b.status in ("written", "exists")]
        waiting = bool(self._unqueued)
        if waiting and not force and time.monotonic() < self._queue_retry_at:
            self._unqueued = paths  # not on every frame: each try re-reads and re-checks a package
            return
        self._unqueued = []
        for i, path in enumerate(paths):
            try:
                result = self.outbox.enqueue_package(path)
            except OutboxError as e:
                # The disk is full or the database failed: keep detecting; the package stays on disk
                # and is queued once the outbox can take it (or adopted after a restart).
                if not waiting:
                    logger.error("camera %s: cannot queue %s yet: %s", cam.config.id, path.name, e)
                self._unqueued = paths[i:]
                self._queue_retry_at = time.monotonic() + QUEUE_RETRY_S
                return
            if waiting:
                logger.info("camera %s: the outbox takes packages again", cam.config.id)
                waiting = False
            if result.status in ("conflict", "rejected"):
                logger.error("camera %s: package %s not queued: %s", cam.config.id, path.name, result.reason)

    def _queue_flows(self, *, force: bool = False) -> None:
        from phatnguoi.outbox import OutboxError

        if not self._unsent_flows:
            return
        retry_at = self._flows_retry_at
        failing = retry_at is not None
        if retry_at is not None and not force and time.monotonic() < retry_at:
            return  # not on every frame while the outbox cannot take them
        try:
            self.outbox.enqueue_flows(self._unsent_flows)
        except OutboxError as e:
            if not failing:
                logger.error("cannot queue %d flow counts yet: %s", len(self._unsent_flows), e)
            self._flows_retry_at = time.monotonic() + QUEUE_RETRY_S
            if len(self._unsent_flows) > 10_000:  # flows are the first thing to give up
                self._unsent_flows = self._unsent_flows[-10_000:]
            return
        if failing:
            logger.info("the outbox takes flow counts again")
        self._unsent_flows, self._flows_retry_at = [], None

    def _finish(self) -> None:
        for cam in self.cameras:
            cam.pipeline.close()
            self._queue_built(cam, force=True)
            cam.flows.add_tracks([*cam.pipeline.job.pop_finished(), *cam.pipeline.job.store])
            cam.flows.add_crossings(cam.pipeline.pop_crossings())
            self._unsent_flows += cam.flows.flush()
        self._queue_flows(force=True)

    def close(self) -> None:
        """Stop sources and the uploader (which flushes within its deadline), close the outbox."""
        if self._stopper is not None:
            self._stopper.join(timeout=10)
        for cam in self.cameras:
            cam.source.close()
        if self.uploader is not None:
            self.uploader.stop()
        self._update_outbox_metrics()
        self._closed = True
        self.outbox.close()

    # -- health ---------------------------------------------------------------------------------------

    def _update_metrics(self) -> None:
        self._metrics_at = time.monotonic()
        for cam in self.cameras:
            h = cam.source.health()
            cid = cam.config.id
            self.metrics.frames_dropped.labels(cid).set(h.frames_dropped)
            if h.frames_read > cam.frames_read:
                self.metrics.frames_in.labels(cid).inc(h.frames_read - cam.frames_read)
                cam.frames_read = h.frames_read
            self.metrics.reconnects.labels(cid).set(h.reconnects)
            self.metrics.fps_in.labels(cid).set(h.fps_in or 0.0)
            self.metrics.stream_up.labels(cid).set(1.0 if str(h.state) == "live" else 0.0)
            self.metrics.ocr_queue.labels(cid).set(cam.pipeline.plates_pending)
            # frames processed per second over the last FPS_WINDOW_S (a lifetime average would hide a stall)
            now = time.monotonic()
            cam.fps_marks.append((now, cam.processed))
            while len(cam.fps_marks) > 2 and now - cam.fps_marks[1][0] >= FPS_WINDOW_S:
                cam.fps_marks.popleft()
            t0, n0 = cam.fps_marks[0]
            self.metrics.fps_out.labels(cid).set((cam.processed - n0) / (now - t0) if now > t0 else 0.0)

    def _update_outbox_metrics(self) -> None:
        try:
            stats = self.outbox.stats()
        except Exception:  # noqa: BLE001 - metrics must never take the worker down
            return
        self._last_outbox = {"evidence": stats.evidence, "flows": stats.flows, "disk_full": stats.disk_full}
        self.metrics.outbox_depth.labels("evidence").set(
            stats.evidence.get("queued", 0) + stats.evidence.get("sending", 0)
        )
        self.metrics.outbox_depth.labels("flow").set(
            stats.flows.get("queued", 0) + stats.flows.get("sending", 0)
        )
        self.metrics.outbox_age.labels("evidence").set(stats.oldest_evidence_age_s or 0.0)
        self.metrics.outbox_age.labels("flow").set(stats.oldest_flow_age_s or 0.0)
        self.metrics.alerts.set(sum(self.outbox.alert_counts.values()))
        if self.uploader is not None:
            up = self.uploader.stats()
            self.metrics.uploaded.set(up.evidence_sent + up.evidence_duplicates + up.flows_sent)
            self.metrics.upload_errors.set(sum(up.errors.values()))

    def health(self) -> dict[str, Any]:
        """JSON health for /healthz: ok when every camera is live (or a file that ended; or connecting
        for the first time, within STARTUP_GRACE_S of the start), the disk is not full, the server
        has not refused the device's API key, holds this box's public key (``uploader.key``), and no
        item is held for a configuration reason (``outbox.held``, ``outbox.held_reason``)."""
        cams = {}
        ok = True
        for cam in self.cameras:
            h = cam.source.health()
            state = str(h.state)
            first_connect = (
                state == "connecting"
                and h.last_frame_age_s is None
                and time.monotonic() - cam.started < STARTUP_GRACE_S
            )
            cams[cam.config.id] = {
                "state": state,
                "last_frame_age_s": None if h.last_frame_age_s is None else round(h.last_frame_age_s, 1),
                "frames_processed": cam.processed,
                "violations": cam.events,
                "dropped": h.frames_dropped,
                "reconnects": h.reconnects,
                "gaps": cam.gaps,
                "last_gap": cam.last_gap,
                "last_error": h.last_error,
            }
            ok &= state in ("live", "ended") or first_connect
        if self._closed:
            outbox = dict(self._last_outbox)
        else:
            try:
                stats = self.outbox.stats()
                outbox = {
                    "evidence": stats.evidence,
                    "flows": stats.flows,
                    "disk_full": stats.disk_full,
                    "storage_error": getattr(stats, "storage_error", None),
                    "waiting_to_queue": len(self._unqueued),
                    "held": stats.held,
                    "held_reason": stats.held_reason,
                }
                self._last_outbox = dict(outbox)
                # held: the server refuses them for how the box or the device is set up; a person must act
                ok &= not stats.disk_full and not outbox["storage_error"] and not stats.held
            except Exception as e:  # noqa: BLE001 - health must answer even when the outbox cannot
                outbox = {"error": str(e)}
                ok = False
        uploader: dict[str, Any] | None = None
        if self.uploader is not None:
            up = self.uploader.stats()
            uploader = {
                "last_success_at": up.last_success_at,
                "consecutive_failures": up.consecutive_failures,
                "last_cause": up.last_cause,
                "last_error": up.last_error,
                "key": up.key,
                "key_problem": up.key_problem,
            }
            ok &= not (up.consecutive_failures and up.last_cause == "auth")  # a person must act
            ok &= up.key != "mismatch"  # the server holds another public key: no evidence goes
        return {
            "ok": ok,
            "device": self.config.device.id,
            "cameras": cams,
            "outbox": outbox,
            "uploader": uploader,
        }


def _check_key_pair(
    private_key: Ed25519PrivateKey, public_key: Ed25519PublicKey, device: DeviceSection
) -> None:
    """The configured public key must be the private key's own half: the outbox checks every package
    with it (another key refuses them all as corrupt) and the server must hold it.

    Raises:
        ConfigError: another key, in one line naming both files.
    """
    from violations.manifest import public_key_fingerprint

    if public_key_fingerprint(private_key) != public_key_fingerprint(public_key):
        raise ConfigError(
            f"device.public_key {device.public_key} is not the public half of device.private_key "
            f"{device.private_key} (sha256 {public_key_fingerprint(public_key)[:16]}… instead of "
            f"{public_key_fingerprint(private_key)[:16]}…): point public_key at the .pub made with this "
            "private key by `phatnguoi keys generate`"
        )


def _origin(start_time: str | None) -> float:
    if not start_time:
        return time.time()
    from datetime import datetime

    try:
        return datetime.fromisoformat(start_time.replace("Z", "+00:00")).timestamp()
    except ValueError as e:
        raise ConfigError(f"start_time must be ISO 8601, got {start_time!r}") from e
