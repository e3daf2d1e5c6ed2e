"""External traffic-light state: controller feeds that take precedence over the camera.

A city's signal controller knows the phase exactly; when its state is available the rules should use
it instead of reading lamps from pixels. This module holds the feed side of that, with no OpenCV
and no numpy, so it imports anywhere:

- `SignalSource`: the small protocol every feed implements (`reading(light_id, ts)`).
- `FileSignalFeed`: a schedule of (ts, light_id, state) rows from a JSONL or CSV file, e.g. a
  controller log replayed against a recorded video.
- `HttpSignalFeed`: polls a URL that answers JSON ``{light_id: state, ...}`` in a background thread
  (stdlib `urllib`, with a timeout), so a slow controller never blocks the frame loop.
- `MqttSignalFeed`: subscribes to ``<prefix>/<light_id>`` topics on an MQTT broker (optional:
  needs the pure-Python ``paho-mqtt`` package, imported only when such a feed is built).
- `FileFeedConfig` / `HttpFeedConfig` / `MqttFeedConfig` (strict pydantic, chosen by ``type``) and
  `open_feed`.

Feeds only report what they were told and when; deciding that a feed is stale and falling back to
the camera is `violations.signal.SignalReader`'s job.
"""

from __future__ import annotations

import bisect
import csv
import http.client
import importlib
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from violations.types import SignalState

logger = logging.getLogger(__name__)

#: The four states of the contract, and the spellings controller logs use for them.
_STATES: dict[str, SignalState] = {
    "red": "red",
    "amber": "amber",
    "yellow": "amber",
    "green": "green",
    "unknown": "unknown",
    "off": "unknown",
    "dark": "unknown",
}

#: Largest HTTP answer read; a controller status document is a few hundred bytes.
_MAX_BODY = 64 * 1024


class SignalError(ValueError):
    """A signal configuration, frame or feed document is invalid. One line that names what and where."""


def parse_state(value: object) -> SignalState:
    """Normalise a controller's state word to a `SignalState`.

    Accepts red / amber / green / unknown, case-insensitive, plus "yellow" (amber) and "off" /
    "dark" (unknown).

    Raises:
        SignalError: anything else, naming the value.
    """
    if isinstance(value, str):
        state = _STATES.get(value.strip().lower())
        if state is not None:
            return state
    raise SignalError(f"unknown signal state {value!r} (expected one of {', '.join(sorted(_STATES))})")


@dataclass(frozen=True, slots=True)
class FeedReading:
    """What a feed last said about one light.

    Attributes:
        state: the light's state.
        since_ts: when that state began, in the caller's time base (frame timestamps).
        updated_ts: when the feed last confirmed it; the caller judges staleness from this.
    """

    state: SignalState
    since_ts: float
    updated_ts: float


@runtime_checkable
class SignalSource(Protocol):
    """An external source of light states (controller log, controller API, message bus)."""

    def reading(self, light_id: str, ts: float) -> FeedReading | None:
        """The state of `light_id` at time `ts` (frame time base), or None when the feed has none."""
        ...


