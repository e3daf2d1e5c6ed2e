"""The edge pipeline for one camera: detect → track → signal → rules → plates → evidence.

`EdgePipeline.step(frame)` runs every stage on one frame and returns the violations it established.
Plates are read only for vehicles with a violation: a few of the track's best frames (from the evidence
ring buffer), fused by vote, on a separate plate thread so OCR never stalls detection; the event's
evidence package starts when its plate is read (the ring still holds its frames). Evidence packages are
written by the builder's worker thread.

A plate sent to the wrong vehicle fines its neighbour, so a plate is read only where it can only be the
violator's, and is otherwise left unreadable for the officer to read from the evidence:

- only frames up to the event, and back only to the last break in the track's motion (`_motion_breaks`:
  a gap, or a box that is not where the track was heading or changed size at once, as when the tracker
  hands the id from one vehicle to another); readings are never fused across a break;
- no frame where another vehicle in front covers the violator's bottom edge (the rules' own test,
  `Batch.occluded`): a half hidden plate reads as someone else's;
- in each frame only the plates `plates.detect.plate_owners` gives to the violator among all the
  vehicles of that frame, and not a text also read on another plate of the frame;
- the frame of the event (the vehicle the rules established the violation on) is read first, and when
  a break lies between the line crossing and the event, a few frames on its other side are read too:
  a reading there that contradicts the fused plate (`_contradicts`) leaves it unreadable, since the
  track may hold two vehicles;
- the plate crop saved is one whose reading is the fused plate (none with an unreadable plate); its
  frame and boxes go into the event's ``details["plate_read"]`` with the frames read.
Every stage is timed so `phatnguoi run` can show that rules and evidence stay a small fraction of the
detector's cost.

A step of the frame clock (the box's clock set by NTP or by hand, which `streams.clock` follows at
once) is handled like a camera that went silent and came back, at the first frame after it: the
red-light events held for the light reader are decided on what was seen before the step, every
event waiting for its plate is read and every pending evidence package is built with the frames it
has (so no package mixes frames from both sides, whose times do not fit together), and the tracker,
the track histories, the light readers and the rules start afresh. One warning names the step. A
step back is frame time going back by more than `RuleEngine.TIME_BACK_S`; a step forward is frame
time running ahead of the time that passed (the monotonic clock between two frames) by more than
`streams.clock.STEP_S`, so a camera that was silent for a while, whose frames really are that far
apart, is not one.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from detector import Detections
from phatnguoi.config import CameraConfig
from phatnguoi.detect import DetectJob
from streams.clock import STEP_S
from streams.frame import Frame
from violations.evidence import BuildResult, EvidenceBuilder, EvidenceConfig, RingEntry
from violations.rules.engine import RuleEngine
from violations.rules.signal_rules import CrossingRecord
from violations.scene import Scene, SceneError, Tolerances
from violations.types import SignalReading, ViolationEvent

if TYPE_CHECKING:
    from plates.anpr import PlateFinding
    from plates.fusion import PlateVote
    from plates.types import PlateReading

logger = logging.getLogger(__name__)

STAGES = ("detect_track", "signal", "rules", "plates", "evidence")
# Per-frame timings kept for the medians: the most recent ones only, so a worker that runs for months
# holds a bounded amount (totals are running sums). Event ids kept for `established_at` likewise.
TIMING_WINDOW = 10_000
LOG_MAX_BYTES = 16 * 1024 * 1024  # events.jsonl and crossings.jsonl each rotate past this
ESTABLISHED_WINDOW = 10_000
#: Frames of the violator read for its plate (the largest boxes of its own segment; reading stops
#: earlier once the vote is confident), and frames read on the other side of a break inside the event.
PLATE_VIEWS = 4
CHECK_VIEWS = 2
#: A track's motion breaks (`_motion_breaks`) where a box's bottom-centre lies further than this share
#: of its height (and `POSITION_STEP_PX`) from where its last `FIT_ROWS` boxes were heading, or where its
#: height changes by more than `SIZE_STEP` times at once. The tracker keeps an id across two vehicles
#: when the second box overlaps the first's prediction (IoU 0.1): a motorbike ahead of the one tracked,
#: 0.27 of a box height from where it was heading, 0.88 of its height. Real tracks break so at 10 % of
#: their boxes on dense traffic (Giang Vo; 5 % on Hai Phong): a break costs the frames before it,
#: never a plate of the wrong vehicle.
POSITION_STEP_RATIO = 0.2
POSITION_STEP_PX = 8.0
SIZE_STEP = 1.3
FIT_ROWS = 4


@dataclass(slots=True)
class RunSummary:
    """What a run did (printed by `phatnguoi run`, written as summary.json)."""

    source: str
    camera_id: str
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    events: int = 0
    stop_line_crossings: int = 0
    events_per_rule: dict[str, int] = field(default_factory=dict)
    plates_read: int = 0
    evidence_written: int = 0
    evidence_failed: int = 0
    stage_ms_median: dict[str, float] = field(default_factory=dict)
    stage_ms_total: dict[str, float] = field(default_factory=dict)
    rules_evidence_share_of_detect_track: float = 0.0
    rules_enabled: list[str] = field(default_factory=list)
    interrupted: bool = False
    outputs: dict[str, str] = field(default_factory=dict)


class JsonLines:
    """An append-only JSON-lines log that a worker running for months keeps within `max_bytes`: past
    it, the file becomes `<name>.1` (replacing the previous one) and a new one starts. The evidence
    packages and the outbox, not these logs, are the record of violations, so a log that cannot be
    written (a full disk) loses lines, counted in `dropped` and logged once a minute, and never stops
    the worker."""

    WARN_EVERY_S = 60.0

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        self._size = path.stat().st_size
        self.dropped = 0
        self._warned_at = -float("inf")

    def _failed(self, doing: str, error: OSError, lines: int) -> None:
        self.dropped += lines
        now = time.monotonic()
        if now - self._warned_at >= self.WARN_EVERY_S:
            self._warned_at = now
            logger.error(
                "%s: cannot %s (%s): lines are lost until it can (%d failed writes so far); evidence is not",
                self.path,
                doing,
                error.strerror or error,
                self.dropped,
            )

    def write(self, line: str) -> None:
        """Append one line (without its newline)."""
        try:
            if self._size >= self.max_bytes:
                self._fh.close()
                self.path.replace(self.path.with_name(self.path.name + ".1"))
                self._fh = self.path.open("a", encoding="utf-8")
                self._size = 0
            data = line + "\n"
            self._fh.write(data)
            self._size += len(data.encode("utf-8"))
        except OSError as e:
            self._failed("write", e, 1)

    def flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as e:
            self._failed("flush", e, 0)

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as e:
            self._failed("close", e, 0)


class EdgePipeline:
    """All stages for one camera. Not thread-safe: one caller feeds frames in order."""

    def __init__(
        self,
        camera: CameraConfig,
        scene: Scene,
        out_dir: Path,
        device_id: str,
        private_key: Any,
        *,
        frame_rate: float,
        read_plates: bool = True,
        ts_origin: float = 0.0,
        evidence: EvidenceConfig | None = None,
        job: DetectJob | None = None,
        async_plates: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`monotonic`: the clock that tells a step of the frame clock from frames that really are
        far apart (see the module docstring)."""
        from violations.signal import LightReader, SignalReader

        self.camera = camera
        self.scene = scene
        self.out_dir = out_dir
        self.job = job or DetectJob(camera, frame_rate=frame_rate)
        self.lights: dict[str, SignalReader] = {}
        for light in scene.lights:
            reader_config = light.reader_config()
            if reader_config is None:
                raise SceneError(
                    f"scene {scene.camera_id}: light '{light.id}' is feed_only, but this edge worker has no "
                    "controller feed to read it from: give the light a roi (read from the camera)"
                )
            camera_reader = LightReader(reader_config)
            self.lights[light.id] = SignalReader(camera_reader, light_id=light.id, camera_id=scene.camera_id)
        self.engine = RuleEngine(scene, class_names=self.job.detector.class_names)
        self.scanner = None
        self._plate_pool: ThreadPoolExecutor | None = None
        # events waiting for their plate, in order: (event, signal, wall-clock ts, future)
        self._plate_queue: deque[tuple[ViolationEvent, dict[str, Any] | None, Future[_PlateResult]]] = deque()
        models: list[dict[str, str]] = []
        detector = self.job.detector
        if hasattr(detector, "model_name") and hasattr(detector, "model_sha256"):
            models.append({"name": str(detector.model_name), "sha256": str(detector.model_sha256)})
        if read_plates:
            from models.registry import default_registry
            from plates.anpr import PlateScanner

            self.scanner = PlateScanner()
            if async_plates:
                self._plate_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plates")
            reg = default_registry()
            models += [
                {"name": n, "sha256": reg.entry(n).sha256}
                for n in ("plate-yolov8n", "ppocrv6-det", "ppocrv6-rec")
            ]
        out_dir.mkdir(parents=True, exist_ok=True)
        location = {"lat": scene.location.lat, "lon": scene.location.lon} if scene.location else None
        self.evidence = EvidenceBuilder(
            device_id,
            private_key,
            out_dir / "evidence",
            scene_version=scene.scene_version,
            models=models,
            location=location,
            district=scene.district,
            ts_origin=ts_origin,
            config=evidence,
        )
        self.evidence.recover()
        self.stage_ms: dict[str, deque[float]] = {s: deque(maxlen=TIMING_WINDOW) for s in STAGES}
        self.stage_total_ms: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.signals: dict[str, SignalReading] = {}
        self.events_per_rule: Counter[str] = Counter()
        self.built: list[BuildResult] = []
        self.plates_read = 0
        self.established_at: dict[str, float] = {}  # event id → wall clock when the rules established it
        self._events_fh = JsonLines(out_dir / "events.jsonl")
        self._crossings_fh = JsonLines(out_dir / "crossings.jsonl")
        self.crossings = 0
        # crossings since `pop_crossings` (flow counts by stop-line crossing); bounded for callers that
        # never drain them (`phatnguoi run`)
        self.new_crossings: deque[CrossingRecord] = deque(maxlen=ESTABLISHED_WINDOW)
        self._exit_lines = {line.id for line in scene.stop_lines if line.exits}
        self._last_ts: float | None = None  # time of the last frame stepped
        self._monotonic = monotonic
        self._last_mono: float | None = None  # monotonic time when the last frame was stepped
        self.clock_steps = 0

    def step(self, frame: Frame, detections: Detections | None = None) -> list[ViolationEvent]:
        """Run every stage on one frame (`detections`: from a detector batch over several cameras)."""
        mono = self._monotonic()
        stepped: list[ViolationEvent] = []
        if self._last_ts is not None and self._last_mono is not None:
            advance = frame.ts - self._last_ts
            if advance < -RuleEngine.TIME_BACK_S or advance - (mono - self._last_mono) > STEP_S:
                stepped = self._clock_stepped(frame.ts)
        self._last_mono = mono
        t0 = time.perf_counter()
        tracked, _detected = self.job.step(frame, detections)
        t1 = time.perf_counter()
        self.signals = {lid: reader.update(frame.image, frame.ts) for lid, reader in self.lights.items()}
        t2 = time.perf_counter()
        events = self.engine.update(self.job.store, self.signals, frame.ts)
        self._log_crossings()
        t3 = time.perf_counter()
        self._last_ts = frame.ts
        plate_ms = self._take(events, frame.ts)
        self._start_read(wait=False)
        t4 = time.perf_counter()
        self.built += self.evidence.on_frame(frame, tracked)
        t5 = time.perf_counter()
        timings = {
            "detect_track": (t1 - t0) * 1000,
            "signal": (t2 - t1) * 1000,
            "rules": (t3 - t2) * 1000,
            "plates": plate_ms,
            "evidence": (t5 - t4) * 1000 + ((t4 - t3) * 1000 - plate_ms),
        }
        for stage, ms in timings.items():
            self.stage_ms[stage].append(ms)
            self.stage_total_ms[stage] += ms
        return stepped + events

    def _clock_stepped(self, ts: float) -> list[ViolationEvent]:
        """The frame clock stepped from `_last_ts` to `ts` (see the module docstring): finish what
        belongs to the time before, start the time-keeping stages afresh. Returns the held events,
        decided as of the last frame before the step."""
        assert self._last_ts is not None
        last = self._last_ts
        self.clock_steps += 1
        logger.warning(
            "camera %s: frame time stepped %+.3f s (from %.3f to %.3f; the clock was set): violations "
            "held and evidence pending are finished with what was seen before; tracking and rules start "
            "afresh",
            self.camera.id,
            ts - last,
            last,
            ts,
        )
        events = self.engine.restart()
        self._take(events, last)  # plate views from the tracks and frames before the step
        self._start_read(wait=True)
        self.built += self.evidence.flush()
        self.evidence.ring.clear()
        self.job.restart()
        for reader in self.lights.values():
            if reader.camera is not None:
                reader.camera.reset()
        self._last_ts = None
        return events

    def _take(self, events: list[ViolationEvent], now_ts: float) -> float:
        """Count `events`, start reading their plates and building their evidence; returns the ms
        spent reading plates on this thread (0 with the plate thread)."""
        self.events_per_rule.update(e.rule for e in events)
        plate_ms = 0.0
        for event in events:
            self.established_at[event.event_id] = time.time()
            if len(self.established_at) > ESTABLISHED_WINDOW:
                del self.established_at[next(iter(self.established_at))]
            signal = self._signal_for(event, now_ts)
            views = self._plate_views(event)
            if self._plate_pool is not None:
                self._plate_queue.append((event, signal, self._plate_pool.submit(self._read_views, views)))
                continue
            tp = time.perf_counter()
            result = self._read_views(views)
            plate_ms += (time.perf_counter() - tp) * 1000
            self._start_evidence(event, signal, result)
        return plate_ms

    def _log_crossings(self) -> None:
        """Write the crossings the rules decided to crossings.jsonl and keep them for the flow counter.
        ``movement`` is written only for lines with exits (elsewhere there is none to see)."""
        for crossing in self.engine.pop_crossings():
            self.crossings += 1
            row = asdict(crossing)
            if crossing.line_id not in self._exit_lines:
                del row["movement"]
            self._crossings_fh.write(json.dumps(row))
            self.new_crossings.append(crossing)

    def _decide_held(self) -> None:
        """Decide now what the rules hold back for a moment (the video ended, or went silent): held
        events, and crossings waiting for their vehicle's movement (written with what was seen)."""
        if self._last_ts is None:
            return
        self._take(self.engine.finish(self._last_ts), self._last_ts)
        self._log_crossings()

    def flush_evidence(self) -> None:
        """Build every pending package now, with the frames it has (its camera stopped sending): the
        results join `built` for the caller to queue. Events held by the rules are decided and events
        waiting for their plate are read first."""
        self._decide_held()
        self._start_read(wait=True)
        self.built += self.evidence.flush()

    @property
    def evidence_pending(self) -> int:
        """Violations whose evidence is not built yet (waiting for a plate or for later frames)."""
        return self.engine.held + len(self._plate_queue) + self.evidence.pending_count

    def pop_crossings(self) -> list[CrossingRecord]:
        """The stop-line crossings since the last call (for the flow counter)."""
        out = list(self.new_crossings)
        self.new_crossings.clear()
        return out

    @property
    def plates_pending(self) -> int:
        """Violations waiting for the plate thread (the OCR queue depth)."""
        return len(self._plate_queue)

    def _start_read(self, wait: bool) -> None:
        """Start the evidence of every event whose plate has been read (all of them when `wait`),
        in the order the events were established."""
        while self._plate_queue and (wait or self._plate_queue[0][2].done()):
            event, signal, future = self._plate_queue.popleft()
            try:
                result = future.result()
            except Exception:  # a plate that cannot be read must not lose the violation
                logger.exception("event %s: plate reading failed; evidence without a plate", event.event_id)
                result = _PlateResult(None, None, None)
            self._start_evidence(event, signal, result)

    def _start_evidence(
        self, event: ViolationEvent, signal: dict[str, Any] | None, result: _PlateResult
    ) -> None:
        self.plates_read += int(bool(result.plate and result.plate["valid"]))
        if result.source is not None:  # which frames were read, where the crop comes from
            event = replace(event, details={**event.details, "plate_read": result.source})
        self.evidence.add_event(
            event, plate=result.plate, signal=signal, plate_crop=result.crop, overlay=self._overlay
        )
        self._write_event(event, result.plate)

    def _overlay(self, image: np.ndarray) -> np.ndarray:
        from violations.draw import draw_scene

        return draw_scene(image, self.scene)

    def _signal_for(self, event: ViolationEvent, ts: float) -> dict[str, Any] | None:
        """The light of the event's rule (none for a rule without a light): its state when the vehicle
        crossed the line if the rule says so (red-light, stop-line), else its state now."""
        details = event.details if isinstance(event.details, dict) else {}
        light_id = details.get("light_id")
        if not light_id:
            return None
        if details.get("signal") and "crossed_at_ts" in details:
            return {"state": details["signal"], "red_for_s": details.get("red_for_s")}
        reading = self.signals.get(str(light_id))
        if reading is None:
            return None
        red_for = round(ts - reading.since_ts, 2) if reading.state == "red" else None
        return {"state": reading.state, "red_for_s": red_for}

    def _plate_views(self, event: ViolationEvent) -> _PlateViews:
        """The frames to read the violator's plate on (see the module docstring): its own, and those
        on the other side of a break inside the event. Taken on the frame loop's thread; the images are
        the ring's (never written into)."""
        if self.scanner is None:
            return _PlateViews((), ())
        track = self.job.store.get(event.track_id)
        if track is None:
            return _PlateViews((), ())
        ring = {entry.index: entry for entry in self.evidence.ring}
        if not ring:
            return _PlateViews((), ())
        rows = [
            (idx, t, box)
            for idx, t, box, seen in zip(track.frame_index, track.ts, track.xyxy, track.detected, strict=True)
            if seen and idx <= event.frame_index
        ]
        first = next((k for k, row in enumerate(rows) if row[0] in ring), len(rows))
        rows = rows[max(0, first - FIT_ROWS) :]  # what came before the ring cannot be read anyway
        if not rows:
            return _PlateViews((), ())
        breaks = _motion_breaks([r[1] for r in rows], [r[2] for r in rows], self.scene.tolerances)
        own_from = breaks[-1] if breaks else 0
        check: list[tuple[int, float, tuple[float, float, float, float]]] = []
        crossed = event.details.get("crossed_frame_index") if isinstance(event.details, dict) else None
        if isinstance(crossed, int) and breaks:
            # The vehicle that crossed is the one of the last row behind the line.
            behind = max((k for k, r in enumerate(rows) if r[0] < crossed), default=None)
            if behind is not None and behind < own_from:
                check = rows[max([b for b in breaks if b <= behind], default=0) : own_from]
        return _PlateViews(
            self._views_of(event.track_id, rows[own_from:], ring, PLATE_VIEWS, anchor=True),
            self._views_of(event.track_id, check, ring, CHECK_VIEWS, anchor=False),
        )

    def _views_of(
        self,
        track_id: int,
        rows: Sequence[tuple[int, float, tuple[float, float, float, float]]],
        ring: dict[int, RingEntry],
        limit: int,
        anchor: bool,
    ) -> tuple[_PlateView, ...]:
        """Up to `limit` of these rows as views, largest (closest) box first, leaving out frames not in
        the ring and those where another vehicle in front covers the track's bottom edge. With
        `anchor`, the latest of them (the vehicle as the rules saw it at the event) comes first."""
        views: list[_PlateView] = []
        for idx, _t, box in rows:
            entry = ring.get(idx)
            if entry is None:
                continue
            others = np.zeros((0, 4), np.float32)
            if entry.tracks is not None and entry.tracks.tracker_id is not None:
                others = entry.tracks.xyxy[entry.tracks.tracker_id != track_id]
            xyxy = np.asarray(box, np.float32)
            if not _occluded(xyxy, others):
                views.append(_PlateView(idx, entry.image, xyxy, others))
        if not views:
            return ()
        first = [views.pop()] if anchor else []
        views.sort(key=lambda v: float((v.box[2] - v.box[0]) * (v.box[3] - v.box[1])), reverse=True)
        return tuple([*first, *views][:limit])

    def _read_views(self, views: _PlateViews) -> _PlateResult:
        """Read the violator's plate on its views, fused by vote (runs on the plate thread)."""
        if self.scanner is None or not views.own:
            return _PlateResult(None, None, None)
        reads, vote, scanned = self._read_side(views.own, stop_when_confident=True)
        source: dict[str, Any] = {"frames": scanned}
        if not reads:
            return _PlateResult(None, None, source)
        fused = vote.result()
        conflict: str | None = None
        at_event = reads[0][1].reading if reads[0][2] is views.own[0] else None
        if fused.formatted is not None and at_event is not None and _contradicts(at_event, fused.formatted):
            # The vehicle at the event reads another plate than the rest of its track: the track may
            # hold a vehicle it was handed over from, in a step too small to tell by its motion.
            conflict = "at_event"
        if fused.formatted is not None and conflict is None and views.check:
            before, _, source["frames_before_break"] = self._read_side(views.check, stop_when_confident=False)
            if any(_contradicts(f.reading, fused.formatted) for _q, f, _v in before):
                conflict = "before_break"  # who crossed the line is not sure
        lines = 2 if fused.formatted and " " in fused.formatted else (1 if fused.formatted else 0)
        plate = {
            "text": fused.compact,
            "formatted": fused.formatted,
            "valid": fused.formatted is not None,
            "confidence": fused.confidence,
            "lines": lines or 1,
            "colour": None,
            "raw": " | ".join(fused.raw)[:256],
            "alternatives": [[f, p] for f, p in fused.alternatives],
        }
        if conflict is not None:
            logger.info("plate %s not kept: another plate read on the track (%s)", fused.formatted, conflict)
            # No alternatives either: they may be the other vehicle's plate.
            plate.update(text=None, formatted=None, valid=False, confidence=0.0, alternatives=[])
            source["conflict"] = conflict
            return _PlateResult(plate, None, source)
        chosen = _crop_for(fused.compact, reads)
        if chosen is None:
            return _PlateResult(plate, None, source)
        finding, view = chosen
        plate["colour"] = finding.colour.colour.value
        source.update(
            frame_index=view.index,
            plate_xyxy=[round(float(v), 1) for v in finding.box_xyxy],
            vehicle_xyxy=[round(float(v), 1) for v in view.box],
        )
        return _PlateResult(plate, finding.crop, source)

    def _read_side(
        self, views: Sequence[_PlateView], stop_when_confident: bool
    ) -> tuple[list[tuple[float, PlateFinding, _PlateView]], PlateVote, list[int]]:
        """The reading of each view that has one (quality, finding, view), in view order, their vote,
        and the frames scanned."""
        from plates.errors import PlateError
        from plates.fusion import PlateVote, View, view_quality

        assert self.scanner is not None
        vote = PlateVote()
        reads: list[tuple[float, PlateFinding, _PlateView]] = []
        scanned: list[int] = []
        for view in views:
            scanned.append(view.index)
            try:
                findings = self.scanner.scan_vehicle(view.image, view.box, view.others)
            except PlateError as e:  # one unusable view (a degenerate box): the others still count
                logger.debug("plate view of frame %d skipped: %s", view.index, e)
                continue
            if not findings:
                continue
            texts = {f.reading.compact for f in findings if f.reading.compact is not None}
            if len(texts) > 1:
                logger.debug("frame %d: two plates read on one vehicle (%s): skipped", view.index, texts)
                continue
            f = next((f for f in findings if f.reading.compact is not None), findings[0])
            w, h = f.box_xyxy[2] - f.box_xyxy[0], f.box_xyxy[3] - f.box_xyxy[1]
            quality = view_quality(View(view.index, f.crop, (w, h), f.detector_confidence))
            vote.add(f.reading, weight=quality)
            reads.append((quality, f, view))
            if stop_when_confident and vote.confident:
                break
        return reads, vote, scanned

    def _write_event(self, event: ViolationEvent, plate: dict[str, Any] | None) -> None:
        row = {
            "event_id": event.event_id,
            "rule": event.rule,
            "legal_reference": event.legal_reference,
            "camera_id": event.camera_id,
            "track_id": event.track_id,
            "frame_index": event.frame_index,
            "ts": round(event.ts, 3),
            "vehicle_class": event.vehicle_class,
            "box_xyxy": [round(v, 1) for v in event.box_xyxy],
            "details": dict(event.details),
            "plate": plate,
            "evidence": str(self.out_dir / "evidence" / event.event_id),
        }
        self._events_fh.write(json.dumps(row, ensure_ascii=False, default=str))
        self._events_fh.flush()

    def close(self) -> list[BuildResult]:
        """Finish held events, pending plates and evidence; close files."""
        self._decide_held()
        self._start_read(wait=True)
        if self._plate_pool is not None:
            self._plate_pool.shutdown(wait=True)
        self.built += self.evidence.close()
        self._events_fh.close()
        self._crossings_fh.close()
        return self.built

    def summary(self, source: str, frames: int, seconds: float, interrupted: bool = False) -> RunSummary:
        """The run's numbers."""
        med = {k: round(statistics.median(v), 3) if v else 0.0 for k, v in self.stage_ms.items()}
        tot = {k: round(v, 1) for k, v in self.stage_total_ms.items()}
        share = (tot["rules"] + tot["evidence"]) / tot["detect_track"] if tot["detect_track"] else 0.0
        return RunSummary(
            source=source,
            camera_id=self.scene.camera_id,
            frames=frames,
            seconds=round(seconds, 3),
            fps=round(frames / seconds, 2) if seconds > 0 else 0.0,
            events=sum(self.events_per_rule.values()),
            stop_line_crossings=self.crossings,
            events_per_rule=dict(self.events_per_rule),
            plates_read=self.plates_read,
            evidence_written=sum(1 for b in self.built if b.status in ("written", "exists")),
            evidence_failed=sum(1 for b in self.built if b.status == "failed"),
            stage_ms_median=med,
            stage_ms_total=tot,
            rules_evidence_share_of_detect_track=round(share, 4),
            rules_enabled=list(self.engine.enabled),
            interrupted=interrupted,
            outputs={
                "events": str(self.out_dir / "events.jsonl"),
                "crossings": str(self.out_dir / "crossings.jsonl"),
                "evidence": str(self.out_dir / "evidence"),
            },
        )


