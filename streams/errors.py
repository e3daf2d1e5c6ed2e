"""Errors raised by `streams`."""

from __future__ import annotations


class StreamError(Exception):
    """A video source cannot be used.

    The message is one line that names the source and says what is wrong, fit to show as is on the
    command line, e.g. ``cannot open video file 'x.mp4': not a readable video``.
    """
