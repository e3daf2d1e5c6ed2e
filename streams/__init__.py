"""Video sources (file, RTSP, HTTP MJPEG/HLS, device) with a reader thread, drop policy and reconnect.

Light on purpose: importing ``streams`` does not import OpenCV; `open_source` does, when called.

    from streams import open_source, SourceOptions

    with open_source("rtsp://cam/1", camera_id="cam1") as source:
        for frame in source:          # Frame(image BGR uint8 (H, W, 3), index, ts, camera_id)
            ...
        print(source.health())        # state, counters, last_error, measured fps
"""

from streams.errors import StreamError
from streams.frame import Frame
from streams.source import (
    HealthState,
    Source,
    SourceHealth,
    SourceOptions,
    VideoSource,
    open_source,
)
from streams.uri import SourceKind, parse_uri, redact_uri

__all__ = [
    "Frame",
    "HealthState",
    "Source",
    "SourceHealth",
    "SourceKind",
    "SourceOptions",
    "StreamError",
    "VideoSource",
    "open_source",
    "parse_uri",
    "redact_uri",
]