@dataclass(frozen=True, slots=True)
class _PlateResult:
    """The manifest's plate object (None when no plate was found), the crop saved with it (None when
    none shows the plate as read) and where it was read (``details["plate_read"]``, None when nothing
    was read)."""

    plate: dict[str, Any] | None
    crop: np.ndarray | None
    source: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _PlateView:
    """One frame to read the violator's plate on."""

    index: int
    image: np.ndarray  # the ring's frame (never written into)
    box: np.ndarray  # (4,) float32, the violator's box
    others: np.ndarray  # (N, 4) float32, the other vehicles tracked in that frame


@dataclass(frozen=True, slots=True)
class _PlateViews:
    """The violator's own views (its segment of the track up to the event, best first) and those on
    the other side of a break inside the event (read only to check that they do not disagree)."""

    own: tuple[_PlateView, ...]
    check: tuple[_PlateView, ...]


def _occluded(box: np.ndarray, others: np.ndarray, min_cover: float = 0.3) -> bool:
    """Whether a vehicle in front (its box reaches lower in the image) overlaps `box`'s bottom edge over
    at least `min_cover` of its width: the test of `violations.rules.base.Batch.occluded`, by which the
    rules do not establish a violation on such a frame either."""
    x1, _, x2, y2 = (float(v) for v in box)
    if not len(others):
        return False
    overlap = np.minimum(others[:, 2], x2) - np.maximum(others[:, 0], x1)
    cover = (others[:, 3] > y2) & (others[:, 1] < y2 - 1.0) & (overlap >= min_cover * max(x2 - x1, 1.0))
    return bool(cover.any())


