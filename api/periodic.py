"""A daemon thread that runs one round of background work every `interval_s` until stopped.

Shared by the penalty-webhook delivery and the SMS outbox: each subclass only says what a round does.
A failing round is logged and the next one runs on schedule.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicThread:
    """Calls `round()` every `interval_s` seconds in a daemon thread named `name`."""

    name = "periodic"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def round(self) -> None:
        """One round of work; subclasses override."""
        raise NotImplementedError

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the current round (waits at most `timeout_s`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.round()
            except Exception:
                log.exception("%s round failed", self.name)
