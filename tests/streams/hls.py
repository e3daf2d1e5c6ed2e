"""A tiny HLS (HTTP Live Streaming) VOD on loopback: numbered frames in MPEG-TS segments + playlist.

Segments are written with OpenCV's FFmpeg writer (MPEG-4 part 2 in MPEG-TS, the one encoder the
opencv wheels have for that container) and served by a threaded ``http.server`` on 127.0.0.1.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from tests.streams.mjpeg_server import render_frame


def write_hls(folder: Path, segments: int = 3, frames_per_segment: int = 20, fps: float = 10.0) -> int:
    """Write ``index.m3u8`` and its ``seg<k>.ts`` into ``folder``; frames are numbered from 0.

    Returns:
        The number of frames written.
    """
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{int(frames_per_segment / fps + 0.999)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    number = 0
    for k in range(segments):
        writer = cv2.VideoWriter(
            str(folder / f"seg{k}.ts"), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), fps, (320, 240)
        )
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write MPEG-TS here")
        for _ in range(frames_per_segment):
            writer.write(render_frame(number, (320, 240), (40, 40, 160)))
            number += 1
        writer.release()
        lines += [f"#EXTINF:{frames_per_segment / fps:.3f},", f"seg{k}.ts"]
    lines.append("#EXT-X-ENDLIST")
    (folder / "index.m3u8").write_text("\n".join(lines) + "\n")
    return number


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL (``http://127.0.0.1:<port>/``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2.0)
