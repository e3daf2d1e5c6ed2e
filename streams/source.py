"""Video sources built for failure: files, RTSP/HTTP streams (MJPEG, HLS) and capture devices.

`open_source` turns a source string into a running `VideoSource`: a reader thread (daemon, named
after the camera) decodes with ``cv2.VideoCapture`` into a bounded `FrameBuffer`; the consumer
iterates `Frame`s. OpenCV is imported only when a source is opened, so ``import streams`` stays light.

Files (``realtime`` off by default)
    Opened eagerly in `open_source`, so a missing, corrupt or truncated-beyond-use file fails fast
    with a one-line `StreamError`. Every frame is delivered in order: the reader blocks while the
    buffer is full (back-pressure). ``index`` is the frame number, ``ts`` the container time.
    Iteration ends at end of file with state ``ENDED``.
    **Truncated files** that open but stop decoding before the frame count the container announces
    also end with ``ENDED``; `SourceHealth.last_error` then says so ("ended after 80 of 361 frames:
    truncated or corrupt file?") and a warning is logged. Iteration does not raise: the frames that
    could be read are real and a batch run keeps them; callers that must be strict check
    ``health().last_error`` after the loop.

Live sources (URLs, devices; ``realtime`` on by default)
    Opened in the background; `open_source` never blocks on the network. A slow consumer gets the
    newest frames: the oldest queued frame is dropped and counted. ``index`` counts every frame read
    (dropped ones included), ``ts`` is `streams.clock.frame_clock` (wall-clock seconds that advance
    with the monotonic clock, so NTP steps do not bend durations). A supervisor thread runs one
    connection at a time in a worker thread and watches it:

    - open or read failure → ``BACKOFF`` (capped exponential delay with jitter, slept on the stop
      event) → ``CONNECTING``, forever or up to ``max_reconnects`` (then ``FAILED``);
    - the backoff delay resets only after a connection delivered frames for ``healthy_reset_s``, so
      a flapping camera does not get hammered;
    - stall watchdog: a ``read()`` blocked for ``stall_timeout_s`` → ``STALLED``; the connection is
      cancelled and replaced. FFmpeg's own open/read timeouts (``CAP_PROP_OPEN_TIMEOUT_MSEC``,
      ``CAP_PROP_READ_TIMEOUT_MSEC``) unblock the call soon after; a call that never returns (a
      backend that ignores timeouts) is abandoned in its daemon thread, which releases its capture
      when the call finally returns;
    - `VideoSource.close` is idempotent and returns within about ``close_timeout_s`` even while
      OpenCV is blocked.

With ``realtime`` forced the other way, a file is paced at its frame rate with drop-oldest (a file
standing in for a camera), and a live source applies back-pressure instead of dropping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from streams.backoff import Backoff
from streams.buffer import FrameBuffer
from streams.clock import frame_clock
from streams.errors import StreamError
from streams.frame import Frame
from streams.uri import SourceKind, SourceSpec, parse_uri

logger = logging.getLogger(__name__)

# fps_in is measured over the frames read in this many seconds.
_FPS_WINDOW_S = 5.0
# A file that ends more than this many frames (and this fraction) short of its announced frame
# count is reported as truncated. Variable-frame-rate files announce an estimate, hence the slack.
_TRUNCATION_SLACK_FRAMES = 2
_TRUNCATION_SLACK_FRACTION = 0.02


class HealthState(StrEnum):
    """Where a source is in its life."""

    CONNECTING = "connecting"
    LIVE = "live"
    STALLED = "stalled"
    BACKOFF = "backoff"
    ENDED = "ended"
    FAILED = "failed"


@dataclass(frozen=True)
class SourceOptions:
    """How a source reads, buffers and recovers. Defaults suit a live camera on an edge box.

    Attributes:
        queue_size: frames held between reader and consumer; None = 2 when realtime (live), 8 otherwise.
        backoff_initial_s: first reconnect delay.
        backoff_max_s: cap of the reconnect delay.
        backoff_jitter: each delay is scaled by a random factor in [1 - jitter, 1 + jitter].
        healthy_reset_s: a connection must deliver frames this long before the delay resets.
        stall_timeout_s: a read blocked this long means the stream stalled: reconnect.
        open_timeout_s: FFmpeg open timeout (connect, HTTP/RTSP handshake, probing).
        read_timeout_s: FFmpeg read timeout; None = ``stall_timeout_s + 1`` so that the watchdog
            reports the stall and FFmpeg then unblocks the read.
        max_reconnects: give up (state FAILED) after this many reconnects; None = never.
        realtime: None = auto (live for URLs and devices, not for files); see the module docstring.
        close_timeout_s: how long `VideoSource.close` waits for the reader threads.

    Raises:
        ValueError: on construction, for out-of-range values.
    """

    queue_size: int | None = None
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter: float = 0.2
    healthy_reset_s: float = 10.0
    stall_timeout_s: float = 5.0
    open_timeout_s: float = 10.0
    read_timeout_s: float | None = None
    max_reconnects: int | None = None
    realtime: bool | None = None
    close_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.queue_size is not None and self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")
        positive = {
            "backoff_initial_s": self.backoff_initial_s,
            "stall_timeout_s": self.stall_timeout_s,
            "open_timeout_s": self.open_timeout_s,
            "close_timeout_s": self.close_timeout_s,
        }
        if self.read_timeout_s is not None:
            positive["read_timeout_s"] = self.read_timeout_s
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be >= "
                f"backoff_initial_s ({self.backoff_initial_s})"
            )
        if not 0 <= self.backoff_jitter < 1:
            raise ValueError(f"backoff_jitter must be in [0, 1), got {self.backoff_jitter}")
        if self.healthy_reset_s < 0:
            raise ValueError(f"healthy_reset_s must be >= 0, got {self.healthy_reset_s}")
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0 or None, got {self.max_reconnects}")

    @property
    def effective_read_timeout_s(self) -> float:
        """The read timeout handed to FFmpeg."""
        return self.read_timeout_s if self.read_timeout_s is not None else self.stall_timeout_s + 1.0


@dataclass(frozen=True)
class SourceHealth:
    """A snapshot of a source's state and counters (for logs, ``/metrics`` and tests).

    Attributes:
        state: current `HealthState`.
        frames_read: frames decoded from the source.
        frames_delivered: frames handed to the consumer.
        frames_dropped: frames dropped because the consumer was slow (live sources only).
        reconnects: reconnect attempts so far (not counting the first connection).
        last_frame_age_s: seconds since the last frame was read; None before the first frame.
        last_error: the most recent failure in one line, or None.
        fps_in: frames read per second, measured over the last few seconds (0.0 when idle).
        queued: frames waiting in the buffer now
            (``frames_read == frames_delivered + frames_dropped + queued`` while the source is open).
    """

    state: HealthState
    frames_read: int
    frames_delivered: int
    frames_dropped: int
    reconnects: int
    last_frame_age_s: float | None
    last_error: str | None
    fps_in: float
    queued: int = 0


@runtime_checkable
class Source(Protocol):
    """What the edge worker needs from a video source."""

    @property
    def camera_id(self) -> str:
        """Id of the camera, copied into every `Frame`."""
        ...

    @property
    def fps(self) -> float | None:
        """Frame rate the source declares (container fps for files), None when unknown."""
        ...

    @property
    def resolution_wh(self) -> tuple[int, int] | None:
        """(width, height) of the frames, None before the first frame of a live source."""
        ...

    def __iter__(self) -> Iterator[Frame]: ...

    def health(self) -> SourceHealth: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _CameraLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every message with the camera id, so interleaved logs of many cameras stay readable."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[{extra.get('camera_id')}] {msg}", kwargs


def _import_cv2() -> Any:
    """Import OpenCV on first use, with a clear error when it is missing."""
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise StreamError("cannot open video: OpenCV is not installed (install the 'edge' extra)") from e
    return cv2


def _as_bgr(image: np.ndarray, cv2: Any) -> np.ndarray:
    """Bring a decoded image to BGR uint8 (H, W, 3); some backends hand out gray or BGRA."""
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.ndim == 3 and image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR))
    if image.dtype != np.uint8:
        raise StreamError(f"unsupported frame format: dtype {image.dtype}, shape {image.shape}")
    return image


def _one_line(error: BaseException) -> str:
    """First non-empty line of an exception message (cv2.error messages span several lines)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def _open_capture(spec: SourceSpec, options: SourceOptions, cv2: Any) -> Any:
    """Create a ``cv2.VideoCapture`` for ``spec`` with timeouts where the backend supports them.

    Files and URLs go through the FFmpeg backend explicitly: with ``CAP_ANY`` OpenCV may try its
    image-sequence reader on a file name and report nonsense. Devices use OpenCV's default backend
    (V4L2 on Linux) without timeout parameters, which V4L2 does not take at open.
    """
    if spec.kind is SourceKind.DEVICE:
        return cv2.VideoCapture(spec.target)
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(options.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(options.effective_read_timeout_s * 1000),
    ]
    return cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)