class FileSignalFeed:
    """A fixed schedule of (ts, light_id, state) rows, looked up by time.

    Each row says "from ts on, this light shows state" and holds until the next row of the same
    light. Repeated rows with the same state (a log that samples every second) do not restart the
    phase: `since_ts` is the first row of the run. `updated_ts` is the last row at or before the
    query, so a caller's staleness limit also applies to gaps in the log; a log that records only
    changes needs a staleness limit longer than its longest phase.

    Args:
        rows: (ts, light_id, state) in schedule time, any order (stable-sorted by ts).
        ts_offset_s: schedule time = frame ts + ts_offset_s (e.g. the controller's epoch time of the
            video's first frame); readings are returned in frame time.
    """

    def __init__(self, rows: Iterable[tuple[float, str, SignalState]], *, ts_offset_s: float = 0.0) -> None:
        per_light: dict[str, list[tuple[float, SignalState]]] = {}
        for ts, light_id, state in rows:
            per_light.setdefault(light_id, []).append((float(ts), state))
        self._offset = float(ts_offset_s)
        self._ts: dict[str, list[float]] = {}
        self._state: dict[str, list[SignalState]] = {}
        self._run_start: dict[str, list[float]] = {}
        for light_id, entries in per_light.items():
            entries.sort(key=lambda e: e[0])  # stable: equal times keep file order, the last one wins
            times = [e[0] for e in entries]
            states = [e[1] for e in entries]
            starts: list[float] = []
            for i, (ts, state) in enumerate(entries):
                starts.append(starts[-1] if i and states[i - 1] == state else ts)
            self._ts[light_id], self._state[light_id], self._run_start[light_id] = times, states, starts

    @property
    def light_ids(self) -> tuple[str, ...]:
        """The lights the schedule mentions, sorted."""
        return tuple(sorted(self._ts))

    @classmethod
    def from_path(cls, path: Path, *, ts_offset_s: float = 0.0) -> FileSignalFeed:
        """Read a schedule file: ``.jsonl``/``.ndjson`` (one object per line) or ``.csv`` (header row).

        Both need the fields ``ts`` (seconds, number), ``light_id`` (string) and ``state``; other
        fields are ignored. Blank lines are skipped.

        Raises:
            SignalError: missing/unreadable file, unknown extension, or a bad row (names file and line).
        """
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".ndjson", ".csv"):
            raise SignalError(f"{path}: signal schedule must be .jsonl, .ndjson or .csv, got '{suffix}'")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SignalError(f"{path}: cannot read signal schedule: {e}") from e
        records: list[tuple[int, Mapping[str, Any]]] = []
        if suffix == ".csv":
            reader = csv.DictReader(text.splitlines())
            missing = {"ts", "light_id", "state"} - set(reader.fieldnames or ())
            if missing:
                raise SignalError(f"{path}: CSV header lacks {', '.join(sorted(missing))}")
            records = [(i + 2, row) for i, row in enumerate(reader)]
        else:
            for i, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SignalError(f"{path}:{i}: not JSON: {e.msg}") from e
                if not isinstance(obj, dict):
                    raise SignalError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
                records.append((i, obj))
        return cls((_row(path, line, rec) for line, rec in records), ts_offset_s=ts_offset_s)

    def reading(self, light_id: str, ts: float) -> FeedReading | None:
        """The scheduled state of `light_id` at frame time `ts`; None before its first row or if unknown."""
        times = self._ts.get(light_id)
        if times is None:
            return None
        t = ts + self._offset
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            return None
        return FeedReading(
            state=self._state[light_id][i],
            since_ts=self._run_start[light_id][i] - self._offset,
            updated_ts=times[i] - self._offset,
        )


def _row(path: Path, line: int, rec: Mapping[str, Any]) -> tuple[float, str, SignalState]:
    where = f"{path}:{line}"
    for key in ("ts", "light_id", "state"):
        if rec.get(key) in (None, ""):
            raise SignalError(f"{where}: missing '{key}'")
    raw_ts = rec["ts"]
    if isinstance(raw_ts, bool):  # bool is an int to Python, never a time
        raise SignalError(f"{where}: ts must be a number, got {raw_ts!r}")
    try:
        ts = float(raw_ts)
    except (TypeError, ValueError) as e:
        raise SignalError(f"{where}: ts must be a number, got {raw_ts!r}") from e
    if ts != ts or ts in (float("inf"), float("-inf")):
        raise SignalError(f"{where}: ts must be finite, got {raw_ts!r}")
    try:
        state = parse_state(rec["state"])
    except SignalError as e:
        raise SignalError(f"{where}: {e}") from e
    return ts, str(rec["light_id"]), state


