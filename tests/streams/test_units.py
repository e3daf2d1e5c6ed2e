"""Pure parts of `streams`: source-string parsing, URL redaction, Frame checks, buffer, backoff."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streams import Frame, SourceKind, SourceOptions, StreamError, parse_uri, redact_uri
from streams.backoff import Backoff
from streams.buffer import FrameBuffer


# -- parse_uri ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "kind", "target"),
    [
        ("0", SourceKind.DEVICE, 0),
        ("12", SourceKind.DEVICE, 12),
        ("rtsp://10.0.0.5:554/stream1", SourceKind.URL, "rtsp://10.0.0.5:554/stream1"),
        ("RTSPS://cam.local/live", SourceKind.URL, "RTSPS://cam.local/live"),
        ("http://127.0.0.1:8080/video.mjpg", SourceKind.URL, "http://127.0.0.1:8080/video.mjpg"),
        ("https://cdn.example/live/index.m3u8", SourceKind.URL, "https://cdn.example/live/index.m3u8"),
        ("  http://127.0.0.1/x  ", SourceKind.URL, "http://127.0.0.1/x"),
    ],
)
def test_parse_uri_kinds(uri: str, kind: SourceKind, target: str | int) -> None:
    spec = parse_uri(uri)
    assert spec.kind is kind
    assert spec.target == target
    assert spec.is_live


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("foo", "unknown source 'foo': not a file, URL (rtsp/http) or device index"),
        ("", "empty source"),
        ("ftp://host/x.mp4", "unknown source 'ftp://host/x.mp4': scheme 'ftp' is not supported"),
        ("rtmp://host/live", "scheme 'rtmp' is not supported"),
        ("http:///nohost", "the URL has no host"),
        ("-1", "unknown source '-1'"),
        ("missing.mp4", "cannot open video file 'missing.mp4': no such file"),
        ("/nonexistent/dir/clip.mp4", "cannot open video file '/nonexistent/dir/clip.mp4': no such file"),
        # malformed URLs: one line, and the password never shown
        ("rtsp://admin:pw@cam:99999/x", "unknown source 'rtsp://***@cam:99999/x': Port out of range"),
        ("rtsp://admin:pw@cam:abc/", "unknown source 'rtsp://***@cam:abc/': Port could not be cast"),
        ("http://[::1/x", "unknown source 'http://[::1/x': Invalid IPv6 URL"),
    ],
)
def test_parse_uri_refuses(uri: str, message: str) -> None:
    with pytest.raises(StreamError) as info:
        parse_uri(uri)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_uri_file_and_directory(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    spec = parse_uri(str(clip))
    assert (spec.kind, spec.target, spec.is_live) == (SourceKind.FILE, str(clip), False)
    with pytest.raises(StreamError, match="it is a directory"):
        parse_uri(str(tmp_path))


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/ch1", "rtsp://admin:***@10.0.0.5:554/ch1"),
        ("http://user:pw@cam/x.mjpg?a=1", "http://user:***@cam/x.mjpg?a=1"),
        ("rtsp://10.0.0.5/ch1", "rtsp://10.0.0.5/ch1"),
        ("rtsp://admin@10.0.0.5/ch1", "rtsp://admin@10.0.0.5/ch1"),
        ("clip:with:colons.mp4", "clip:with:colons.mp4"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_unknown_url_error_hides_password() -> None:
    with pytest.raises(StreamError) as info:
        parse_uri("ftp://admin:s3cret@host/x")
    assert "s3cret" not in str(info.value)


# -- Frame ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((4, 6, 3), np.uint8), None),
        (np.zeros((4, 6), np.uint8), "must be a (H, W, 3) array, got (4, 6)"),
        (np.zeros((4, 6, 4), np.uint8), "got (4, 6, 4)"),
        (np.zeros((4, 6, 3), np.float32), "must be uint8, got float32"),
        ([[0, 0, 0]], "got list"),
    ],
)
def test_frame_checks_image(image: np.ndarray, error: str | None) -> None:
    if error is None:
        frame = Frame(image=image, index=3, ts=0.5, camera_id="c")
        assert frame.resolution_wh == (6, 4)
    else:
        with pytest.raises(ValueError) as info:
            Frame(image=image, index=0, ts=0.0, camera_id="c")
        assert error in str(info.value)


# -- SourceOptions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, None),
        ({"queue_size": 0}, "queue_size must be >= 1"),
        ({"backoff_initial_s": 0}, "backoff_initial_s must be > 0"),
        ({"backoff_initial_s": 2, "backoff_max_s": 1}, "backoff_max_s (1) must be >= backoff_initial_s (2)"),
        ({"backoff_jitter": 1.0}, "backoff_jitter must be in [0, 1)"),
        ({"stall_timeout_s": -1}, "stall_timeout_s must be > 0"),
        ({"read_timeout_s": 0}, "read_timeout_s must be > 0"),
        ({"max_reconnects": -1}, "max_reconnects must be >= 0"),
    ],
)
def test_source_options_validation(kwargs: dict[str, float], error: str | None) -> None:
    if error is None:
        options = SourceOptions(**kwargs)  # type: ignore[arg-type]
        assert options.effective_read_timeout_s == options.stall_timeout_s + 1.0
    else:
        with pytest.raises(ValueError) as info:
            SourceOptions(**kwargs)  # type: ignore[arg-type]
        assert error in str(info.value)


# -- FrameBuffer ------------------------------------------------------------------------------------------
def test_buffer_drop_oldest_keeps_newest() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(2)
    dropped = [buffer.put_drop_oldest(i) for i in range(5)]
    assert dropped == [0, 0, 1, 1, 1]
    assert len(buffer) == 2
    assert buffer.high_water == 2
    buffer.finish()
    assert [buffer.get(), buffer.get(), buffer.get()] == [3, 4, None]


def test_buffer_put_wait_blocks_until_consumed() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(1)
    assert buffer.put_wait(1)
    done = threading.Event()

    def produce() -> None:
        buffer.put_wait(2)
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    assert not done.wait(0.2), "put_wait returned while the buffer was full"
    assert buffer.get() == 1
    assert done.wait(2.0)
    assert buffer.get() == 2
    thread.join()


def test_buffer_close_releases_waiters_and_discards() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(1)
    buffer.put_wait(1)
    results: list[object] = []
    producer = threading.Thread(target=lambda: results.append(buffer.put_wait(2)))
    producer.start()
    time.sleep(0.1)
    assert buffer.close() == 1
    producer.join(2.0)
    assert results == [False]
    assert buffer.get() is None
    assert buffer.put_drop_oldest(3) == 0 and len(buffer) == 0


def test_buffer_get_blocks_until_finish() -> None:
    buffer: FrameBuffer[int] = FrameBuffer(3)
    got: list[int | None] = []
    consumer = threading.Thread(target=lambda: got.append(buffer.get()))
    consumer.start()
    time.sleep(0.1)
    assert got == []
    buffer.finish()
    consumer.join(2.0)
    assert got == [None]


def test_buffer_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        FrameBuffer(0)


# -- Backoff ----------------------------------------------------------------------------------------------
def test_backoff_doubles_caps_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, 0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_stays_in_band_and_under_cap() -> None:
    backoff = Backoff(1.0, 8.0, 0.25, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(40)]
    bases = [1.0, 2.0, 4.0] + [8.0] * 37
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.75 <= delay <= min(base * 1.25, 8.0)
    assert len({round(d, 6) for d in delays[3:]}) > 10, "jitter should vary the capped delays"


@pytest.mark.parametrize(
    ("args", "error"),
    [((0.0, 1.0, 0.1), "initial_s must be > 0"), ((2.0, 1.0, 0.1), "maximum_s"), ((1.0, 2.0, 1.0), "jitter")],
)
def test_backoff_validation(args: tuple[float, float, float], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Backoff(*args)


# -- import weight --------------------------------------------------------------------------------------
def test_import_streams_does_not_import_cv2() -> None:
    code = "import sys, streams; assert 'cv2' not in sys.modules, 'cv2 imported'; print(streams.open_source)"
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=repo, check=False
    )
    assert result.returncode == 0, result.stderr