def _heading(ts: Sequence[float], xs: Sequence[float], ys: Sequence[float], t: float) -> tuple[float, float]:
    """Where the least-squares line through (ts, xs) and (ts, ys) is at `t`."""
    n = len(ts)
    tm, xm, ym = sum(ts) / n, sum(xs) / n, sum(ys) / n
    stt = sum((a - tm) ** 2 for a in ts)
    if stt <= 0:
        return xm, ym
    vx = sum((a - tm) * (b - xm) for a, b in zip(ts, xs, strict=True)) / stt
    vy = sum((a - tm) * (b - ym) for a, b in zip(ts, ys, strict=True)) / stt
    return xm + vx * (t - tm), ym + vy * (t - tm)


def _motion_breaks(
    ts: Sequence[float], boxes: Sequence[tuple[float, float, float, float]], tol: Tolerances
) -> list[int]:
    """Where a track's observed boxes (oldest first) stop being one vehicle's motion: the positions
    of the rows that start a new segment.

    A row breaks the track after a gap longer than ``max_gap_s`` (the tracker may have found the id
    again on another vehicle, as `RuleEngine` assumes), when its bottom-centre is further than
    `POSITION_STEP_RATIO` of the box height (at least `POSITION_STEP_PX`) from where the segment's last
    `FIT_ROWS` boxes were heading, or when its height is more than `SIZE_STEP` times theirs (median).
    Right after a break, or at the track's start, the motion is not known: only a step the engine
    calls a jump (``jump_px``, ``jump_height_ratio``) breaks it.
    """
    breaks: list[int] = []
    start = 0
    for j in range(1, len(ts)):
        lo = max(start, j - FIT_ROWS)
        x1, y1, x2, y2 = boxes[j]
        x, y, h = (x1 + x2) * 0.5, y2, y2 - y1
        heights = sorted(boxes[k][3] - boxes[k][1] for k in range(lo, j))
        h_ref = heights[len(heights) // 2]
        size = max(h, h_ref) / max(min(h, h_ref), 1.0)
        if ts[j] - ts[j - 1] > tol.max_gap_s or size > SIZE_STEP:
            broke = True
        elif j - lo == 1:
            px1, _, px2, py2 = boxes[j - 1]
            step = math.hypot(x - (px1 + px2) * 0.5, y - py2)
            broke = step > max(tol.jump_px, tol.jump_height_ratio * max(h, h_ref))
        else:
            rows = range(lo, j)
            ex, ey = _heading(
                [ts[k] for k in rows],
                [(boxes[k][0] + boxes[k][2]) * 0.5 for k in rows],
                [boxes[k][3] for k in rows],
                ts[j],
            )
            broke = math.hypot(x - ex, y - ey) > max(POSITION_STEP_PX, POSITION_STEP_RATIO * max(h, h_ref))
        if broke:
            breaks.append(j)
            start = j
    return breaks


def _contradicts(reading: PlateReading, formatted: str) -> bool:
    """Whether a reading is evidence of another plate than `formatted`: it reads a valid plate (even
    below the reader's threshold) and `formatted` is not one of its alternatives."""
    return reading.valid and all(f != formatted for f, _p in reading.alternatives)


def _crop_for(
    compact: str | None, reads: Sequence[tuple[float, PlateFinding, _PlateView]]
) -> tuple[PlateFinding, _PlateView] | None:
    """The reading whose crop goes into the evidence: of the views that read the fused plate `compact`
    exactly, the best. None for an unreadable plate (the crop of an unread plate may be anything: a
    neighbour's half hidden plate, a sign), or for a per-character vote no view read as a whole: the
    officer reads the stills."""
    ranked = sorted(reads, key=lambda r: r[0], reverse=True)
    return next(((f, v) for _q, f, v in ranked if compact is not None and f.reading.compact == compact), None)


def write_summary(out_dir: Path, summary: RunSummary) -> None:
    """summary.json beside events.jsonl."""
    (out_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2), encoding="utf-8")


def file_start_time(path: Path) -> float:
    """A recording's start as a Unix time, for evidence timestamps of files: the file's mtime minus
    nothing we can know better; callers with the real start pass it explicitly."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).timestamp()
