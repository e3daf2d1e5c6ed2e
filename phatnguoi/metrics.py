"""Health and Prometheus metrics of an edge worker, served on a small HTTP endpoint.

`/metrics` is the Prometheus text format (prometheus_client); `/healthz` answers JSON with every
camera's stream state and the outbox, 200 when the worker is healthy and 503 otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)


class EdgeMetrics:
    """The worker's metrics, labelled by camera where they are per camera."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_in = Counter("phatnguoi_frames_in", "Frames read from the camera", ["camera"], registry=r)
        self.frames_out = Counter("phatnguoi_frames_processed", "Frames processed", ["camera"], registry=r)
        self.frames_dropped = Gauge(
            "phatnguoi_frames_dropped", "Frames dropped by the source (live)", ["camera"], registry=r
        )
        self.fps_in = Gauge("phatnguoi_fps_in", "Frame rate read from the camera", ["camera"], registry=r)
        self.fps_out = Gauge("phatnguoi_fps_processed", "Frame rate processed", ["camera"], registry=r)
        self.reconnects = Gauge(
            "phatnguoi_stream_reconnects", "Reconnections of the camera stream", ["camera"], registry=r
        )
        self.gaps = Counter(
            "phatnguoi_stream_gaps",
            "Interruptions of a camera's frames (outage, stall)",
            ["camera"],
            registry=r,
        )
        self.gap_seconds = Counter(
            "phatnguoi_stream_gap_seconds",
            "Seconds without frames in those interruptions",
            ["camera"],
            registry=r,
        )
        self.stream_up = Gauge(
            "phatnguoi_stream_live", "1 when the camera stream delivers frames", ["camera"], registry=r
        )
        self.detector_ms = Histogram(
            "phatnguoi_detector_ms",
            "Detector time per batch (ms)",
            buckets=(5, 10, 20, 30, 50, 75, 100, 150, 250, 500),
            registry=r,
        )
        self.events = Counter(
            "phatnguoi_violations", "Violations established", ["camera", "rule"], registry=r
        )
        self.ocr_queue = Gauge(
            "phatnguoi_ocr_queue_depth",
            "Violations waiting for their plate to be read",
            ["camera"],
            registry=r,
        )
        self.plates_read = Counter(
            "phatnguoi_plates_read", "Violations with a readable plate", ["camera"], registry=r
        )
        self.outbox_depth = Gauge(
            "phatnguoi_outbox_depth", "Items waiting in the outbox", ["kind"], registry=r
        )
        self.outbox_age = Gauge(
            "phatnguoi_outbox_oldest_age_seconds", "Age of the oldest waiting item", ["kind"], registry=r
        )
        self.upload_errors = Gauge("phatnguoi_upload_errors", "Failed upload attempts", registry=r)
        self.uploaded = Gauge("phatnguoi_uploaded", "Items acknowledged by the server", registry=r)
        self.alerts = Gauge(
            "phatnguoi_alerts", "Operator alerts raised (disk full, refused uploads)", registry=r
        )

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("metrics http: " + format, *args)

    def do_GET(self) -> None:
        if self.path == "/metrics":
            body, status, ctype = self.server.metrics.render(), 200, CONTENT_TYPE_LATEST
        elif self.path == "/healthz":
            health = self.server.health()
            ok = bool(health.get("ok"))
            body, status, ctype = json.dumps(health).encode(), 200 if ok else 503, "application/json"
        else:
            body, status, ctype = b"not found\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: EdgeMetrics, health: Callable[[], dict[str, Any]]):
        super().__init__(address, _Handler)
        self.metrics = metrics
        self.health = health


class MetricsServer:
    """`/metrics` and `/healthz` on a background thread."""

    def __init__(
        self, metrics: EdgeMetrics, health: Callable[[], dict[str, Any]], host: str, port: int
    ) -> None:
        self._server = _Server((host, port), metrics, health)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
