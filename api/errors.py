"""Errors the server raises outside a request; the CLI maps `ServerError` to one line and an exit code.

Inside a request, problems become HTTP responses with a one-line `detail` instead (see `api.routes`).
"""

from __future__ import annotations


class ServerError(Exception):
    """Base of the server's own errors. The message is one line, fit to show a person."""


class SettingsError(ServerError, ValueError):
    """The deployment settings (environment variables) are missing, invalid or unsafe."""


class AdminError(ServerError, ValueError):
    """An administrative command was refused (unknown district, duplicate user, bad key, ...)."""


class StorageError(ServerError):
    """The evidence store could not write or read a blob."""


class SchemaVersionError(ServerError):
    """The database schema is not at the revision this code expects (run `phatnguoi db upgrade`)."""


class DatabaseUnavailableError(ServerError):
    """The database cannot be opened or reached (the message names its URL, never its password)."""


class RefusedError(Exception):
    """A request is refused: `status` is the HTTP status, `reason` one line for the client.

    Raised by services; routes turn it into an HTTP response. Nothing was stored.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
