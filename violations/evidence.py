"""Evidence packages on the edge: a ring buffer of recent frames, and the builder that turns a
`ViolationEvent` into a signed package folder (stills, plate crop, clip, manifest, signature).

    builder = EvidenceBuilder("edge-01", load_private_key(key_path), Path("out/evidence"),
                              scene_version=scene_sha256, models=[{"name": "yolov8n", "sha256": ...}])
    builder.recover()                                   # once at start: remove half-written packages
    for frame, tracks in pipeline:
        for result in builder.on_frame(frame, tracks):  # cheap: ring append + bookkeeping
            outbox.add(result.path)                     # packages finished since the last call
        for event in events:
            builder.add_event(event, plate=..., signal=..., plate_crop=..., overlay=scene_drawer)
    builder.close()                                     # end of stream: finish what is pending

How a package comes together:

- Every frame goes into `FrameRing`, which keeps the last ``pre_s + max_lag_s`` seconds.
- `add_event` starts a pending package with the ring's frames from ``event.ts - pre_s`` on (for a
  red-light or stop-line event from ``pre_s`` before the crossing, if that is earlier); the
  package collects the next frames until ``event.ts + post_s``, then it is built (on a worker thread
  by default, so the frame loop only pays for the bookkeeping). `flush` builds the pending ones
  with the frames they have (end of stream: a shorter clip).
- ``occurred_at`` (the time on the notice and the SMS) is when the violation happened, not when the
  rule could establish it (`occurrence`): for red light and stop line, when the vehicle went over
  the stop line (the moment the light is judged, ``red_for_s`` counts from it; 1-3 s before the
  event, which needs the vehicle well past the line and the light reader settled); for the other
  rules the start the rule dates (``details["began_at_ts"]``). ``details["timing"]`` says which
  (``occurred_at``: stop_line_crossing / violation_start / established, ``occurred_ts``), what the
  stills are centred on (``stills_at``) and, per still, its frame and the box drawn (observed,
  predicted or none).
- Stills of a red-light or stop-line event: ``before`` (the frame just before the crossing: the
  vehicle on the approach side, the light as it was), ``at`` (the first frame past the line),
  ``after`` (the event frame: well past the line, or stopped past it). When the ring no longer
  holds the crossing (it was more than ``pre_s + max_lag_s`` back when the event was added: a long
  stop past the line, a slow plate read), and for the other rules:
  ``before`` (``still_offset_s`` before the event, or the earliest frame), ``at`` (the event frame),
  ``after`` (``still_offset_s`` after, or the latest); ``details["timing"]["note"]`` then says the
  crossing could not be shown. Each still has the caller's overlay (scene lines, zone, light
  state), the vehicle box and a caption strip (camera, UTC time, frame index). A box the tracker
  predicted (the detector missed the vehicle in that frame) is drawn dashed and labelled
  "dự đoán"; a frame where the vehicle has no box says "mất dấu" (lost) in its caption.
- Plate crop: enlarged by an integer factor with nearest-neighbour sampling (each camera pixel
  becomes a k x k block: nothing is invented or sharpened), JPEG.
- Clip ``clip.mp4``: from ``pre_s`` before to ``post_s`` after, resampled onto a regular time grid at
  the camera's median frame rate (a frame repeats where the camera dropped frames, so the clip's
  time stays true), vehicle box and caption drawn, no scene overlay (the light state changes during
  the clip; the stills carry it).
- The package is written to ``<out_root>/.tmp-<event_id>/`` (each file fsynced, manifest and
  signature last) and renamed to ``<out_root>/<event_id>/``. A package that already exists is left
  as is, so re-running a video adds nothing; a crash leaves only a ``.tmp-*`` folder that `recover`
  removes.

Clip codec (opencv-python 5.0 wheels, FFmpeg backend): there is no H.264 encoder in the wheel
(``avc1``/``H264``/``X264`` fail to open: the wheels leave out x264/OpenH264 for licence reasons).
Two encoders work in MP4:

- ``mp4v`` (MPEG-4 Part 2): ~1 ms/frame at 640x480, ~3 ms at 1064x720 on one core. Plays in VLC,
  FFmpeg, OpenCV, not in Chromium or Firefox.
- ``vp09`` (VP9 in MP4, libvpx): plays in Chromium, Firefox and Edge, but ~100 ms/frame at 640x480
  and ~220 ms at 1064x720 (libvpx's default speed; OpenCV exposes no encoder option to change it).

The default is ``mp4v`` because a 2-core edge box cannot spend seconds of CPU per violation at a
busy junction; choose ``vp09`` in `EvidenceConfig` where the CPU allows it. The media type is
``video/mp4`` either way.

Measured on this 2-core machine (real-time paced stream, an event every 2 s, worker thread):
``on_frame`` median 0.01-0.04 ms, p99 0.4 ms, max 0.5 ms; one package (3 stills, plate, 6 s clip,
manifest, signature, fsyncs) 62 ms at 640x480/6 fps and 540 ms at 1064x720/30 fps with ``mp4v``,
4.3 s and 33 s with ``vp09``.

Ring memory: frames are kept raw (BGR, no copy: they are the same arrays the detector saw), capped
by ``ring_max_mb``. Measured (tracemalloc, see the tests): 640x480 is 0.92 MB a frame, so 6 fps x
4 s (pre 3 s + lag 1 s) is 25 frames, 23 MB; 1064x720 is 2.3 MB, so 30 fps x 4 s is 121 frames,
278 MB, plus up to 3 s of post-event frames (207 MB) while a package is pending. JPEG-encoding
each frame would cut that ~20x for 1.2-1.5 ms per frame on the frame loop, but would make every
still and clip frame a second-generation JPEG; raw frames give first-generation evidence, and
`ring_max_mb` bounds the worst case (a shorter pre-roll, logged, when the cap is hit).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field

from detector.detections import Detections
from violations import annotate
from violations.manifest import (
    FORMAT,
    MANIFEST_NAME,
    MEDIA_TYPES,
    SIGNATURE_NAME,
    EvidenceError,
    canonical_bytes,
    iso_utc,
    sha256_hex,
    sign,
    validate_manifest,
)
from violations.types import ViolationEvent

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Overlay = Callable[[Image], Image]
TMP_PREFIX = ".tmp-"
_MIB = 1024 * 1024
# Timestamps computed two ways (i / fps, container milliseconds) differ in the last bits: window
# edges get this much slack so a frame exactly on an edge is kept.
_EPS = 1e-6


class FrameLike(Protocol):
    """What the builder needs of a frame; `streams.Frame` fits (violations does not import streams)."""

    @property
    def image(self) -> Image: ...
    @property
    def index(self) -> int: ...
    @property
    def ts(self) -> float: ...


class EvidenceConfig(BaseModel):
    """How evidence packages are cut and encoded (the ``evidence:`` section of an edge config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pre_s: float = Field(3.0, ge=0.0, le=30.0, description="Seconds of video before the event.")
    post_s: float = Field(3.0, ge=0.0, le=30.0, description="Seconds of video after the event.")
    still_offset_s: float = Field(
        1.0, gt=0.0, le=10.0, description="The before/after stills are this far from the event frame."
    )
    jpeg_quality: int = Field(90, ge=50, le=100, description="JPEG quality of the stills.")
    plate_min_height: int = Field(
        96, ge=16, le=512, description="The plate crop is enlarged (integer factor) to at least this height."
    )
    clip: bool = Field(True, description="Write clip.mp4.")
    clip_codec: Literal["mp4v", "vp09"] = Field(
        "mp4v", description="mp4v: cheap, not browser-playable; vp09: browser-playable, ~100x the CPU."
    )
    max_lag_s: float = Field(
        2.0,
        ge=0.0,
        le=30.0,
        description="How late add_event may come after its event frame (ring length): a red-light event "
        "is held for the light reader's settle time (1 s), then waits for its plate.",
    )
    ring_max_mb: float = Field(512.0, gt=0.0, description="Cap on the memory of raw frames in the ring.")
    background: bool = Field(True, description="Build packages on a worker thread (off the frame loop).")
    max_queued: int = Field(
        4, ge=1, le=64, description="Packages waiting for the worker before on_frame blocks (back-pressure)."
    )


@dataclass(frozen=True, slots=True)
class RingEntry:
    """One frame in the ring: the image (not copied), where it is in the stream, and the tracked boxes."""

    image: Image
    index: int
    ts: float
    tracks: Detections | None = None

    def box_of(self, track_id: int) -> tuple[float, float, float, float] | None:
        """The box (x1, y1, x2, y2) of `track_id` in this frame, or None when it is not tracked here."""
        t = self.tracks
        if t is None or t.tracker_id is None:
            return None
        rows = np.flatnonzero(t.tracker_id == track_id)
        if rows.size == 0:
            return None
        x1, y1, x2, y2 = (float(v) for v in t.xyxy[int(rows[0])])
        return x1, y1, x2, y2

    def observed(self, track_id: int) -> bool:
        """Whether the detector saw `track_id` in this frame; False for a box the tracker predicted
        (``tracks.data["observed"]``, see `detector.tracking`) and for a track not here. Tracks
        without that column count as observed."""
        t = self.tracks
        if t is None or t.tracker_id is None:
            return False
        rows = np.flatnonzero(t.tracker_id == track_id)
        if rows.size == 0:
            return False
        seen = t.data.get("observed")
        return True if seen is None else bool(seen[int(rows[0])])


class FrameRing:
    """The last `max_age_s` seconds of frames, bounded by a frame count and a byte budget.

    Appending is O(1) amortised; frames are held by reference (the caller must not write into an
    image after handing it over, as for `streams.Frame`).

    Args:
        max_age_s: frames older than ``newest.ts - max_age_s`` are dropped.
        max_frames: at most this many frames.
        max_bytes: at most this many bytes of image data (the oldest frames go first).

    Raises:
        ValueError: on a negative age or non-positive limits.
    """

    def __init__(self, max_age_s: float, max_frames: int, max_bytes: int) -> None:
        if max_age_s < 0 or max_frames < 1 or max_bytes < 1:
            raise ValueError(
                "need max_age_s >= 0, max_frames >= 1, max_bytes >= 1; "
                f"got {max_age_s}, {max_frames}, {max_bytes}"
            )
        self.max_age_s = float(max_age_s)
        self.max_frames = int(max_frames)
        self.max_bytes = int(max_bytes)
        self._entries: deque[RingEntry] = deque()
        self._nbytes = 0
        self.evicted_for_memory = 0

    def append(self, entry: RingEntry) -> None:
        """Add the newest frame and drop what falls out of the window."""
        self._entries.append(entry)
        self._nbytes += entry.image.nbytes
        horizon = entry.ts - self.max_age_s - _EPS
        entries = self._entries
        while len(entries) > 1 and (
            entries[0].ts < horizon or len(entries) > self.max_frames or self._nbytes > self.max_bytes
        ):
            if entries[0].ts >= horizon:
                self.evicted_for_memory += 1
            self._nbytes -= entries.popleft().image.nbytes

    def since(self, t0: float) -> list[RingEntry]:
        """Entries with ``ts >= t0``, oldest first."""
        return [e for e in self._entries if e.ts >= t0]

    def clear(self) -> None:
        """Drop every frame (a discontinuity in the stream)."""
        self._entries.clear()
        self._nbytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes of image data held."""
        return self._nbytes

    @property
    def newest_ts(self) -> float | None:
        """Timestamp of the newest frame, None when empty."""
        return self._entries[-1].ts if self._entries else None

    @property
    def oldest_ts(self) -> float | None:
        """Timestamp of the oldest frame, None when empty."""
        return self._entries[0].ts if self._entries else None

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[RingEntry]:
        return iter(self._entries)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What became of one event's package.

    Attributes:
        event_id: the event.
        path: the package folder (``<out_root>/<event_id>``); for "failed" where it would have been.
        status: "written" (new package), "exists" (left as it was), "failed" (nothing written).
        error: one line, for "failed".
        build_ms: wall time of the build (0 for "exists").
        frames: frames the package covers (clip frames before resampling).
    """

    event_id: str
    path: Path
    status: Literal["written", "exists", "failed"]
    error: str | None = None
    build_ms: float = 0.0
    frames: int = 0


@dataclass(slots=True)
class _Pending:
    event: ViolationEvent
    plate: dict[str, Any] | None
    signal: dict[str, Any] | None
    plate_crop: Image | None
    overlay: Overlay | None
    end_ts: float
    entries: list[RingEntry] = field(default_factory=list)
    timing: dict[str, Any] | None = None  # the manifest's details["timing"], set when the stills are picked


def upscale_plate(crop: Image, min_height: int) -> Image:
    """The plate crop enlarged by the smallest integer factor (1..8) that reaches `min_height`.

    Nearest-neighbour: every pixel becomes a k x k block, so the enlargement adds no detail that the
    camera did not record (a court can be told exactly what was done).

    Args:
        crop: (h, w, 3) BGR or (h, w) grey uint8, h, w >= 1.

    Raises:
        ValueError: on an empty crop or another shape.
    """
    if crop.ndim == 2:
        crop = np.asarray(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
        raise ValueError(f"plate crop must be (h, w, 3) or (h, w) with h, w >= 1, got {crop.shape}")
    k = min(8, max(1, math.ceil(min_height / crop.shape[0])))
    if k == 1:
        return crop.copy()
    return np.repeat(np.repeat(crop, k, axis=0), k, axis=1)


def _nearest(entries: Sequence[RingEntry], ts: float) -> RingEntry:
    return min(entries, key=lambda e: abs(e.ts - ts))


def pick_stills(
    entries: Sequence[RingEntry], frame_index: int, ts: float, offset_s: float
) -> tuple[RingEntry, RingEntry, RingEntry]:
    """The before/at/after frames of an event among `entries` (sorted by time, not empty).

    ``at`` is the frame with `frame_index` (else the one nearest `ts`); ``before`` the frame nearest
    ``at.ts - offset_s`` no later than ``at`` (the earliest when the window starts later); ``after``
    likewise after ``at``.

    Raises:
        ValueError: when `entries` is empty.
    """
    if not entries:
        raise ValueError("no frames")
    at = next((e for e in entries if e.index == frame_index), None) or _nearest(entries, ts)
    before = _nearest([e for e in entries if e.ts <= at.ts], at.ts - offset_s)
    after = _nearest([e for e in entries if e.ts >= at.ts], at.ts + offset_s)
    return before, at, after


#: The rules that fine crossing a stop line: their violation happens at the crossing.
CROSSING_RULES: frozenset[str] = frozenset({"red_light", "stop_line"})
# The rules round times in details to 1 ms: a crossing time may then lie 0.5 ms past its frame's.
_DETAILS_TS_SLACK = 0.0005

OccurredBasis = Literal["stop_line_crossing", "violation_start", "established"]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """When a violation happened: the manifest's ``occurred_at`` (the notice's and SMS's time).

    Attributes:
        basis: "stop_line_crossing" (red light, stop line: when the vehicle went over the stop line,
            its front as the rules estimate it, the moment the light is judged and ``red_for_s`` is
            counted from); "violation_start" (the other rules: when the rule dates the start of the
            offence, ``details["began_at_ts"]``: driving against the direction, in the lane, on the
            sidewalk, the stop's dwell, the speed measurement); "established" (the event frame, where
            the event gives no earlier time).
        ts: that moment in frame time (`Frame.ts`).
        frame_index: the first frame past the line, when the crossing is the bottom-centre's
            (``details["crossed_frame_index"]``); else None.
    """

    basis: OccurredBasis
    ts: float
    frame_index: int | None = None


def _detail_ts(details: Mapping[str, Any], key: str) -> float | None:
    v = details.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def occurrence(event: ViolationEvent) -> Occurrence:
    """When `event` happened (see `Occurrence`): the crossing for the stop-line rules, the start of the
    offence where the rule dates it, else the event frame. A time after the event frame (which no
    rule writes) is not trusted: the event frame then."""
    details = event.details
    established = Occurrence("established", float(event.ts), int(event.frame_index))
    crossed = _detail_ts(details, "crossed_at_ts")
    if event.rule in CROSSING_RULES and crossed is not None:
        front = _detail_ts(details, "front_crossed_at_ts")
        ts = crossed if front is None else min(front, crossed)
        frame = details.get("crossed_frame_index")
        frame_index = (
            frame if isinstance(frame, int) and not isinstance(frame, bool) and ts == crossed else None
        )
        if ts <= event.ts + _DETAILS_TS_SLACK:
            return Occurrence("stop_line_crossing", ts, frame_index)
        logger.warning(
            "event %s: crossing at %.3f after the event at %.3f: not used", event.event_id, ts, event.ts
        )
        return established
    began = _detail_ts(details, "began_at_ts")
    if began is not None and began <= event.ts + _DETAILS_TS_SLACK:
        return Occurrence("violation_start", began)
    return established


def pick_crossing_stills(
    entries: Sequence[RingEntry],
    crossed_ts: float,
    crossed_frame_index: int | None,
    event_frame_index: int,
    offset_s: float,
) -> tuple[RingEntry, RingEntry, RingEntry] | None:
    """The before/at/after frames of a stop-line crossing among `entries` (sorted by time), or None
    when they do not hold a frame on both sides of it (the ring no longer had them).

    ``at`` is the first frame past the line: the frame `crossed_frame_index` if given and present,
    else the first at or after `crossed_ts`; ``before`` the frame just before ``at`` (the vehicle
    still on the approach side, the light as it was when it went over); ``after`` the event frame
    (the violation established past the line) when it is later than ``at``, else the frame nearest
    ``at.ts + offset_s`` after it (or ``at``, the latest there is).
    """
    at = None
    if crossed_frame_index is not None:
        at = next((e for e in entries if e.index == crossed_frame_index), None)
    if at is None:
        at = next((e for e in entries if e.ts >= crossed_ts - _DETAILS_TS_SLACK), None)
    if at is None:
        return None
    earlier = [e for e in entries if e.ts < at.ts]
    if not earlier:
        return None
    before = earlier[-1]
    event_entry = next((e for e in entries if e.index == event_frame_index and e.ts > at.ts), None)
    later = [e for e in entries if e.ts > at.ts]
    after = event_entry or (_nearest(later, at.ts + offset_s) if later else at)
    return before, at, after


def clip_schedule(ts: Sequence[float]) -> tuple[float, list[int]]:
    """A regular time grid over frames with timestamps `ts` (sorted): (fps, frame position per slot).

    The grid step is the median frame interval; each slot shows the latest frame at or before it, so
    a dropped frame shows as a repeat and the clip's duration equals the real duration.

    Raises:
        ValueError: when `ts` is empty.
    """
    if not ts:
        raise ValueError("no frames")
    if len(ts) == 1:
        return 1.0, [0]
    gaps = [b - a for a, b in itertools.pairwise(ts) if b > a]
    step = statistics.median(gaps) if gaps else 1.0
    fps = 1.0 / step
    n = math.floor((ts[-1] - ts[0]) / step + 0.5) + 1
    slots: list[int] = []
    j = 0
    for k in range(n):
        t = ts[0] + k * step + step * 0.25  # a quarter step of tolerance for timestamp jitter
        while j + 1 < len(ts) and ts[j + 1] <= t:
            j += 1
        slots.append(j)
    return fps, slots


def recover_temp(out_root: Path, keep: Sequence[str] = ()) -> list[Path]:
    """Delete half-written packages (``<out_root>/.tmp-*``) left by a crash; returns what was removed.

    Args:
        keep: event ids whose temp folders are in use and must stay.
    """
    removed: list[Path] = []
    if not out_root.is_dir():
        return removed
    keep_names = {TMP_PREFIX + k for k in keep}
    for p in sorted(out_root.glob(TMP_PREFIX + "*")):
        if p.name in keep_names:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
        removed.append(p)
        logger.warning("removed half-written evidence package %s", p)
    return removed


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory holding it is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _encode_jpeg(image: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise EvidenceError(f"JPEG encoding failed for an image of shape {image.shape}")
    return bytes(buf.tobytes())


class EvidenceBuilder:
    """Turns violation events into signed evidence packages under `out_root` (see module docstring).

    Call `on_frame` for every frame (in order) and `add_event` for each event, from one thread.
    With ``config.background`` the packages are built on one worker thread; the `overlay` functions
    passed to `add_event` then run on that thread and must be pure.

    Args:
        device_id: id of this edge device (the server knows its public key).
        private_key: the device's Ed25519 signing key.
        out_root: where package folders go (created if needed).
        scene_version: sha256 hex of the scene file the rules used.
        models: ``[{"name": ..., "sha256": ...}]`` of the models that took part.
        location: ``{"lat": ..., "lon": ...}`` of the camera, or None.
        district: administrative district of the camera, or None.
        ts_origin: epoch seconds added to `Frame.ts` to get wall-clock time: 0 for live sources
            (their ts is already wall clock); for a file, the time its recording started.
        config: cutting and encoding options.

    Raises:
        EvidenceError: on an invalid `models`, `location`, `district` or `scene_version`.
    """

    def __init__(
        self,
        device_id: str,
        private_key: Ed25519PrivateKey,
        out_root: Path,
        *,
        scene_version: str,
        models: Sequence[Mapping[str, str]] = (),
        location: Mapping[str, float] | None = None,
        district: str | None = None,
        ts_origin: float = 0.0,
        config: EvidenceConfig | None = None,
    ) -> None:
        self.config = config or EvidenceConfig()
        self.device_id = device_id
        self.out_root = Path(out_root)
        self.ts_origin = float(ts_origin)
        self._key = private_key
        self._static: dict[str, Any] = {
            "format": FORMAT,
            "device_id": device_id,
            "location": None if location is None else dict(location),
            "district": district,
            "scene_version": scene_version,
            "models": [dict(m) for m in models],
        }
        # Fail at start-up, not at the first violation: validate the fixed fields with a dummy event.
        self._check_fields(self._dummy_manifest())
        cfg = self.config
        age = cfg.pre_s + cfg.max_lag_s
        self.ring = FrameRing(
            max_age_s=age,
            max_frames=max(8, math.ceil(age * 60) + 2),  # up to 60 fps cameras
            max_bytes=int(cfg.ring_max_mb * _MIB),
        )
        self._pending: dict[str, _Pending] = {}
        self._futures: deque[Future[BuildResult]] = deque()
        self._done: list[BuildResult] = []
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._warned_short_ring = False
        self.counts: dict[str, int] = {"written": 0, "exists": 0, "failed": 0}

    # ------------------------------------------------------------------ frame loop

    def on_frame(self, frame: FrameLike, tracks: Detections | None = None) -> list[BuildResult]:
        """Feed one frame (and its tracked boxes, used to draw the vehicle in the clip).

        Cheap: appends to the ring, extends pending packages, hands complete ones to the worker.
        Blocks only when ``max_queued`` packages already wait for the worker.

        Returns:
            The packages finished since the previous call (or `flush`).
        """
        entry = RingEntry(frame.image, int(frame.index), float(frame.ts), tracks)
        newest = self.ring.newest_ts
        if newest is not None and entry.ts < newest:
            # A file looped or a source restarted with its own clock: what is pending cannot get
            # more frames; finish it and start the ring afresh.
            logger.warning(
                "frame time went back from %.3f to %.3f: finishing pending evidence", newest, entry.ts
            )
            self._complete_all()
            self.ring.clear()
        self.ring.append(entry)
        if self.ring.evicted_for_memory and not self._warned_short_ring:
            self._warned_short_ring = True
            logger.warning(
                "evidence ring hit its cap (%.0f MB, %d frames): pre-event video is shorter than %.1f s",
                self.config.ring_max_mb,
                self.ring.max_frames,
                self.config.pre_s,
            )
        if self._pending:
            complete = []
            for p in self._pending.values():
                if entry.ts <= p.end_ts + _EPS:
                    p.entries.append(entry)
                if entry.ts >= p.end_ts - _EPS:
                    complete.append(p)
            for p in complete:
                self._submit(p)
        return self._collect()

    def add_event(
        self,
        event: ViolationEvent,
        plate: Mapping[str, Any] | None = None,
        signal: Mapping[str, Any] | None = None,
        plate_crop: Image | None = None,
        overlay: Overlay | None = None,
    ) -> None:
        """Start the package of `event`; it completes once `post_s` of frames after the event arrived.

        Args:
            event: the violation; `event.ts` is in the same clock as the frames.
            plate: the manifest's ``plate`` object (text, formatted, valid, confidence, lines, colour,
                raw, alternatives), or None.
            signal: the manifest's ``signal`` object (state, red_for_s), or None.
            plate_crop: (h, w, 3) BGR crop of the plate as read, or None (copied here).
            overlay: draws the scene (lines, zone, light state) on a copy of a frame and returns it.

        Raises:
            EvidenceError: a field of the event, plate or signal breaks the manifest schema (the
                message names it). Nothing is started then.
        """
        dummy = self._dummy_manifest()
        manifest = self._manifest_fields(event, plate, signal, _TIMING_PLACEHOLDER)
        self._check_fields({**manifest, "files": dummy["files"], "created_at": dummy["created_at"]})
        eid = event.event_id
        final = self.out_root / eid
        if eid in self._pending or eid in self._in_flight:
            logger.debug("event %s is already being built", eid)
            return
        if final.exists():
            logger.info("evidence %s already exists: left as is", eid)
            self._record(BuildResult(eid, final, "exists"))
            return
        cfg = self.config
        crop = None
        if plate_crop is not None:
            c = np.asarray(plate_crop)
            if c.dtype != np.uint8 or c.size == 0 or not (c.ndim == 2 or (c.ndim == 3 and c.shape[2] == 3)):
                raise EvidenceError(
                    f"plate_crop must be a non-empty uint8 (h, w, 3) or (h, w) image, got {c.dtype} {c.shape}"
                )
            crop = c.copy()  # the caller may reuse its buffer before the worker encodes it
        # The clip starts `pre_s` before the event; for a stop-line crossing `pre_s` before the
        # crossing (the stills show it), with at least the frame before it.
        anchor = float(event.ts)
        start = anchor - cfg.pre_s
        occurred = occurrence(event)
        if occurred.basis == "stop_line_crossing":
            anchor = occurred.ts
            start = min(start, anchor - max(cfg.pre_s, cfg.still_offset_s))
        p = _Pending(
            event=event,
            plate=None if plate is None else dict(plate),
            signal=None if signal is None else dict(signal),
            plate_crop=crop,
            overlay=overlay,
            end_ts=float(event.ts) + cfg.post_s,
            entries=self.ring.since(start - _EPS),
        )
        oldest = self.ring.oldest_ts
        if oldest is not None and oldest > start + 0.5:
            logger.info("event %s: only %.1f s of video before it", eid, anchor - oldest)
        self._pending[eid] = p
        newest = self.ring.newest_ts
        if newest is not None and newest >= p.end_ts - _EPS:
            self._submit(p)

    def flush(self) -> list[BuildResult]:
        """Build every pending package with the frames it has, wait for the worker, return what finished.

        Call at the end of a stream; packages cut short get a shorter clip (the manifest needs no note:
        the clip shows its own length).
        """
        self._complete_all()
        while self._futures:
            self._record(self._futures.popleft().result())
        return self._collect()

    def close(self) -> list[BuildResult]:
        """`flush`, then stop the worker thread."""
        results = self.flush()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        return results

    def __enter__(self) -> EvidenceBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recover(self) -> list[Path]:
        """Delete half-written packages (``.tmp-*``) in `out_root` left by a crash.

        Call once at start, before frames flow. Temp folders of packages this builder is writing
        are kept; another builder writing into the same `out_root` at the same moment is not known
        here, so with several cameras call it before any of them starts.
        """
        with self._lock:
            keep = sorted(self._in_flight)
        return recover_temp(self.out_root, keep=keep)

    @property
    def pending_count(self) -> int:
        """Packages still collecting frames or waiting for the worker."""
        return len(self._pending) + len(self._futures)

    # ------------------------------------------------------------------ internals

    def _complete_all(self) -> None:
        for p in list(self._pending.values()):
            self._submit(p)

    def _submit(self, p: _Pending) -> None:
        eid = p.event.event_id
        self._pending.pop(eid, None)
        with self._lock:
            self._in_flight.add(eid)
        if not self.config.background:
            self._record(self._build(p))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence")
        while len(self._futures) >= self.config.max_queued:
            t0 = time.perf_counter()
            done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
            logger.warning(
                "evidence worker is behind (%d queued): frame loop waited %.0f ms",
                len(self._futures),
                (time.perf_counter() - t0) * 1000,
            )
            for f in list(self._futures):
                if f in done:
                    self._futures.remove(f)
                    self._record(f.result())
        self._futures.append(self._executor.submit(self._build, p))

    def _record(self, result: BuildResult) -> None:
        with self._lock:
            self._done.append(result)
            self._in_flight.discard(result.event_id)
            self.counts[result.status] += 1

    def _collect(self) -> list[BuildResult]:
        while self._futures and self._futures[0].done():
            self._record(self._futures.popleft().result())
        with self._lock:
            out, self._done = self._done, []
        return out

    def _dummy_manifest(self) -> dict[str, Any]:
        files = [
            {"name": f"{k}.jpg", "kind": k, "sha256": "0" * 64, "size": 0, "media_type": MEDIA_TYPES[k]}
            for k in ("still_before", "still_at", "still_after")
        ]
        return {
            **self._static,
            "event_id": "00000000-0000-0000-0000-000000000000",
            "rule": "red_light",
            "legal_reference": "-",
            "camera_id": "-",
            "track_id": 0,
            "frame_index": 0,
            "ts": 0.0,
            "vehicle_class": "car",
            "box_xyxy": [0.0, 0.0, 1.0, 1.0],
            "details": {},
            "occurred_at": iso_utc(0.0),
            "plate": None,
            "signal": None,
            "files": files,
            "created_at": iso_utc(0.0),
        }

    @staticmethod
    def _check_fields(manifest: Mapping[str, Any]) -> None:
        validate_manifest(manifest)
        canonical_bytes(manifest)

    def _manifest_fields(
        self,
        event: ViolationEvent,
        plate: Mapping[str, Any] | None,
        signal: Mapping[str, Any] | None,
        timing: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        ts = float(event.ts)
        if not math.isfinite(ts):
            raise EvidenceError(f"manifest field 'ts': must be finite, got {event.ts}")
        details = _plain(event.details)
        if timing is not None:
            details["timing"] = _plain(timing)
        return {
            **self._static,
            "event_id": event.event_id,
            "rule": event.rule,
            "legal_reference": event.legal_reference,
            "camera_id": event.camera_id,
            "track_id": int(event.track_id),
            "frame_index": int(event.frame_index),
            "ts": ts,
            "vehicle_class": event.vehicle_class,
            "box_xyxy": [float(v) for v in event.box_xyxy],
            "details": details,
            "occurred_at": iso_utc(self.ts_origin + occurrence(event).ts),
            "plate": None if plate is None else _plain(plate),
            "signal": None if signal is None else _plain(signal),
        }

    def _build(self, p: _Pending) -> BuildResult:
        eid = p.event.event_id
        final = self.out_root / eid
        tmp = self.out_root / (TMP_PREFIX + eid)
        t0 = time.perf_counter()
        try:
            if final.exists():
                return BuildResult(eid, final, "exists")
            if not p.entries:
                raise EvidenceError("no frames of the event were seen")
            self.out_root.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            files = self._write_files(p, tmp)
            manifest = self._manifest_fields(p.event, p.plate, p.signal, p.timing)
            manifest["files"] = files
            manifest["created_at"] = iso_utc(time.time())
            validate_manifest(manifest)
            data = canonical_bytes(manifest)
            _write_synced(tmp / MANIFEST_NAME, data)
            _write_synced(tmp / SIGNATURE_NAME, (sign(data, self._key) + "\n").encode("ascii"))
            _fsync_dir(tmp)
            try:
                tmp.rename(final)
            except OSError:
                if final.exists():  # written meanwhile by another process: keep theirs
                    shutil.rmtree(tmp, ignore_errors=True)
                    return BuildResult(eid, final, "exists")
                raise
            _fsync_dir(self.out_root)
        except Exception as e:
            # One bad package must not stop the edge worker: report it, leave nothing half-written.
            logger.exception("evidence package %s failed", eid)
            shutil.rmtree(tmp, ignore_errors=True)
            return BuildResult(eid, final, "failed", error=f"{type(e).__name__}: {e}".splitlines()[0])
        ms = (time.perf_counter() - t0) * 1000
        logger.info("evidence package %s written (%d frames, %.0f ms)", eid, len(p.entries), ms)
        return BuildResult(eid, final, "written", build_ms=ms, frames=len(p.entries))

    def _caption(self, p: _Pending, e: RingEntry, tag: str) -> list[str]:
        ev = p.event
        lost = "" if _vehicle_box(ev, e)[0] is not None else f"  xe #{ev.track_id}: {LOST_LABEL}"
        return [
            f"{ev.camera_id}  {iso_utc(self.ts_origin + e.ts)}  frame {e.index}  {tag}",
            f"{ev.rule}  #{ev.track_id} {ev.vehicle_class}  event {ev.event_id[:8]}{lost}",
        ]

    def _draw(self, p: _Pending, e: RingEntry, tag: str, with_overlay: bool) -> Image:
        ev = p.event
        image: Image = e.image.copy()
        if with_overlay and p.overlay is not None:
            image = p.overlay(image)
            if image.shape != e.image.shape or image.dtype != np.uint8:
                raise EvidenceError(f"overlay returned {image.dtype} {image.shape}, expected {e.image.shape}")
        box, observed = _vehicle_box(ev, e)
        if box is not None:
            label = f"#{ev.track_id} {ev.vehicle_class}" + ("" if observed else f" ({PREDICTED_LABEL})")
            image = annotate.draw_vehicle(image, box, label, predicted=not observed)
        return annotate.add_caption(image, self._caption(p, e, tag))

    def _pick(self, p: _Pending, entries: list[RingEntry]) -> tuple[RingEntry, RingEntry, RingEntry, str]:
        """The three stills of `p` and the tag of the middle one; sets ``p.timing``."""
        ev = p.event
        occurred = occurrence(ev)
        picked = None
        if occurred.basis == "stop_line_crossing":
            picked = pick_crossing_stills(
                entries, occurred.ts, occurred.frame_index, ev.frame_index, self.config.still_offset_s
            )
        timing: dict[str, Any] = {"occurred_at": occurred.basis, "occurred_ts": round(occurred.ts, 3)}
        if picked is not None:
            timing["stills_at"], at_tag = "stop_line_crossing", "AT CROSSING"
        else:
            picked = pick_stills(entries, ev.frame_index, ev.ts, self.config.still_offset_s)
            timing["stills_at"], at_tag = "established", "AT EVENT"
            if occurred.basis == "stop_line_crossing":
                timing["note"] = CROSSING_NOT_KEPT
                logger.warning(
                    "event %s: the frames of its stop-line crossing (%.2f s) were no longer in the evidence "
                    "ring (oldest %.2f s): stills around the event frame instead; raise evidence.max_lag_s",
                    ev.event_id,
                    occurred.ts,
                    entries[0].ts,
                )
        timing["stills"] = [
            _still_record(ev, kind, e)
            for kind, e in zip(("still_before", "still_at", "still_after"), picked, strict=True)
        ]
        p.timing = timing
        before, at, after = picked
        return before, at, after, at_tag

    def _write_files(self, p: _Pending, tmp: Path) -> list[dict[str, Any]]:
        cfg = self.config
        entries = sorted(p.entries, key=lambda e: e.ts)
        before, at, after, at_tag = self._pick(p, entries)
        files: list[dict[str, Any]] = []

        def add(name: str, kind: str, data: bytes) -> None:
            _write_synced(tmp / name, data)
            files.append(
                {
                    "name": name,
                    "kind": kind,
                    "sha256": sha256_hex(data),
                    "size": len(data),
                    "media_type": MEDIA_TYPES[kind],
                }
            )

        for kind, e in (("still_before", before), ("still_at", at), ("still_after", after)):
            dt = e.ts - at.ts
            tag = at_tag if e is at else f"{'BEFORE' if dt < 0 else 'AFTER'} {dt:+.2f}s"
            add(f"{kind}.jpg", kind, _encode_jpeg(self._draw(p, e, tag, with_overlay=True), cfg.jpeg_quality))
        if p.plate_crop is not None and p.plate_crop.size > 0:
            plate = upscale_plate(p.plate_crop, cfg.plate_min_height)
            add("plate.jpg", "plate", _encode_jpeg(plate, max(cfg.jpeg_quality, 95)))
        if cfg.clip:
            data = self._encode_clip(p, entries, at, tmp / "clip.mp4", at_tag)
            if data is not None:
                files.append(
                    {
                        "name": "clip.mp4",
                        "kind": "clip",
                        "sha256": sha256_hex(data),
                        "size": len(data),
                        "media_type": MEDIA_TYPES["clip"],
                    }
                )
        return files

    def _encode_clip(
        self, p: _Pending, entries: list[RingEntry], at: RingEntry, path: Path, at_tag: str = "AT EVENT"
    ) -> bytes | None:
        fps, slots = clip_schedule([e.ts for e in entries])
        first = annotate.pad_even(self._draw(p, entries[slots[0]], "", with_overlay=False))
        h, w = first.shape[:2]
        codecs = [self.config.clip_codec] + (["mp4v"] if self.config.clip_codec != "mp4v" else [])
        writer = None
        for codec in codecs:
            writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*codec), fps, (w, h))
            if writer.isOpened():
                break
            logger.warning("video encoder %s is not available in this OpenCV build", codec)
            writer.release()
            writer = None
        if writer is None:
            logger.error("no video encoder works: package %s has no clip", p.event.event_id)
            return None
        try:
            drawn: dict[int, Image] = {}
            for j in slots:
                if j not in drawn:
                    drawn.clear()  # slots are non-decreasing: only the last drawn frame can repeat
                    e = entries[j]
                    img = annotate.pad_even(self._draw(p, e, at_tag if e is at else "", with_overlay=False))
                    if img.shape[:2] != (h, w):  # the camera changed resolution mid-clip
                        img = np.asarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
                    drawn[j] = img
                writer.write(drawn[j])
        finally:
            writer.release()
        data = path.read_bytes()
        if not data:
            raise EvidenceError("the video encoder wrote an empty clip")
        with path.open("rb") as f:
            os.fsync(f.fileno())
        return data


# The largest ``details["timing"]`` a package gets, to check the details' size bound at `add_event`.
_TIMING_PLACEHOLDER: Mapping[str, Any] = {
    "occurred_at": "stop_line_crossing",
    "occurred_ts": 0.0,
    "stills_at": "established",
    "stills": [
        {"kind": "still_before", "frame_index": 0, "ts": 0.0, "box": "predicted", "box_xyxy": [0.0] * 4}
    ]
    * 3,
    "note": "-" * 96,
}

#: Drawn beside a box the tracker predicted (the detector did not see the vehicle in that frame).
PREDICTED_LABEL = "dự đoán"
#: Caption of an image where the vehicle has no box (the tracker lost it, or had not found it yet).
LOST_LABEL = "mất dấu"
#: ``details["timing"]["note"]`` when the stills could not show the crossing.
CROSSING_NOT_KEPT = "crossing frames no longer in the evidence ring: stills around the event frame"


def _vehicle_box(
    event: ViolationEvent, e: RingEntry
) -> tuple[tuple[float, float, float, float] | None, bool]:
    """The event's vehicle in frame `e`: its box (None when not tracked there) and whether the detector
    saw it (False for a predicted box). In the event frame, the event's own box."""
    box = e.box_of(event.track_id)
    observed = e.observed(event.track_id) if box is not None else True
    if e.index == event.frame_index:
        x1, y1, x2, y2 = (float(v) for v in event.box_xyxy)
        return (x1, y1, x2, y2), observed
    return box, observed


def _still_record(event: ViolationEvent, kind: str, e: RingEntry) -> dict[str, Any]:
    """What a still shows, for ``details["timing"]["stills"]``."""
    box, observed = _vehicle_box(event, e)
    return {
        "kind": kind,
        "frame_index": e.index,
        "ts": round(e.ts, 3),
        "box": "none" if box is None else ("observed" if observed else "predicted"),
        "box_xyxy": None if box is None else [round(v, 1) for v in box],
    }


def _plain(obj: Mapping[str, Any]) -> dict[str, Any]:
    # Tuples (alternatives) become lists, as JSON will read them back: the signed bytes and the
    # validated object then describe the same thing.
    def conv(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        return v

    out: dict[str, Any] = conv(obj)
    return out


__all__ = [
    "BuildResult",
    "EvidenceBuilder",
    "EvidenceConfig",
    "FrameLike",
    "FrameRing",
    "Occurrence",
    "RingEntry",
    "clip_schedule",
    "occurrence",
    "pick_crossing_stills",
    "pick_stills",
    "recover_temp",
    "upscale_plate",
]