@dataclass
class _FileOpening:
    """What `open_source` learned while opening a file eagerly."""

    capture: Any
    first_image: np.ndarray
    first_ts: float
    fps: float | None
    frame_count: int | None
    resolution_wh: tuple[int, int]


def _open_file(spec: SourceSpec, options: SourceOptions) -> _FileOpening:
    """Open a video file and decode its first frame, or raise a one-line `StreamError`."""
    where = f"cannot open video file '{spec.display}'"
    try:
        with Path(str(spec.target)).open("rb") as fh:  # a readability probe: clear errors before OpenCV
            head = fh.read(16)
    except OSError as e:
        raise StreamError(f"{where}: {e.strerror or _one_line(e)}") from e
    if not head:
        raise StreamError(f"{where}: the file is empty")
    cv2 = _import_cv2()
    if not cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
        raise StreamError(f"{where}: this OpenCV build has no FFmpeg backend")
    try:
        capture = _open_capture(spec, options, cv2)
    except cv2.error as e:
        raise StreamError(f"{where}: {_one_line(e)}") from e
    try:
        if not capture.isOpened():
            raise StreamError(f"{where}: not a readable video (corrupt, truncated or not a video)")
        ok, image = capture.read()
        if not ok or image is None:
            raise StreamError(f"{where}: no frame could be decoded (corrupt or truncated)")
        first_ts = float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        image = _as_bgr(image, cv2)
    except cv2.error as e:
        capture.release()
        raise StreamError(f"{where}: {_one_line(e)}") from e
    except StreamError:
        capture.release()
        raise
    return _FileOpening(
        capture=capture,
        first_image=image,
        first_ts=first_ts,
        fps=fps if fps > 0 else None,
        frame_count=count if count > 0 else None,
        resolution_wh=(int(image.shape[1]), int(image.shape[0])),
    )


