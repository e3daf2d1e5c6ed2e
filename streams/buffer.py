"""`FrameBuffer`: the bounded queue between a reader thread and the consumer.

Two ways in, chosen by the source: `FrameBuffer.put_drop_oldest` for live cameras (the newest frame
always gets in; the oldest waiting one is dropped and counted by the caller) and
`FrameBuffer.put_wait` for files (the reader blocks while the buffer is full: back-pressure, nothing
lost). A ``collections.deque`` under one condition variable makes drop-and-append a single step,
which ``queue.Queue`` cannot do without a race between the full check and the put.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameBuffer(Generic[T]):
    """Bounded FIFO shared by one producer thread and any number of consumers.

    Args:
        capacity: most items held at once (>= 1).

    Raises:
        ValueError: capacity < 1.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._finished = False  # producer is done; consumers drain what is left
        self._closed = False  # everything is thrown away; nobody waits any more
        self._high_water = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def high_water(self) -> int:
        """The most items ever held at once."""
        with self._cond:
            return self._high_water

    @property
    def closed(self) -> bool:
        """True after `close`."""
        with self._cond:
            return self._closed

    def put_drop_oldest(self, item: T) -> int:
        """Append ``item``, dropping the oldest items if the buffer is full. Never blocks.

        Returns:
            How many items were dropped to make room (0 or 1), or 0 when the buffer is closed or
            finished (the item is then discarded).
        """
        with self._cond:
            if self._closed or self._finished:
                return 0
            dropped = 0
            while len(self._items) >= self.capacity:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self._high_water = max(self._high_water, len(self._items))
            self._cond.notify()
            return dropped

    def put_wait(self, item: T) -> bool:
        """Append ``item``, blocking while the buffer is full.

        Returns:
            True when the item was queued; False when the buffer was closed (or finished) first.
        """
        with self._cond:
            while not (self._closed or self._finished) and len(self._items) >= self.capacity:
                self._cond.wait()
            if self._closed or self._finished:
                return False
            self._items.append(item)
            self._high_water = max(self._high_water, len(self._items))
            self._cond.notify_all()
            return True

    def get(self) -> T | None:
        """Take the oldest item, blocking until there is one.

        Returns:
            The item, or None once the buffer is finished and drained, or closed.
        """
        with self._cond:
            while not self._items and not (self._closed or self._finished):
                # A timed wait keeps a blocked consumer responsive to Ctrl-C on every platform.
                self._cond.wait(0.5)
            if self._closed or not self._items:
                return None
            item = self._items.popleft()
            # Wake a producer blocked in put_wait.
            self._cond.notify_all()
            return item

    def finish(self) -> None:
        """The producer is done: consumers get what is queued, then None. Idempotent."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> int:
        """Throw away what is queued and release every waiter. Idempotent.

        Returns:
            How many queued items were discarded.
        """
        with self._cond:
            discarded = len(self._items)
            self._items.clear()
            self._closed = True
            self._cond.notify_all()
            return discarded