class HttpSignalFeed:
    """Polls a controller URL answering JSON ``{light_id: state, ...}``.

    A value is either a state word (``"red"``) or an object ``{"state": "red", "since_ts": 1732.5}``
    when the controller knows when the phase began; otherwise `since_ts` is the time of the first
    poll that saw the state. Polling runs in a daemon thread (`start`/`close`, or a ``with`` block);
    `reading` only reads the cache, so the frame loop never waits on the network. A failed poll
    (timeout, HTTP error, bad JSON) is logged and keeps the old values, whose `updated_ts` then ages
    until the caller treats them as stale.

    Args:
        url: http:// or https:// address.
        interval_s: time between polls.
        timeout_s: socket timeout of one request.
        clock: the time base of `since_ts`/`updated_ts`; wall clock by default, which is what live
            frame timestamps use.
        headers: extra request headers (e.g. an API token).

    Raises:
        SignalError: a URL that is not http(s).
    """

    def __init__(
        self,
        url: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SignalError(f"signal feed URL must be http:// or https://, got {url!r}")
        if interval_s <= 0 or timeout_s <= 0:
            raise SignalError(f"interval_s and timeout_s must be > 0, got {interval_s}, {timeout_s}")
        self._url = url
        self._interval = interval_s
        self._timeout = timeout_s
        self._clock = clock
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._lock = threading.Lock()
        self._cache: dict[str, FeedReading] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.polls_ok = 0
        self.polls_failed = 0

    @property
    def url(self) -> str:
        """The polled address."""
        return self._url

    def poll_once(self) -> bool:
        """Fetch the URL once and update the cache; True on success. Never raises for network or
        document errors (they are logged and counted in `polls_failed`)."""
        request = urllib.request.Request(self._url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = response.read(_MAX_BODY + 1)
            if len(body) > _MAX_BODY:
                raise SignalError(f"answer larger than {_MAX_BODY} bytes")
            states = _parse_document(json.loads(body))
        except (OSError, http.client.HTTPException, ValueError) as e:
            # OSError covers URLError, HTTPError and socket timeouts, HTTPException a truncated or
            # garbled answer, ValueError bad JSON and SignalError. Log the first failure of a
            # streak, not every poll.
            self.polls_failed += 1
            if not self._failing:
                logger.warning("signal feed %s: poll failed: %s", self._url, e)
            self._failing = True
            return False
        now = self._clock()
        with self._lock:
            for light_id, (state, since) in states.items():
                old = self._cache.get(light_id)
                if since is None:
                    since = old.since_ts if old is not None and old.state == state else now
                self._cache[light_id] = FeedReading(state=state, since_ts=since, updated_ts=now)
        if self._failing:
            logger.info("signal feed %s: polling again", self._url)
        self._failing = False
        self.polls_ok += 1
        return True

    def reading(self, light_id: str, ts: float) -> FeedReading | None:
        """The last polled state of `light_id` (`ts` is not used: the cache is the present)."""
        with self._lock:
            return self._cache.get(light_id)

    def start(self) -> None:
        """Start the polling thread (first poll at once). Calling it twice is an error.

        Raises:
            RuntimeError: already started.
        """
        if self._thread is not None:
            raise RuntimeError("signal feed already started")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"signal-feed {urllib.parse.urlsplit(self._url).netloc}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the polling thread and wait for it (at most one request timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + self._interval + 1.0)
            self._thread = None

    def __enter__(self) -> HttpSignalFeed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self._interval)


def _parse_document(doc: object) -> dict[str, tuple[SignalState, float | None]]:
    if not isinstance(doc, dict):
        raise SignalError(f"expected a JSON object {{light_id: state}}, got {type(doc).__name__}")
    out: dict[str, tuple[SignalState, float | None]] = {}
    for light_id, value in doc.items():
        if isinstance(value, dict):
            state = parse_state(value.get("state"))
            since = value.get("since_ts")
            if since is not None and (isinstance(since, bool) or not isinstance(since, int | float)):
                raise SignalError(f"light {light_id!r}: since_ts must be a number, got {since!r}")
            out[str(light_id)] = (state, None if since is None else float(since))
        else:
            out[str(light_id)] = (parse_state(value), None)
    return out


class MqttSignalFeed:
    """Light states from an MQTT broker: one topic per light, ``<prefix>/<light_id>``.

    The payload is a state word (``red``) or JSON ``{"state": "red", "since_ts": 1732.5}``. The
    controller should publish retained messages (a new subscriber gets the current state at once)
    and repeat them as a heartbeat more often than the reader's staleness limit: `updated_ts` is the
    arrival time of the last message. A malformed message is logged and ignored. The client runs in
    paho's network thread and reconnects by itself (capped backoff); `reading` only reads the cache.

    Args:
        host, port: the broker.
        topic_prefix: topics are ``<topic_prefix>/<light_id>``.
        clock: time base of `since_ts`/`updated_ts` (wall clock, as live frame timestamps).
        client_id: MQTT client id; empty lets the broker choose.
        keepalive_s: MQTT keep-alive.

    Raises:
        SignalError: the ``paho-mqtt`` package is not installed, or a bad prefix.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        topic_prefix: str = "phatnguoi/signals",
        clock: Callable[[], float] = time.time,
        client_id: str = "",
        keepalive_s: int = 30,
    ) -> None:
        try:
            # Imported by name so the package stays optional (and unknown to type checkers without it).
            mqtt: Any = importlib.import_module("paho.mqtt.client")
        except ImportError as e:
            raise SignalError(
                "MQTT signal feed needs the paho-mqtt package: pip install 'paho-mqtt>=2'"
            ) from e
        prefix = topic_prefix.rstrip("/")
        if not prefix or any(c in prefix for c in "+#"):
            raise SignalError(f"topic_prefix must be a plain topic without wildcards, got {topic_prefix!r}")
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self._prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, FeedReading] = {}
        self.messages_ok = 0
        self.messages_bad = 0
        self.connected = threading.Event()
        self._client: Any = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._started = False

    def start(self) -> None:
        """Connect (in the background) and subscribe; returns at once.

        Raises:
            RuntimeError: already started.
        """
        if self._started:
            raise RuntimeError("signal feed already started")
        self._started = True
        self._client.connect_async(self._host, self._port, keepalive=self._keepalive)
        self._client.loop_start()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    def __enter__(self) -> MqttSignalFeed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reading(self, light_id: str, ts: float) -> FeedReading | None:
        """The last message's state of `light_id` (`ts` is not used: the cache is the present)."""
        with self._lock:
            return self._cache.get(light_id)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            logger.warning("signal feed mqtt://%s:%d: connection refused: %s", self._host, self._port, reason)
            return
        # Subscribing on every (re)connect: a clean session forgets subscriptions.
        client.subscribe(f"{self._prefix}/+", qos=1)
        self.connected.set()
        logger.info("signal feed mqtt://%s:%d: subscribed to %s/+", self._host, self._port, self._prefix)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        if self._started:
            logger.warning("signal feed mqtt://%s:%d: disconnected (%s)", self._host, self._port, reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        light_id = str(message.topic)[len(self._prefix) + 1 :]
        try:
            text = bytes(message.payload).decode("utf-8").strip()
            value: object = json.loads(text) if text.startswith(("{", '"')) else text
            state, since = _parse_document({light_id: value})[light_id]
        except (ValueError, UnicodeDecodeError) as e:
            self.messages_bad += 1
            logger.warning("signal feed mqtt: bad message on %s: %s", message.topic, e)
            return
        now = self._clock()
        with self._lock:
            old = self._cache.get(light_id)
            if since is None:
                since = old.since_ts if old is not None and old.state == state else now
            self._cache[light_id] = FeedReading(state=state, since_ts=since, updated_ts=now)
        self.messages_ok += 1


class _FeedBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    light_id: str = Field(
        "main", min_length=1, max_length=64, description="Which light of the feed governs this camera."
    )
    stale_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Fall back to the camera when the feed has not confirmed the state for this long.",
    )


class FileFeedConfig(_FeedBase):
    """A controller schedule file (JSONL or CSV of ts, light_id, state)."""

    type: Literal["file"] = "file"
    path: Path = Field(description="Schedule file, .jsonl/.ndjson or .csv.")
    ts_offset_s: float = Field(
        0.0, description="Schedule time = frame time + this (e.g. the controller epoch of frame 0)."
    )


class HttpFeedConfig(_FeedBase):
    """A controller URL answering JSON {light_id: state}."""

    type: Literal["http"] = "http"
    url: str = Field(description="http:// or https:// address of the controller status document.")
    interval_s: float = Field(1.0, gt=0, le=60, description="Time between polls.")
    timeout_s: float = Field(2.0, gt=0, le=30, description="Timeout of one request.")

    @field_validator("url")
    @classmethod
    def _http_only(cls, v: str) -> str:
        parsed = urllib.parse.urlsplit(v)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
        return v


class MqttFeedConfig(_FeedBase):
    """An MQTT broker carrying one topic per light (needs the optional paho-mqtt package)."""

    type: Literal["mqtt"] = "mqtt"
    host: str = Field(min_length=1, max_length=253, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    topic_prefix: str = Field(
        "phatnguoi/signals",
        min_length=1,
        max_length=200,
        pattern=r"^[^+#]+$",
        description="Light states arrive on <topic_prefix>/<light_id>.",
    )


FeedConfig = Annotated[FileFeedConfig | HttpFeedConfig | MqttFeedConfig, Field(discriminator="type")]


def open_feed(
    config: FileFeedConfig | HttpFeedConfig | MqttFeedConfig,
) -> FileSignalFeed | HttpSignalFeed | MqttSignalFeed:
    """Build the feed a config describes. HTTP and MQTT feeds are returned started; `close()` them.

    Raises:
        SignalError: unreadable or invalid schedule file, bad URL, paho-mqtt missing.
    """
    if isinstance(config, FileFeedConfig):
        return FileSignalFeed.from_path(config.path, ts_offset_s=config.ts_offset_s)
    feed: HttpSignalFeed | MqttSignalFeed
    if isinstance(config, HttpFeedConfig):
        feed = HttpSignalFeed(config.url, interval_s=config.interval_s, timeout_s=config.timeout_s)
    else:
        feed = MqttSignalFeed(config.host, config.port, topic_prefix=config.topic_prefix)
    feed.start()
    return feed