class _Connection:
    """One attempt at a live connection, run in its own worker thread and watched by the supervisor."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.cancel = threading.Event()
        self.done = threading.Event()
        self.opening_since: float | None = time.monotonic()
        self.reading_since: float | None = None
        self.first_frame_at: float | None = None
        self.last_frame_at: float | None = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None

    def healthy_for(self) -> float:
        """Seconds between the first and the last frame of this connection."""
        if self.first_frame_at is None or self.last_frame_at is None:
            return 0.0
        return self.last_frame_at - self.first_frame_at


class VideoSource:
    """A running source; create it with `open_source`. Iterate it for `Frame`s, close it when done.

    Thread-safe: `health` and `close` may be called from any thread while another iterates.
    """

    def __init__(
        self,
        spec: SourceSpec,
        camera_id: str,
        options: SourceOptions,
        *,
        realtime: bool,
        opening: _FileOpening | None = None,
    ) -> None:
        self._spec = spec
        self._camera_id = camera_id
        self._options = options
        self._realtime = realtime
        self._log = _CameraLog(logger, {"camera_id": camera_id})
        capacity = options.queue_size if options.queue_size is not None else (2 if realtime else 8)
        self._buffer: FrameBuffer[Frame] = FrameBuffer(capacity)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = HealthState.CONNECTING
        self._frames_read = 0
        self._frames_delivered = 0
        self._frames_dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._last_frame_at: float | None = None
        self._read_times: deque[float] = deque(maxlen=256)
        self._fps: float | None = None
        self._resolution_wh: tuple[int, int] | None = None
        self._closed = False
        self._connections: list[_Connection] = []
        if opening is not None:
            self._fps = opening.fps
            self._resolution_wh = opening.resolution_wh
            target = self._run_file
            self._state = HealthState.LIVE
        else:
            target = self._run_live
        self._opening = opening
        self._frame_count = opening.frame_count if opening is not None else None
        self._thread = threading.Thread(target=target, name=f"stream-{camera_id}", daemon=True)
        self._thread.start()

    # -- public ----------------------------------------------------------------------------------------
    @property
    def camera_id(self) -> str:
        """Id of the camera, copied into every `Frame`."""
        return self._camera_id

    @property
    def uri(self) -> str:
        """The source as shown in logs (passwords hidden)."""
        return self._spec.display

    @property
    def kind(self) -> SourceKind:
        """File, URL or device."""
        return self._spec.kind

    @property
    def realtime(self) -> bool:
        """True when frames are dropped for a slow consumer (live behaviour)."""
        return self._realtime

    @property
    def queue_size(self) -> int:
        """Capacity of the frame buffer."""
        return self._buffer.capacity

    @property
    def queue_high_water(self) -> int:
        """The most frames the buffer ever held at once (never above `queue_size`)."""
        return self._buffer.high_water

    @property
    def fps(self) -> float | None:
        """Declared frame rate: the container's for files; for live sources what the stream declares
        once connected (FFmpeg reports 25 for MJPEG, which carries no rate: see ``health().fps_in``)."""
        with self._lock:
            return self._fps

    @property
    def resolution_wh(self) -> tuple[int, int] | None:
        """(width, height) of the frames; None until a live source delivered its first frame."""
        with self._lock:
            return self._resolution_wh

    @property
    def frame_count(self) -> int | None:
        """Frames the file's container announces (for progress bars); None for live sources."""
        return self._frame_count

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until end of file, `close`, or (live) ``FAILED``.

        Files: every frame in order. Live: the newest frames; gaps in ``index`` are drops.
        Never raises for stream trouble: check `health` for ``last_error``.
        """
        while True:
            frame = self._buffer.get()
            if frame is None:
                return
            with self._lock:
                self._frames_delivered += 1
            yield frame

    def health(self) -> SourceHealth:
        """A consistent snapshot of state and counters."""
        now = time.monotonic()
        queued = len(self._buffer)
        with self._lock:
            age = None if self._last_frame_at is None else now - self._last_frame_at
            recent = [t for t in self._read_times if t >= now - _FPS_WINDOW_S]
            fps_in = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) >= 2 else 0.0
            if recent and now - recent[-1] > _FPS_WINDOW_S / 2:
                fps_in = 0.0  # nothing lately: do not report the rate of a stream that has gone
            return SourceHealth(
                state=self._state,
                frames_read=self._frames_read,
                frames_delivered=self._frames_delivered,
                frames_dropped=self._frames_dropped,
                reconnects=self._reconnects,
                last_frame_age_s=age,
                last_error=self._last_error,
                fps_in=fps_in,
                queued=queued,
            )

    def close(self) -> None:
        """Stop reading, release the capture and end iteration. Idempotent; bounded by
        ``close_timeout_s`` even when OpenCV is blocked in a call (the daemon thread then releases the
        capture itself when the call returns)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._buffer.close()
        if self._thread is not threading.current_thread():
            self._thread.join(self._options.close_timeout_s)
        stuck = [c for c in self._connections if c.thread is not None and c.thread.is_alive()]
        if self._thread.is_alive() or stuck:
            self._log.warning(
                "reader still blocked in OpenCV after %.1f s; left to finish in the background",
                self._options.close_timeout_s,
            )
        with self._lock:
            if self._state is not HealthState.FAILED:
                self._state = HealthState.ENDED
        self._log.debug("closed %s", self._spec.display)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoSource({self._spec.display!r}, camera_id={self._camera_id!r}, state={self._state})"

    # -- shared helpers --------------------------------------------------------------------------------
    def _set_state(self, state: HealthState, error: str | None = None) -> None:
        with self._lock:
            if self._closed and state is not HealthState.FAILED:
                return  # close() owns the final state
            self._state = state
            if error is not None:
                self._last_error = error

    def _count_read(self) -> tuple[int, float]:
        """Count one frame read; returns its index and the monotonic time."""
        now = time.monotonic()
        with self._lock:
            index = self._frames_read
            self._frames_read += 1
            self._last_frame_at = now
            self._read_times.append(now)
            return index, now

    def _deliver(self, frame: Frame) -> bool:
        """Queue a frame by the source's policy; False when the source is closing."""
        if self._realtime:
            dropped = self._buffer.put_drop_oldest(frame)
            if dropped:
                with self._lock:
                    self._frames_dropped += dropped
            return not self._buffer.closed
        return self._buffer.put_wait(frame)

    # -- files -----------------------------------------------------------------------------------------
    def _run_file(self) -> None:
        opening = self._opening
        assert opening is not None
        self._opening = None  # the thread owns the capture from here on
        capture = opening.capture
        cv2 = _import_cv2()
        display = self._spec.display
        # Realtime pacing: frame k is due at start + (ts_k - ts_0) on the monotonic clock.
        start = time.monotonic()
        image: np.ndarray | None = opening.first_image
        ts = opening.first_ts
        index = 0
        try:
            self._log.info(
                "reading video file %s (%s fps, %s frames, %dx%d)",
                display,
                opening.fps,
                opening.frame_count,
                *opening.resolution_wh,
            )
            while not self._stop.is_set():
                if image is None:
                    ok, raw = capture.read()
                    if not ok or raw is None:
                        break
                    image = _as_bgr(raw, cv2)
                    ts = float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                self._count_read()
                due = start + (ts - opening.first_ts)
                if self._realtime and self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                if not self._deliver(Frame(image=image, index=index, ts=ts, camera_id=self._camera_id)):
                    break
                image = None
                index += 1
            if self._stop.is_set():
                return  # closed early: not an end of file
            expected = opening.frame_count
            if expected is not None and index < expected - max(
                _TRUNCATION_SLACK_FRAMES, _TRUNCATION_SLACK_FRACTION * expected
            ):
                message = (
                    f"video file '{display}' ended after {index} of {expected} frames: "
                    "truncated or corrupt file?"
                )
                self._log.warning("%s", message)
                self._set_state(HealthState.ENDED, message)
            else:
                self._log.info("end of video file %s after %d frames", display, index)
                self._set_state(HealthState.ENDED)
        except cv2.error as e:
            message = f"error reading video file '{display}' at frame {index}: {_one_line(e)}"
            self._log.error("%s", message)
            self._set_state(HealthState.ENDED, message)
        except Exception as e:  # noqa: BLE001 - a reader thread must record, not vanish with, any failure
            message = f"error reading video file '{display}' at frame {index}: {_one_line(e)}"
            self._log.exception("%s", message)
            self._set_state(HealthState.ENDED, message)
        finally:
            capture.release()
            self._buffer.finish()

    # -- live ------------------------------------------------------------------------------------------
    def _run_live(self) -> None:
        """Supervisor: one connection at a time, watchdog, backoff, until close() or max_reconnects."""
        options = self._options
        backoff = Backoff(options.backoff_initial_s, options.backoff_max_s, options.backoff_jitter)
        # Watch often enough to see a stall within ~20 % of its timeout.
        poll_s = min(0.1, options.stall_timeout_s / 5)
        # After cancelling a stalled connection, how long to wait for FFmpeg's read timeout to free
        # the worker before abandoning it (bounded: a long read timeout must not delay recovery).
        grace_s = min(
            1.0 + max(0.0, options.effective_read_timeout_s - options.stall_timeout_s),
            max(2.0, options.stall_timeout_s),
        )
        number = 0
        try:
            while not self._stop.is_set():
                self._set_state(HealthState.CONNECTING)
                conn = _Connection(number)
                number += 1
                conn.thread = threading.Thread(
                    target=self._run_connection,
                    args=(conn,),
                    name=f"stream-{self._camera_id}-conn{conn.number}",
                    daemon=True,
                )
                self._connections = [c for c in self._connections if c.thread and c.thread.is_alive()]
                self._connections.append(conn)
                conn.thread.start()
                self._watch(conn, poll_s, grace_s)
                if self._stop.is_set():
                    break
                if conn.healthy_for() >= options.healthy_reset_s:
                    backoff.reset()
                with self._lock:
                    attempts = self._reconnects
                if options.max_reconnects is not None and attempts >= options.max_reconnects:
                    message = f"giving up on {self._spec.display} after {attempts} reconnects: {conn.error}"
                    self._log.error("%s", message)
                    self._set_state(HealthState.FAILED, message)
                    break
                delay = backoff.next_delay()
                with self._lock:
                    self._reconnects += 1
                self._set_state(HealthState.BACKOFF, conn.error)
                self._log.warning(
                    "%s; reconnecting to %s in %.2f s (attempt %d)",
                    conn.error,
                    self._spec.display,
                    delay,
                    attempts + 1,
                )
                if self._stop.wait(delay):
                    break
        except Exception as e:  # noqa: BLE001 - the supervisor must record, not vanish with, any failure
            self._log.exception("supervisor crashed")
            self._set_state(HealthState.FAILED, f"internal error in stream supervisor: {_one_line(e)}")
        finally:
            self._buffer.finish()

    def _watch(self, conn: _Connection, poll_s: float, grace_s: float) -> None:
        """Wait for ``conn`` to end; cancel it on a stall, a stuck open, or close()."""
        options = self._options
        while not conn.done.wait(poll_s):
            now = time.monotonic()
            if self._stop.is_set():
                conn.cancel.set()
                # close() is joining us; leave a blocked worker behind rather than overrun its wait.
                conn.done.wait(options.close_timeout_s * 0.5)
                return
            reading_since, opening_since = conn.reading_since, conn.opening_since
            if reading_since is not None and now - reading_since >= options.stall_timeout_s:
                stalled_for = now - (conn.last_frame_at or reading_since)
                conn.error = f"stalled: no frame for {stalled_for:.1f} s from {self._spec.display}"
                self._log.warning("%s", conn.error)
                self._set_state(HealthState.STALLED, conn.error)
            elif opening_since is not None and now - opening_since >= options.open_timeout_s + grace_s:
                conn.error = f"opening {self._spec.display} hung for {now - opening_since:.1f} s"
                self._log.warning("%s", conn.error)
            else:
                continue
            conn.cancel.set()
            if not conn.done.wait(grace_s):
                self._log.error(
                    "connection %d still blocked in OpenCV %.1f s after cancel; abandoning its thread",
                    conn.number,
                    grace_s,
                )
            return

    def _run_connection(self, conn: _Connection) -> None:
        """Worker: open, read until failure or cancel, always release."""
        cv2 = _import_cv2()
        display = self._spec.display
        capture = None
        try:
            started = time.monotonic()
            capture = _open_capture(self._spec, self._options, cv2)
            conn.opening_since = None
            if conn.cancel.is_set():
                return
            if not capture.isOpened():
                # OpenCV says only "not opened"; the time it took tells a silent server from a refusal.
                timeout_s = self._options.open_timeout_s
                if self._spec.kind is SourceKind.URL and time.monotonic() - started >= 0.9 * timeout_s:
                    conn.error = f"cannot open {display}: no answer within {timeout_s:.1f} s"
                else:
                    conn.error = f"cannot open {display}"
                return
            fps = float(capture.get(cv2.CAP_PROP_FPS))
            with self._lock:
                self._fps = fps if fps > 0 else self._fps
            self._log.info("connected to %s", display)
            while not conn.cancel.is_set():
                conn.reading_since = time.monotonic()
                ok, raw = capture.read()
                conn.reading_since = None
                if conn.cancel.is_set():
                    return
                if not ok or raw is None:
                    conn.error = (
                        f"stream {display} ended or lost"
                        if conn.first_frame_at is not None
                        else f"no frame from {display}"
                    )
                    return
                image = _as_bgr(raw, cv2)
                index, now = self._count_read()
                if conn.first_frame_at is None:
                    conn.first_frame_at = now
                    with self._lock:
                        self._resolution_wh = (int(image.shape[1]), int(image.shape[0]))
                        # fps_in describes this connection, not the outage before it.
                        self._read_times.clear()
                        self._read_times.append(now)
                    self._set_state(HealthState.LIVE)
                conn.last_frame_at = now
                frame = Frame(image=image, index=index, ts=frame_clock(), camera_id=self._camera_id)
                if not self._deliver(frame):
                    return
        except cv2.error as e:
            conn.error = f"OpenCV error on {display}: {_one_line(e)}"
        except Exception as e:  # noqa: BLE001 - a reader thread must record, not vanish with, any failure
            conn.error = f"error on {display}: {_one_line(e)}"
            self._log.exception("connection %d failed", conn.number)
        finally:
            conn.opening_since = None
            conn.reading_since = None
            if capture is not None:
                capture.release()
            conn.done.set()


def open_source(uri: str, camera_id: str = "cam0", options: SourceOptions | None = None) -> VideoSource:
    """Open a video source and start its reader thread.

    Args:
        uri: a file path, an ``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` URL (MJPEG, HLS
            ``.m3u8``), or a device index such as ``"0"``.
        camera_id: id copied into every frame and log line.
        options: buffering, timeouts and reconnect policy; defaults to ``SourceOptions()``.

    Returns:
        The running source. Use it as a context manager, or call `VideoSource.close`.

    Raises:
        StreamError: unknown source string; for files, also a missing, unreadable, empty, corrupt or
            undecodable file (files are opened here, synchronously). Live sources never raise here:
            connection trouble shows in `VideoSource.health`.
    """
    options = options or SourceOptions()
    spec = parse_uri(uri)
    realtime = options.realtime if options.realtime is not None else spec.is_live
    opening = _open_file(spec, options) if spec.kind is SourceKind.FILE else None
    if opening is None:
        # Fail here, not in the reader thread, when OpenCV is missing.
        _import_cv2()
    return VideoSource(spec, camera_id, options, realtime=realtime, opening=opening)
