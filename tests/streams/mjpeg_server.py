"""A real MJPEG-over-HTTP camera on loopback, for tests of anything that reads live video.

`MjpegServer` serves ``multipart/x-mixed-replace`` JPEG frames (what most IP cameras and Frigate's
``/api/<camera>`` endpoints speak) from a threaded ``http.server`` on ``127.0.0.1``. Each frame shows
where it came from, in a form that survives JPEG compression:

- a strip of 16 black/white cells along the top encodes a running frame number
  (read it back with `decode_frame_number`);
- the rest of the image is filled with the server's ``color_bgr`` (read it back with `body_color`),
  so a test can tell the frames of a restarted server from those of the first one;
- the frame number is also drawn as text, for a human looking at a saved frame.

The server can be *killed* (`stop`: the listening socket and every open connection are closed, as
when a camera loses power), *paused* (`pause`: connections stay open but no bytes flow, a stalled
camera), have only its current connections *frozen* for good (`freeze_open_connections`: a hung
session while new ones work), drop each client after a few frames (``frames_per_connection``: a
flapping camera) and be started again on the same port. `SilentServer` accepts TCP connections and
never answers, to exercise open timeouts. `free_port` gives a port nothing listens on.

Typical use (the ``mjpeg_server`` fixture in ``tests/streams/conftest.py`` does this)::

    with MjpegServer(fps=15) as camera:
        source = open_source(camera.url)

Reused by other tests (e.g. the edge worker); it depends only on the standard library, numpy and cv2.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import cv2
import numpy as np

BOUNDARY = "frame"
STREAM_PATH = "/stream.mjpg"
NUMBER_BITS = 16
STRIP_HEIGHT = 16


def render_frame(number: int, size_wh: tuple[int, int], color_bgr: tuple[int, int, int]) -> np.ndarray:
    """Draw one test frame.

    Args:
        number: frame number to encode, 0 <= number < 2**16 (taken modulo 2**16).
        size_wh: (width, height) of the image; width must be at least 16 * 8 pixels.
        color_bgr: fill colour of the body (everything below the number strip).

    Returns:
        BGR uint8 image, shape (height, width, 3).
    """
    width, height = size_wh
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = color_bgr
    cell = width // NUMBER_BITS
    value = number % (1 << NUMBER_BITS)
    for bit in range(NUMBER_BITS):
        on = (value >> (NUMBER_BITS - 1 - bit)) & 1
        image[:STRIP_HEIGHT, bit * cell : (bit + 1) * cell] = 255 if on else 0
    cv2.putText(image, str(number), (8, STRIP_HEIGHT + 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    return image


def decode_frame_number(image: np.ndarray) -> int:
    """Read back the frame number that `render_frame` encoded in the top strip.

    Args:
        image: BGR uint8 image, shape (H, W, 3), as rendered (possibly JPEG-compressed).

    Returns:
        The frame number modulo 2**16.
    """
    width = image.shape[1]
    cell = width // NUMBER_BITS
    gray = image[2 : STRIP_HEIGHT - 2].mean(axis=(0, 2))
    value = 0
    for bit in range(NUMBER_BITS):
        # Sample the middle of each cell: its edges blur into the neighbours under JPEG.
        centre = gray[bit * cell + 3 : (bit + 1) * cell - 3].mean()
        value = (value << 1) | int(centre > 127)
    return value


def body_color(image: np.ndarray) -> tuple[int, int, int]:
    """Mean BGR colour of the bottom quarter of a frame (below the strip and the text).

    Args:
        image: BGR uint8 image, shape (H, W, 3).

    Returns:
        (b, g, r) rounded to integers.
    """
    height = image.shape[0]
    mean = image[height * 3 // 4 :].reshape(-1, 3).mean(axis=0)
    return round(float(mean[0])), round(float(mean[1])), round(float(mean[2]))


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, format: str, *args: object) -> None:
        # Keep test output clean; the base class writes every request to stderr.
        return

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.split("?")[0] not in ("/", STREAM_PATH):
            self.send_error(404)
            return
        flow = owner._register(self.connection)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            owner._stream_to(self.wfile, flow)
        except (BrokenPipeError, ConnectionResetError, OSError):
            # The client went away or the server was killed: both are normal ends of a stream.
            pass
        finally:
            owner._unregister(self.connection)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: MjpegServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class MjpegServer:
    """MJPEG camera on ``http://127.0.0.1:<port>/stream.mjpg``; see the module docstring.

    Args:
        port: TCP port; 0 picks a free one (read it back from `port` after `start`).
        fps: frames per second sent to each client.
        size_wh: (width, height) of the frames.
        color_bgr: body colour, to tell servers apart.
        first_number: number of the first frame sent.
        jpeg_quality: JPEG quality 1..100.
        frames_per_connection: close each connection after this many frames (a flapping camera);
            None = stream until the client leaves.
        frames: real BGR frames to send in a loop instead of the numbered test pattern.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        fps: float = 15.0,
        size_wh: tuple[int, int] = (320, 240),
        color_bgr: tuple[int, int, int] = (40, 40, 160),
        first_number: int = 0,
        jpeg_quality: int = 85,
        frames_per_connection: int | None = None,
        frames: Sequence[np.ndarray] | None = None,
    ) -> None:
        self._requested_port = port
        self._frames = list(frames) if frames is not None else None
        self.fps = fps
        self.size_wh = size_wh
        self.color_bgr = color_bgr
        self._quality = jpeg_quality
        self._per_connection = frames_per_connection
        self._lock = threading.Lock()
        self._next_number = first_number
        self._frames_sent = 0
        self._connections_total = 0
        # Each open connection and the event that lets it send (cleared to freeze just that one).
        self._open: dict[socket.socket, threading.Event] = {}
        self._running = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and serve in a background thread. Raises OSError when the port is taken."""
        if self._httpd is not None:
            raise RuntimeError("MjpegServer already started")
        self._httpd = _HttpServer(("127.0.0.1", self._requested_port), self)
        self._running.set()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mjpeg-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kill the server: stop accepting, close every open connection mid-stream. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._running.clear()
        self._flowing.set()  # wake paused handlers so they notice the stop
        with self._lock:
            for flow in self._open.values():
                flow.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            # shutdown() makes the peer see the connection drop now, even while a handler thread
            # still holds the socket object.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def pause(self) -> None:
        """Keep connections open but send nothing (a stalled camera)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Send frames again after `pause`."""
        self._flowing.set()

    def freeze_open_connections(self) -> int:
        """Stall the connections open now, for good (until `stop`); later connections stream normally.

        Models a camera whose old session hangs while it accepts new ones: a client blocked in a read
        on the frozen connection stays blocked until its own timeout. Returns how many were frozen.
        """
        with self._lock:
            for flow in self._open.values():
                flow.clear()
            return len(self._open)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- facts for tests -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (after `start`), else the requested one."""
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        return self._requested_port

    @property
    def url(self) -> str:
        """Stream URL, e.g. ``http://127.0.0.1:41234/stream.mjpg``."""
        return f"http://127.0.0.1:{self.port}{STREAM_PATH}"

    @property
    def frames_sent(self) -> int:
        """Frames written to all clients so far."""
        with self._lock:
            return self._frames_sent

    @property
    def connections_total(self) -> int:
        """Stream requests accepted so far."""
        with self._lock:
            return self._connections_total

    @property
    def open_connections(self) -> int:
        """Streams being served right now."""
        with self._lock:
            return len(self._open)

    # -- serving ---------------------------------------------------------------------------------------
    def _register(self, sock: socket.socket) -> threading.Event:
        flow = threading.Event()
        flow.set()
        with self._lock:
            self._open[sock] = flow
            self._connections_total += 1
        return flow

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)

    def _stream_to(self, wfile: object, flow: threading.Event) -> None:
        write = wfile.write  # type: ignore[attr-defined]
        flush = wfile.flush  # type: ignore[attr-defined]
        period = 1.0 / self.fps
        next_at = time.monotonic()
        sent = 0
        while self._running.is_set():
            if self._per_connection is not None and sent >= self._per_connection:
                return
            if not (self._flowing.is_set() and flow.is_set()):
                time.sleep(0.02)
                next_at = time.monotonic()
                continue
            with self._lock:
                number = self._next_number
                self._next_number += 1
            if self._frames is not None:  # a real clip, played in a loop
                image = self._frames[number % len(self._frames)]
            else:
                image = render_frame(number, self.size_wh, self.color_bgr)
            ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
            if not ok:
                raise RuntimeError("cv2.imencode failed")
            data = jpg.tobytes()
            write(
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                + data
                + b"\r\n"
            )
            flush()
            sent += 1
            with self._lock:
                self._frames_sent += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()


class SilentServer:
    """A TCP port on 127.0.0.1 that completes the handshake and then never says a word.

    The kernel accepts connections into the listen backlog without ``accept()``; a client waiting
    for an HTTP response hangs until its own timeout. Use it to test open timeouts.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        """An HTTP URL on the silent port."""
        return f"http://127.0.0.1:{self.port}{STREAM_PATH}"

    def close(self) -> None:
        """Close the listening socket (and with it the backlog)."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for "server never up" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
