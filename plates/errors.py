"""Errors raised by the plate reader.

`PlateError` is what a caller of `plates` catches for bad input (an unreadable file, an empty crop,
something that is not an image). Model failures stay `models.ModelError` / `models.runtime.InferenceError`.
Every message is one line that names the input, so the CLI can print it as it is.
"""

from __future__ import annotations


class PlateError(ValueError):
    """A plate image cannot be read: missing or unreadable file, zero-size crop, not an image."""
