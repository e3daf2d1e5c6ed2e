"""What a source string names: a video file, a stream URL or a capture device.

Pure functions, no OpenCV: `parse_uri` decides the kind of source and refuses anything else with a
`StreamError` that names it; `redact_uri` hides passwords before a URL reaches a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from streams.errors import StreamError

#: URL schemes read as live streams through OpenCV's FFmpeg backend (HLS is ``http(s)://…/x.m3u8``).
LIVE_SCHEMES: frozenset[str] = frozenset({"rtsp", "rtsps", "http", "https"})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# scheme:// then user info up to the last "@" before the path: what redact_uri hides when urlsplit fails
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


class SourceKind(StrEnum):
    """Kind of video source."""

    FILE = "file"
    URL = "url"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A parsed source string.

    Attributes:
        kind: file, URL or device.
        target: what to hand to ``cv2.VideoCapture``: a path string, a URL, or a device index (int)
            or device node path (``/dev/video0``).
        display: the source as it may appear in logs and error messages (passwords hidden).
    """

    kind: SourceKind
    target: str | int
    display: str

    @property
    def is_live(self) -> bool:
        """True for URLs and devices: frames arrive in real time whether or not anyone reads them."""
        return self.kind is not SourceKind.FILE


def redact_uri(uri: str) -> str:
    """Hide the password of a URL's user info (``rtsp://admin:secret@cam/`` → ``rtsp://admin:***@cam/``).

    Strings that are not URLs with a password come back unchanged.
    """
    if not _SCHEME.match(uri):
        return uri
    try:
        parts = urlsplit(uri)
        password, port = parts.password, parts.port
    except ValueError:  # not a well-formed URL (a bad port, a broken IPv6 host): hide any user info
        return _USERINFO.sub(r"\1***@", uri)
    if password is None:
        return uri
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_uri(uri: str) -> SourceSpec:
    """Decide what kind of source ``uri`` names.

    Args:
        uri: a file path, an ``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` URL (MJPEG, HLS),
            or a device index such as ``"0"``. A path that exists but is neither a regular file nor a
            directory (``/dev/video0``) is taken as a capture device.

    Returns:
        The parsed `SourceSpec`. Files are only checked to exist here, not to be videos.

    Raises:
        StreamError: empty string, unsupported URL scheme, URL without host, missing file, directory,
            or a string that is none of the above.
    """
    text = uri.strip()
    shown = redact_uri(text)
    if not text:
        raise StreamError("empty source: expected a file, URL (rtsp/http) or device index")
    if text.isascii() and text.isdigit():
        return SourceSpec(SourceKind.DEVICE, int(text), f"device {int(text)}")
    match = _SCHEME.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme not in LIVE_SCHEMES:
            raise StreamError(
                f"unknown source '{shown}': scheme '{scheme}' is not supported (rtsp, rtsps, http, https)"
            )
        try:
            parts = urlsplit(text)
            host, _port = parts.hostname, parts.port
        except ValueError as e:  # "Port out of range 0-65535", "Invalid IPv6 URL", ...
            raise StreamError(f"unknown source '{shown}': {e}") from None
        if not host:
            raise StreamError(f"unknown source '{shown}': the URL has no host")
        return SourceSpec(SourceKind.URL, text, shown)
    path = Path(text).expanduser()
    if path.is_file():
        return SourceSpec(SourceKind.FILE, str(path), text)
    if path.is_dir():
        raise StreamError(f"cannot open video file '{text}': it is a directory")
    if path.exists():
        return SourceSpec(SourceKind.DEVICE, str(path), f"device {text}")
    if path.suffix or "/" in text or "\\" in text or text.startswith((".", "~")):
        raise StreamError(f"cannot open video file '{text}': no such file")
    raise StreamError(f"unknown source '{text}': not a file, URL (rtsp/http) or device index")
