"""The loopback MJPEG camera itself: frames survive JPEG, and OpenCV's FFmpeg backend reads the stream."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.streams.mjpeg_server import MjpegServer, body_color, decode_frame_number, render_frame


@pytest.mark.parametrize("number", [0, 1, 2, 255, 256, 4097, 65535])
@pytest.mark.parametrize("color", [(40, 40, 160), (160, 40, 40), (0, 0, 0), (255, 255, 255)])
def test_frame_number_and_colour_survive_jpeg(number: int, color: tuple[int, int, int]) -> None:
    image = render_frame(number, (320, 240), color)
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    decoded = cv2.imdecode(np.frombuffer(jpg.tobytes(), np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert decode_frame_number(decoded) == number
    assert all(abs(a - b) <= 6 for a, b in zip(body_color(decoded), color, strict=True))


def test_opencv_ffmpeg_reads_the_stream(mjpeg_server: MjpegServer) -> None:
    capture = cv2.VideoCapture(
        mjpeg_server.url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000],
    )
    try:
        assert capture.isOpened()
        numbers = []
        for _ in range(5):
            ok, image = capture.read()
            assert ok
            assert image.shape == (240, 320, 3)
            numbers.append(decode_frame_number(image))
    finally:
        capture.release()
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    assert mjpeg_server.connections_total == 1


def test_stop_kills_open_connections_and_port_can_be_reused(mjpeg_server: MjpegServer) -> None:
    capture = cv2.VideoCapture(mjpeg_server.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000])
    try:
        assert capture.read()[0]
        port = mjpeg_server.port
        mjpeg_server.stop()
        # Frames already in flight may still arrive; then the stream must end, not hang.
        reads = [capture.read()[0] for _ in range(30)]
        assert not reads[-1]
    finally:
        capture.release()
    with MjpegServer(port=port) as again:
        assert again.port == port
