"""Live sources against a real MJPEG camera on loopback: reading, kill and restart, a server that is
never up, stalls, blocked reads, slow consumers and memory. Short timeouts via `SourceOptions`."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams import (
    Frame,
    HealthState,
    Source,
    SourceHealth,
    SourceOptions,
    StreamError,
    VideoSource,
    open_source,
)
from tests.streams.hls import serve_directory, write_hls
from tests.streams.mjpeg_server import MjpegServer, SilentServer, body_color, decode_frame_number, free_port

FAST = SourceOptions(
    backoff_initial_s=0.1,
    backoff_max_s=0.4,
    backoff_jitter=0.1,
    healthy_reset_s=1.0,
    stall_timeout_s=0.5,
    open_timeout_s=1.0,
    close_timeout_s=1.0,
)


def options(**changes: Any) -> SourceOptions:
    """`FAST` with some fields changed."""
    return dataclasses.replace(FAST, **changes)


class HealthRecorder:
    """Samples ``source.health()`` every few milliseconds in a thread: the states seen, in order."""

    def __init__(self, source: VideoSource, every_s: float = 0.005) -> None:
        self.source = source
        self.states: list[HealthState] = []
        self.max_queued = 0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-recorder", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            health = self.source.health()
            self.max_queued = max(self.max_queued, health.queued)
            if not self.states or self.states[-1] is not health.state:
                self.states.append(health.state)
            self._stop.wait(self._every)

    def __enter__(self) -> HealthRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def take(frames: Iterator[Frame], n: int) -> list[Frame]:
    return [next(frames) for _ in range(n)]


def assert_gaps_are_drops(seen: list[tuple[int, int]]) -> None:
    """Between delivered frames, our index advances exactly as the server's frame number did.

    Args:
        seen: (frame.index, frame number decoded from the image) of each delivered frame, in order.
    """
    for (index_a, number_a), (index_b, number_b) in itertools.pairwise(seen):
        assert index_b > index_a
        assert number_b - number_a == index_b - index_a


def numbered(frames: list[Frame]) -> list[tuple[int, int]]:
    return [(f.index, decode_frame_number(f.image)) for f in frames]


def test_reads_a_live_mjpeg_stream(mjpeg_server: MjpegServer) -> None:
    with open_source(mjpeg_server.url, camera_id="gate1", options=FAST) as source:
        assert source.realtime and source.queue_size == 2
        frames = take(iter(source), 30)
        health = source.health()
        assert source.resolution_wh == (320, 240)
    assert all(f.camera_id == "gate1" and f.image.shape == (240, 320, 3) for f in frames)
    assert_gaps_are_drops(numbered(frames))
    assert frames[0].index == 0
    assert abs(frames[-1].ts - time.time()) < 2.0
    assert all(b.ts >= a.ts for a, b in itertools.pairwise(frames))
    assert health.state is HealthState.LIVE
    assert health.reconnects == 0 and health.last_error is None
    assert 10.0 <= health.fps_in <= 20.0  # the server sends 15 fps
    assert health.frames_read - (health.frames_delivered + health.frames_dropped + health.queued) in (0, 1)
    assert source.health().state is HealthState.ENDED


def test_server_killed_then_restarted_on_the_same_port() -> None:
    first = MjpegServer(fps=15, color_bgr=(40, 40, 160)).start()
    port = first.port
    with open_source(first.url, camera_id="cam-k", options=FAST) as source, HealthRecorder(source) as rec:
        frames = iter(source)
        old = take(frames, 5)
        assert all(body_color(f.image)[2] > 120 for f in old)  # red: the first server
        first.stop()
        wait_for(lambda: source.health().reconnects >= 2, 5.0, "reconnect attempts while the server is down")
        down = source.health()
        assert down.state in (HealthState.BACKOFF, HealthState.CONNECTING)
        assert down.last_error is not None and f"127.0.0.1:{port}" in down.last_error
        with MjpegServer(port=port, fps=15, color_bgr=(160, 40, 40), first_number=1000) as second:
            deadline = time.monotonic() + 10.0
            new: list[Frame] = []
            for frame in frames:
                if body_color(frame.image)[0] > 120:  # blue: the restarted server
                    new.append(frame)
                    if len(new) == 5:
                        break
                assert time.monotonic() < deadline, "no frame from the restarted server"
            assert second.connections_total >= 1
        health = source.health()
    assert all(decode_frame_number(f.image) >= 1000 for f in new)
    assert new[0].index > old[-1].index  # indices keep counting across reconnects
    assert health.reconnects >= 2
    # LIVE → (STALLED/)BACKOFF ⇄ CONNECTING … → LIVE again.
    assert rec.states[0] in (HealthState.CONNECTING, HealthState.LIVE)
    assert HealthState.BACKOFF in rec.states and HealthState.CONNECTING in rec.states[1:]
    back = rec.states.index(HealthState.BACKOFF)
    assert HealthState.LIVE in rec.states[:back] and HealthState.LIVE in rec.states[back:]


def test_server_never_up_backs_off_without_busy_looping() -> None:
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    source = open_source(url, camera_id="nobody", options=FAST)
    cpu_start = time.process_time()
    with HealthRecorder(source, every_s=0.02) as rec:
        time.sleep(3.0)
    cpu_used = time.process_time() - cpu_start
    health = source.health()
    start = time.monotonic()
    source.close()
    closing = time.monotonic() - start
    # Delays 0.1, 0.2, 0.4, 0.4, … (±10 %) fit about 9 attempts in 3 s; a busy loop would make thousands.
    assert 4 <= health.reconnects <= 15
    assert set(rec.states) <= {HealthState.CONNECTING, HealthState.BACKOFF}
    assert HealthState.BACKOFF in rec.states
    assert health.frames_read == 0 and health.last_frame_age_s is None
    assert health.last_error == f"cannot open {url}"
    assert cpu_used < 1.5, f"{cpu_used:.2f} s of CPU in 3 s: busy loop?"
    assert closing < 0.5
    assert list(source) == []
    assert source.health().state is HealthState.ENDED


def test_max_reconnects_gives_up_and_ends_iteration() -> None:
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    with open_source(url, camera_id="give-up", options=options(max_reconnects=2)) as source:
        start = time.monotonic()
        assert list(source) == []  # iteration ends by itself once the source FAILED
        assert time.monotonic() - start < 5.0
        health = source.health()
    assert health.state is HealthState.FAILED
    assert health.reconnects == 2
    assert health.last_error is not None and "after 2 reconnects" in health.last_error


def test_stalled_stream_is_detected_and_recovers(mjpeg_server: MjpegServer) -> None:
    with (
        open_source(mjpeg_server.url, camera_id="stall", options=FAST) as source,
        HealthRecorder(source) as rec,
    ):
        frames = iter(source)
        before = take(frames, 3)
        mjpeg_server.pause()
        wait_for(lambda: source.health().state is HealthState.STALLED, 3.0, "STALLED")
        stalled = source.health()
        assert stalled.last_error is not None and stalled.last_error.startswith("stalled: no frame for")
        wait_for(lambda: source.health().reconnects >= 1, 5.0, "a reconnect after the stall")
        mjpeg_server.resume()
        after = take(frames, 3)
    assert decode_frame_number(after[-1].image) > decode_frame_number(before[-1].image)
    assert after[0].index > before[-1].index
    assert mjpeg_server.connections_total >= 2
    stall_at = rec.states.index(HealthState.STALLED)
    assert HealthState.LIVE in rec.states[stall_at:]


def test_blocked_read_is_abandoned_and_does_not_delay_recovery_or_close(mjpeg_server: MjpegServer) -> None:
    # FFmpeg would keep the frozen read blocked for 30 s; the watchdog must not wait for it.
    slow_ffmpeg = options(read_timeout_s=30.0)
    source = open_source(mjpeg_server.url, camera_id="frozen", options=slow_ffmpeg)
    try:
        frames = iter(source)
        take(frames, 3)
        assert mjpeg_server.freeze_open_connections() == 1
        frozen_at = time.monotonic()
        after = take(frames, 3)  # from a new connection
        recovered_in = time.monotonic() - frozen_at
        health = source.health()
        first_worker = [t for t in threading.enumerate() if t.name == "stream-frozen-conn0"]
        assert first_worker and first_worker[0].is_alive(), "the frozen read should still be blocked"
        start = time.monotonic()
        source.close()
        closing = time.monotonic() - start
    finally:
        source.close()
        mjpeg_server.stop()  # unblocks the abandoned read; its thread then releases the capture
    assert recovered_in < 6.0
    assert health.reconnects >= 1
    assert len({decode_frame_number(f.image) for f in after}) == 3
    assert closing < slow_ffmpeg.close_timeout_s + 0.5
    first_worker[0].join(3.0)
    assert not first_worker[0].is_alive()


def test_close_returns_while_open_is_blocked() -> None:
    with SilentServer() as silent:
        source = open_source(silent.url, camera_id="silent", options=options(open_timeout_s=10.0))
        wait_for(lambda: any(t.name == "stream-silent-conn0" for t in threading.enumerate()), 2.0, "worker")
        time.sleep(0.3)
        assert source.health().state is HealthState.CONNECTING
        start = time.monotonic()
        source.close()
        assert time.monotonic() - start < 1.5
        assert source.health().state is HealthState.ENDED


def test_open_timeout_leads_to_backoff() -> None:
    with (
        SilentServer() as silent,
        open_source(silent.url, camera_id="mute", options=options(open_timeout_s=0.3)) as source,
    ):
        wait_for(lambda: source.health().reconnects >= 1, 3.0, "a reconnect after the open timeout")
        health = source.health()
    assert health.frames_read == 0
    assert health.last_error == f"cannot open {silent.url}: no answer within 0.3 s"


def test_slow_consumer_drops_oldest_and_memory_stays_bounded() -> None:
    # 640x480 at 20 fps: ~0.9 MB per decoded frame, ~18 MB/s that must not pile up.
    with (
        MjpegServer(fps=20, size_wh=(640, 480)) as server,
        open_source(server.url, camera_id="slow", options=FAST) as source,
    ):
        frames = iter(source)
        take(frames, 2)  # warm up: connection and decoder allocated
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            seen: list[tuple[int, int]] = []  # not the frames: holding them would be our own leak
            with HealthRecorder(source, every_s=0.01) as rec:
                start = time.monotonic()
                while time.monotonic() - start < 4.0:
                    frame = next(frames)
                    seen.append((frame.index, decode_frame_number(frame.image)))
                    del frame
                    time.sleep(0.3)
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        health = source.health()
        high_water = source.queue_high_water
    frame_mb = 640 * 480 * 3 / 1e6
    read_mb = health.frames_read * frame_mb
    assert health.frames_dropped > 20
    assert health.frames_read > 50
    assert rec.max_queued <= 2 and high_water <= 2
    assert_gaps_are_drops(seen)
    # Bounded: the queue (2) plus frames in flight, nowhere near what was read.
    assert (peak - base) / 1e6 < 10 * frame_mb, (
        f"peak grew {(peak - base) / 1e6:.1f} MB (read {read_mb:.0f} MB)"
    )
    assert (current - base) / 1e6 < 6 * frame_mb


def test_live_source_without_realtime_applies_back_pressure(mjpeg_server: MjpegServer) -> None:
    with open_source(
        mjpeg_server.url, camera_id="bp", options=options(realtime=False, queue_size=3)
    ) as source:
        frames = iter(source)
        got = []
        for _ in range(6):
            got.append(next(frames))
            time.sleep(0.2)
        health = source.health()
    assert not source.realtime
    assert health.frames_dropped == 0
    assert [f.index for f in got] == list(range(6))
    assert health.state is HealthState.LIVE


@pytest.mark.parametrize(
    ("healthy_reset_s", "grows"),
    [(100.0, True), (0.1, False)],
    ids=["flapping-keeps-growing", "healthy-resets"],
)
def test_backoff_resets_only_after_healthy_reading(
    healthy_reset_s: float, grows: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Each connection delivers 6 frames at 20 fps (0.25 s of good reading) and is then dropped.
    caplog.set_level(logging.WARNING, logger="streams")
    opts = options(
        backoff_initial_s=0.05, backoff_max_s=0.4, backoff_jitter=0.0, healthy_reset_s=healthy_reset_s
    )
    with (
        MjpegServer(fps=20, frames_per_connection=6) as server,
        open_source(server.url, camera_id="flap", options=opts) as source,
    ):
        wait_for(lambda: source.health().reconnects >= 4, 10.0, "four reconnects")
    delays = [
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"reconnecting to .* in ([0-9.]+) s", r.getMessage()))
    ]
    assert len(delays) >= 4
    if grows:
        assert delays[:4] == [0.05, 0.1, 0.2, 0.4]
    else:
        assert delays[:4] == [0.05, 0.05, 0.05, 0.05]
    # Every log line of the source names its camera.
    assert all(r.getMessage().startswith("[flap] ") for r in caplog.records if r.name.startswith("streams"))


def test_missing_device_backs_off() -> None:
    index = 63
    if Path(f"/dev/video{index}").exists():
        pytest.skip(f"/dev/video{index} exists on this machine")
    with open_source(str(index), camera_id="usb", options=FAST) as source:
        wait_for(lambda: source.health().reconnects >= 1, 3.0, "a reconnect to the missing device")
        health: SourceHealth = source.health()
    assert health.last_error == f"cannot open device {index}"
    assert health.frames_read == 0


def test_unknown_source_raises_before_any_thread() -> None:
    before = threading.active_count()
    with pytest.raises(
        StreamError, match=r"^unknown source 'foo': not a file, URL \(rtsp/http\) or device index$"
    ):
        open_source("foo")
    assert threading.active_count() == before


def test_hls_playlist_over_http(tmp_path: Path) -> None:
    total = write_hls(tmp_path)
    with serve_directory(tmp_path) as base:
        url = base + "index.m3u8"
        # No drops (back-pressure) and no reconnect, so the VOD playlist is read exactly once.
        opts = options(realtime=False, max_reconnects=0, stall_timeout_s=2.0, open_timeout_s=3.0)
        with open_source(url, camera_id="hls", options=opts) as source:
            seen = [(f.index, decode_frame_number(f.image)) for f in source]
            health = source.health()
    assert seen == [(i, i) for i in range(total)]
    assert source.resolution_wh == (320, 240)
    # A live source whose stream ends reconnects; with max_reconnects=0 it gives up.
    assert health.state is HealthState.FAILED
    assert health.last_error is not None and "ended or lost" in health.last_error


def test_close_from_another_thread_ends_iteration() -> None:
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    source: Source = open_source(url, camera_id="shutdown", options=FAST)
    assert isinstance(source, Source)
    finished = threading.Event()

    def consume() -> None:
        for _ in source:
            pass
        finished.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(0.3)
    assert not finished.is_set()
    source.close()
    assert finished.wait(1.5), "iteration did not end after close()"
    assert not any(t.name.startswith("stream-shutdown") and t.is_alive() for t in threading.enumerate())
