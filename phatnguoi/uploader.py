"""The uploader: sends what the outbox holds to the server, with the device key, until told to stop.

One thread per edge process. Each round claims the due evidence packages (oldest first), posts each
to ``POST /api/v1/violations`` (multipart: ``manifest`` part, ``signature`` field, one ``files`` part
per evidence file named as in the manifest), then the due flow counts, batched per camera, to
``POST /api/v1/flows``. What an answer means:

| answer | outcome |
|---|---|
| 201; 200 (already stored); with our manifest hash | sent (the server is idempotent on ``event_id``) |
| 409 | refused for good: the server holds another manifest for this event id (alerted) |
| 400 ``signature: …``; 403 ``manifest device_id …``, ``… may not post for camera …`` | held (see below) |
| 401, 403, 408, 429 | retried: the key may be re-registered, the device re-enabled, a limit pass |
| other 4xx with the server's reason (its JSON ``detail``) | refused for good, with that reason (alerted) |
| the same for a batch of flow counts | the batch is split until only the refused counts are left |
| 404, or a 4xx without a reason (a proxy, a wrong URL) | retried: it did not come from the ingest API |
| 5xx, 2xx without the expected body, network error, timeout | retried |

A retried item waits ``min(backoff_max_s, backoff_initial_s * 2^(attempts-1))``, shortened by up to
``jitter`` of itself at random (so a fleet that lost the server at the same moment does not come back
in step), or the server's ``Retry-After`` if longer. A retryable failure also pauses the whole
uploader for the same kind of delay, grown with consecutive failures: when the server is down, the
uploader makes one attempt per pause instead of one per queued item. The first success resets it.

**The device as the server has it.** At start, then every ``key_check_s``, the uploader asks
``GET /api/v1/devices/me`` for the device's id, cameras and the fingerprint of its registered signing
key. A registered key that is not this box's (the installer registered another ``.pub``) would have
every package refused: the uploader sends no evidence while it lasts (flow counts are not signed and
still go), alerts ``key_mismatch`` once, says so in `stats` (``key``, ``key_problem``: the edge's
health is not ok), and asks again with backoff (at least every ``MISMATCH_CHECK_MAX_S``), so that
once the right key is registered (``phatnguoi devices set-public-key``) everything queued goes. A
package that names another device or a camera the server does not list for the device, or that the
server refuses for one of those reasons (or for its signature, which also triggers a new check of
the key), is **held**: it stays queued (`Outbox.mark_held`), is tried again after ``key_check_s`` or
at once when the server's answer about the device changes, and does not pause the other items; each
cause is alerted once. An answer that is not about the device (an older server's 404, an outage)
changes nothing; the question is asked again with backoff.

`stop` sets the stop event; the thread then flushes what is due within ``shutdown_flush_s`` (each
request's timeout is cut to the time left), gives back what it claimed, and ends.

    uploader = Uploader(outbox, device_key, UploaderConfig(server_url="https://phatnguoi.example.vn"))
    uploader.start()
    ...
    uploader.stop()          # SIGTERM: bounded flush, then the thread ends
"""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import json
import logging
import math
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from phatnguoi.outbox import Outbox, OutboxError, OutboxItem
from violations.manifest import MANIFEST_NAME, SIGNATURE_NAME, public_key_fingerprint

logger = logging.getLogger(__name__)

#: The wall clock going back by more than this between two rounds has been set back (NTP, a person).
CLOCK_STEP_S = 2.0

Verdict = Literal["sent", "conflict", "retry", "refused", "hold"]
KeyState = Literal["unchecked", "ok", "mismatch"]
USER_AGENT = "phatnguoi-edge/0.1"
DEVICE_PATH = "/api/v1/devices/me"
#: While the server holds another key, it is asked again at least this often (the installer waits).
MISMATCH_CHECK_MAX_S = 60.0
# Statuses that look like a refusal but may pass without changing the item (see the module table).
_RETRYABLE_4XX = frozenset({401, 403, 408, 429})
# The server's reasons (status, start of its `detail`) for refusing a package because of how the box
# or the device is set up: fixed on the server or the box, then the same package goes.
_CONFIGURATION_REFUSALS = (
    (400, re.compile(r"signature: ")),
    (403, re.compile(r"manifest device_id .* is not the calling device ")),
    (403, re.compile(r"device \S+ may not post for camera ")),
    (403, re.compile(r"camera .* is not registered")),
)


class UploaderConfig(BaseModel):
    """Where and how to upload (the ``upload:`` section of an edge config; the device key is a secret
    and comes from the environment, not from this file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    server_url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="Server base URL.")
    timeout_s: float = Field(60.0, gt=0.0, le=600.0, description="Timeout of one request (a package is MBs).")
    connect_timeout_s: float = Field(5.0, gt=0.0, le=120.0, description="TCP/TLS connect timeout.")
    backoff_initial_s: float = Field(1.0, gt=0.0, le=600.0, description="Delay after the first failure.")
    backoff_max_s: float = Field(300.0, gt=0.0, le=86400.0, description="Cap of the doubling delay.")
    jitter: float = Field(
        0.5, ge=0.0, le=1.0, description="A delay is shortened by up to this fraction, at random."
    )
    retry_after_max_s: float = Field(3600.0, gt=0.0, description="Longest Retry-After honoured.")
    evidence_batch: int = Field(4, ge=1, le=256, description="Packages claimed per round.")
    flow_batch: int = Field(500, ge=1, le=5000, description="Flow counts per request (server takes <= 5000).")
    idle_s: float = Field(
        5.0, gt=0.0, le=600.0, description="Longest sleep when nothing is due (safety poll)."
    )
    housekeeping_s: float = Field(
        60.0, gt=0.0, description="Seconds between retention and disk-budget passes."
    )
    shutdown_flush_s: float = Field(10.0, ge=0.0, le=600.0, description="Time allowed to flush at stop.")
    key_check_s: float = Field(
        300.0,
        gt=0.0,
        le=86400.0,
        description="Seconds between checks that the server holds this box's public key (and between"
        " retries of held items).",
    )


@dataclass(slots=True)
class UploaderStats:
    """Counters for `/metrics` (a snapshot: `Uploader.stats` returns a copy).

    Attributes:
        evidence_sent: packages acknowledged (new on the server); evidence_duplicates: acknowledged
            as already stored (a resend after a crash or a lost answer).
        flows_sent: flow counts acknowledged; flow_conflicts: of those, counts the server already
            held with another value (it kept its own).
        retries / refused / conflicts: attempts that failed and will be retried / were refused for
            good / met a different manifest under the same event id.
        errors: failed attempts by cause (``network``, ``http_5xx``, ``auth``, ``rate``, ...).
        bytes_sent / upload_s: request bytes and wall time of acknowledged evidence uploads.
        last_success_at / last_error: epoch seconds of the last acknowledgement; last failure text.
        last_cause: the cause (as in ``errors``) of the last retryable failure; None after a success.
        consecutive_failures: retryable failures since the last success.
        paused_until: no attempt before this epoch time (server unreachable or asked us to wait).
        held: items held for a configuration reason (see the module docstring), counted per hold.
        key: whether the server's registered public key for the device is this box's (``unchecked``
            until the server first answered); key_problem: the one line saying what to do when not.
        key_checked_at: epoch seconds of the server's last answer about the device.
    """

    evidence_sent: int = 0
    evidence_duplicates: int = 0
    flows_sent: int = 0
    flow_conflicts: int = 0
    retries: int = 0
    refused: int = 0
    conflicts: int = 0
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    bytes_sent: int = 0
    upload_s: float = 0.0
    last_success_at: float | None = None
    last_error: str | None = None
    last_cause: str | None = None
    consecutive_failures: int = 0
    paused_until: float = 0.0
    held: int = 0
    key: KeyState = "unchecked"
    key_problem: str | None = None
    key_checked_at: float | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    verdict: Verdict
    detail: str
    cause: str = ""
    retry_after_s: float | None = None
    body: dict[str, Any] | None = None
    key_refused: bool = False  # the server could not verify the signature: check which key it holds


@dataclass(frozen=True, slots=True)
class _Registered:
    """What ``GET /api/v1/devices/me`` said about the device."""

    device_id: str
    cameras: frozenset[str]
    key_sha256: str


def backoff_delay(attempts: int, initial_s: float, max_s: float, jitter: float, u: float) -> float:
    """Delay before the next attempt after `attempts` failures (>= 1): doubling from `initial_s`,
    capped at `max_s`, shortened by ``jitter * u`` of itself (`u` uniform in [0, 1)). Pure."""
    exponent = min(max(attempts, 1) - 1, 62)  # 2**62 s is beyond any cap; avoids float overflow
    base = min(max_s, initial_s * math.pow(2.0, exponent))
    return base * (1.0 - jitter * min(max(u, 0.0), 1.0))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), None when
    absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify_status(status: int, *, explained: bool = True) -> Verdict:
    """What an HTTP status means for an upload (see the module table).

    Args:
        explained: the answer carries the server's reason (a JSON ``detail``): only such a 4xx is a
            refusal for good; anything else may be a proxy or a wrong address, and is retried.
    """
    if status in (200, 201):
        return "sent"
    if status == 409:
        return "conflict"
    if 400 <= status < 500 and status not in _RETRYABLE_4XX and status != 404 and explained:
        return "refused"
    return "retry"


def configuration_refusal(status: int, reason: str) -> bool:
    """Whether the server's refusal (`status` and its ``detail``) comes from the box's or the device's
    configuration (another signing key registered, another device's package, a camera the device is
    not registered for): the package is held, not refused for good nor retried as an outage."""
    return any(status == code and pattern.match(reason) for code, pattern in _CONFIGURATION_REFUSALS)


def _explained(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("detail"), str) and bool(body["detail"])


def _cause(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate"
    if status >= 500:
        return "http_5xx"
    return f"http_{status}"


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].replace("\n", " ") or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail if detail is not None else body)[:300]


class Uploader:
    """Sends outbox items to the server (see the module docstring).

    Args:
        outbox: the outbox to drain.
        device_key: this device's API key (sent as ``Authorization: Bearer``; never logged).
        config: server URL, timeouts, backoff.
        transport: an httpx transport (tests, or a proxy set-up); default: plain HTTP(S).
        rng: randomness for the jitter.
        clock: epoch seconds.
        key_file: where this box's public key is (named in the message of a key mismatch).
    """

    def __init__(
        self,
        outbox: Outbox,
        device_key: str,
        config: UploaderConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        key_file: Path | None = None,
    ) -> None:
        if not device_key:
            raise ValueError("device_key is empty")
        self.outbox = outbox
        self.config = config
        self.clock = clock
        self.key_file = key_file
        # The outbox verifies packages with the box's public key: the key the server must hold.
        self._fingerprint = public_key_fingerprint(outbox.public_key)
        self._registered: _Registered | None = None  # the server's last answer about the device
        self._check_at = 0.0  # epoch seconds of the next GET /devices/me (0: at the first round)
        self._check_failures = 0  # answers in a row that were not about the device
        self._mismatches = 0  # answers in a row with another key
        self._alerted_holds: set[str] = set()
        self._rng = rng or random.Random()
        self._client = httpx.Client(
            base_url=config.server_url.rstrip("/"),
            headers={"Authorization": f"Bearer {device_key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            transport=transport,
        )
        self._stats = UploaderStats()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # Claimed by this uploader (state 'sending') and not yet settled; see `run_once`.
        self._unsettled: dict[tuple[str, str], OutboxItem] = {}
        outbox.add_listener(self._wake.set)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Run the upload loop on a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="uploader", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Ask the loop to stop, let it flush for up to ``shutdown_flush_s``, wait for the thread.

        Args:
            timeout_s: longest wait for the thread (default: the flush time plus one request timeout).

        Returns:
            True when the thread ended within the wait.
        """
        self._stop.set()
        self._wake.set()
        ended = True
        if self._thread is not None:
            wait = (
                timeout_s if timeout_s is not None else self.config.shutdown_flush_s + self.config.timeout_s
            )
            self._thread.join(wait)
            ended = not self._thread.is_alive()
            if not ended:
                logger.error("uploader did not stop within %.1f s", wait)
        if ended:
            self._client.close()
        return ended

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def run(self, stop: threading.Event | None = None) -> None:
        """The upload loop, in the calling thread, until `stop` (default: the `stop` method's event)
        is set; then a bounded flush. Never raises: every failure is logged and retried."""
        stop_event = stop or self._stop
        next_housekeeping = 0.0
        last = self.clock()
        while not stop_event.is_set():
            self._wake.clear()
            now = self.clock()
            try:
                if now < last - CLOCK_STEP_S:
                    self.clock_went_back(last - now, now)
                    next_housekeeping = now
                last = now
                if now >= next_housekeeping:
                    next_housekeeping = now + self.config.housekeeping_s
                    self.outbox.apply_retention(now)
                    self.outbox.enforce_limit(now)
                if self.run_once(now):
                    continue
                wait = self._idle_wait(self.clock())
            except OutboxError as e:
                # Disk full or I/O error: nothing can be recorded; wait and try again.
                logger.error("uploader: outbox unavailable: %s", e)
                wait = self.config.backoff_initial_s
            except Exception:  # an unattended service must keep its uploader alive: log, retry
                logger.exception("uploader: unexpected error; retrying")
                wait = self.config.backoff_initial_s
            if stop_event is not self._stop:
                # An external event: poll it while sleeping on our wake-up event.
                self._wake.wait(min(wait, 0.2))
            else:
                self._wake.wait(wait)
        try:
            self.flush(self.clock() + self.config.shutdown_flush_s)
        except Exception:  # the process is stopping: what was not sent stays queued for the next start
            logger.exception("uploader: flush at stop failed")

    def clock_went_back(self, step_s: float, now: float) -> None:
        """The system clock was set back by `step_s` seconds (NTP correcting a box that booted with its
        clock ahead, a hardware clock kept in local time): the pause and the outbox's retry times were
        computed on the old clock and would hold every upload for the length of the step."""
        logger.warning("the system clock went back by %.0f s: upload retry times moved back with it", step_s)
        with self._stats_lock:
            if self._stats.paused_until > now:
                self._stats.paused_until = max(now, self._stats.paused_until - step_s)
        self._check_at = min(self._check_at, now)
        self.outbox.rebase(step_s, now)

    def _idle_wait(self, now: float) -> float:
        with self._stats_lock:
            paused_until = self._stats.paused_until
        # While the server holds another key, queued evidence waits for the next check, not its time.
        due = self.outbox.next_attempt_at("flow" if self._evidence_held() else None)
        target = max(paused_until, min(due, self._check_at) if due is not None else self._check_at)
        return min(max(target - now, 0.01), self.config.idle_s)

    def _evidence_held(self) -> bool:
        with self._stats_lock:
            return self._stats.key == "mismatch"

    def flush(self, deadline: float) -> int:
        """Send what is due until nothing is, the server fails, or `deadline` (epoch seconds).

        Returns:
            Items attempted.
        """
        total = 0
        while self.clock() < deadline:
            try:
                n = self.run_once(deadline=deadline)
            except OutboxError as e:
                logger.error("uploader: flush stopped: %s", e)
                break
            total += n
            if n == 0 or self.paused:
                break
        return total

    @property
    def paused(self) -> bool:
        """Whether the uploader is holding off (server unreachable, refusing, or asking to wait)."""
        with self._stats_lock:
            return self.clock() < self._stats.paused_until

    def stats(self) -> UploaderStats:
        """A snapshot of the counters."""
        with self._stats_lock:
            return dataclasses.replace(self._stats, errors=dict(self._stats.errors))

    # ------------------------------------------------------------------ one round

    def run_once(self, now: float | None = None, deadline: float | None = None) -> int:
        """One round: due evidence, then due flow counts. Returns how many items were attempted
        (0 when paused or nothing is due).

        Items this round claims and cannot settle (the round stops early, or recording an outcome
        fails) are given back; if even that fails they are given back at the next round, so an item
        is never left ``sending`` while the process lives.

        Raises:
            OutboxError: the outbox could not be read or written.
        """
        t = self.clock() if now is None else now
        if self._unsettled:
            self.outbox.release(list(self._unsettled.values()))
            self._unsettled.clear()
        if self.paused:
            return 0
        if t >= self._check_at:
            self._check_device(t, deadline)
        attempted = 0
        evidence = (
            []
            if self._evidence_held()
            else self._claim(self.outbox.next_due(t, self.config.evidence_batch, "evidence"))
        )
        flows = self._claim(self.outbox.next_due(t, self.config.flow_batch, "flow"))
        by_camera: dict[str, list[OutboxItem]] = defaultdict(list)
        for item in flows:
            by_camera[item.camera_id].append(item)
        batches: list[list[OutboxItem]] = [[i] for i in evidence] + list(by_camera.values())
        for batch in batches:
            if self._out_of_time(deadline):
                break
            attempted += len(batch)
            go_on = (
                self._send_evidence(batch[0], deadline)
                if batch[0].kind == "evidence"
                else (self._send_flows(batch, deadline))
            )
            for item in batch:
                self._unsettled.pop((item.kind, item.key), None)
            if not go_on:
                break
        if self._unsettled:
            self.outbox.release(list(self._unsettled.values()))
            self._unsettled.clear()
        return attempted

    def _claim(self, items: list[OutboxItem]) -> list[OutboxItem]:
        for item in items:
            self._unsettled[(item.kind, item.key)] = item
        return items

    def _out_of_time(self, deadline: float | None) -> bool:
        return deadline is not None and self.clock() >= deadline - 0.05

    def _timeout(self, deadline: float | None) -> httpx.Timeout:
        total, connect = self.config.timeout_s, self.config.connect_timeout_s
        if deadline is not None:
            left = max(0.05, deadline - self.clock())
            total, connect = min(total, left), min(connect, left)
        return httpx.Timeout(total, connect=connect)

    def _send_evidence(self, item: OutboxItem, deadline: float | None) -> bool:
        """Post one package and record the outcome. Returns False when the round should stop."""
        assert item.path is not None and item.manifest_sha256 is not None
        try:
            parts, signature, size, manifest = _package_parts(item.path, item.manifest_sha256)
        except (OSError, ValueError) as e:
            self._count(refused=1, error=str(e), cause="local")
            self.outbox.mark_permanent_failure(item, f"local package unreadable: {e}")
            return True
        problem = self._not_for_this_device(manifest.get("device_id"), item.camera_id)
        if problem is not None:  # the server would refuse it (403): not sent, held
            return self._failed([item], _Answer("hold", problem, "config"))
        t0 = time.perf_counter()
        try:
            response = self._client.post(
                "/api/v1/violations",
                data={"signature": signature},
                files=parts,
                timeout=self._timeout(deadline),
            )
        except httpx.HTTPError as e:
            return self._failed([item], _Answer("retry", f"{type(e).__name__}: {e}", "network"))
        elapsed = time.perf_counter() - t0
        answer = self._evidence_answer(response, item)
        if answer.verdict == "sent":
            body = answer.body or {}
            duplicate = bool(body.get("duplicate")) or response.status_code == 200
            self.outbox.mark_sent(
                item,
                {"status": response.status_code, "id": body.get("id"), "duplicate": duplicate},
            )
            self._succeeded(evidence=1, duplicates=int(duplicate), size=size, seconds=elapsed)
            logger.info(
                "uploaded %s (%s, %d bytes, %.0f ms)",
                item.key,
                "already stored" if duplicate else "new",
                size,
                elapsed * 1000,
            )
            return True
        return self._failed([item], answer)

    def _evidence_answer(self, response: httpx.Response, item: OutboxItem) -> _Answer:
        status = response.status_code
        verdict = classify_status(status, explained=_explained(response))
        if verdict == "sent":
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or body.get("event_id") != item.key:
                # A 2xx that is not the server's answer (a captive portal, a misrouted proxy).
                return _Answer("retry", f"HTTP {status} without an ingest result", "bad_answer")
            if body.get("manifest_sha256") != item.manifest_sha256:
                return _Answer("conflict", f"server holds manifest {str(body.get('manifest_sha256'))[:12]}…")
            return _Answer("sent", "", body=body)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
        reason = _reason(response)
        if verdict != "conflict" and _explained(response) and configuration_refusal(status, reason):
            return _Answer("hold", f"HTTP {status}: {reason}", "config", key_refused=status == 400)
        return _Answer(verdict, f"HTTP {status}: {reason}", _cause(status), retry_after)

    def _send_flows(self, items: Sequence[OutboxItem], deadline: float | None) -> bool:
        """Post one camera's flow counts. Returns False when the round should stop.

        The server refuses a batch whole when one of its counts is wrong (an interval starting beyond
        its clock skew, counted before the box's clock was set back; an interval that overlaps a
        stored one): the batch is then split in halves, and those again, until only the refused
        counts are left. They are refused for good with one alert saying how many and why; the
        others are sent. Counts a split could not send (an outage, the deadline) are given back.
        """
        problem = self._not_for_this_device(None, items[0].camera_id)
        if problem is not None:
            return self._failed(items, _Answer("hold", problem, "config"))
        todo: list[Sequence[OutboxItem]] = [items]  # a stack: the earlier half is on top
        refused: list[tuple[OutboxItem, _Answer]] = []
        sent = 0
        go_on = True
        while todo:
            batch = todo.pop()
            answer = self._post_flows(batch, deadline)
            if answer.verdict == "refused" and len(batch) > 1:
                # In start order, the counts dated ahead (the usual cause) are the end of the batch:
                # the halves before them go whole.
                batch = sorted(batch, key=_interval_start)
                half = len(batch) // 2
                todo += [batch[half:], batch[:half]]
            elif answer.verdict == "refused":
                refused.append((batch[0], answer))
            elif answer.verdict == "sent":
                self._flows_sent(batch, answer)
                sent += len(batch)
            else:
                go_on = self._failed(batch, answer)
                if not go_on or len(batch) < len(items):
                    break  # the server is away, or holds the camera: the rest waits for the next round
            if todo and self._out_of_time(deadline):
                break
        left = [i for b in todo for i in b]
        if left:
            self.outbox.release(left)
        if refused:
            self._flows_refused(refused, sent, len(items))
        return go_on

    def _post_flows(self, items: Sequence[OutboxItem], deadline: float | None) -> _Answer:
        """Post flow counts of one camera; the answer (``sent`` with the server's result as body)."""
        body = {"camera_id": items[0].camera_id, "counts": [dict(i.payload or {}) for i in items]}
        try:
            response = self._client.post("/api/v1/flows", json=body, timeout=self._timeout(deadline))
        except httpx.HTTPError as e:
            return _Answer("retry", f"{type(e).__name__}: {e}", "network")
        status = response.status_code
        verdict = classify_status(status, explained=_explained(response))
        if verdict == "sent":
            try:
                result = response.json()
                conflicts = len(result["conflicts"])
            except (ValueError, KeyError, TypeError):
                return _Answer("retry", f"HTTP {status} without a flow result", "bad_answer")
            return _Answer("sent", "", body={"status": status, "batch": len(items), "conflicts": conflicts})
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
        reason = _reason(response)
        if _explained(response) and configuration_refusal(status, reason):
            return _Answer("hold", f"HTTP {status}: {reason}", "config")
        # A flow batch has no "other manifest": a 409 is a plain refusal here.
        return _Answer(
            "refused" if verdict == "conflict" else verdict,
            f"HTTP {status}: {reason}",
            _cause(status),
            retry_after,
        )

    def _flows_sent(self, items: Sequence[OutboxItem], answer: _Answer) -> None:
        result = answer.body or {}
        conflicts = int(result.get("conflicts", 0))
        self.outbox.mark_sent(items, result)
        if conflicts:
            logger.warning(
                "camera %s: the server kept its own value for %d of %d flow counts",
                items[0].camera_id,
                conflicts,
                len(items),
            )
        self._succeeded(flows=len(items), flow_conflicts=conflicts)

    def _flows_refused(self, refused: Sequence[tuple[OutboxItem, _Answer]], sent: int, total: int) -> None:
        """Refuse for good the flow counts the server refused one by one: one alert for all of them
        (how many, the first reason, what happened to the rest of their batch)."""
        first = refused[0][1]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        rest = f"; {sent} other count(s) of their batch of {total} were sent" if total > len(refused) else ""
        self._count(refused=len(refused), error=first.detail, cause=first.cause)
        self.outbox.mark_permanent_failure([i for i, _ in refused], f"{first.detail}{more}{rest}")

    # ------------------------------------------------------------------ the device on the server

    def _check_device(self, now: float, deadline: float | None) -> None:
        """Ask the server what it holds for this device (see the module docstring)."""
        cfg = self.config
        try:
            response = self._client.get(DEVICE_PATH, timeout=self._timeout(deadline))
        except httpx.HTTPError as e:
            self._check_failed(now, f"{type(e).__name__}: {e}")
            return
        seen = _registered(response)
        if seen is None:
            self._check_failed(now, f"HTTP {response.status_code}: {_reason(response)}")
            return
        self._check_failures = 0
        changed, self._registered = seen != self._registered, seen
        if seen.key_sha256 != self._fingerprint:
            self._mismatches += 1
            self._check_at = now + backoff_delay(
                self._mismatches,
                cfg.backoff_initial_s,
                min(cfg.backoff_max_s, MISMATCH_CHECK_MAX_S),
                cfg.jitter,
                self._rng.random(),
            )
            problem = self._mismatch_line(seen)
            if self._set_key("mismatch", problem, now) != "mismatch":
                self.outbox.alert("key_mismatch", seen.device_id, problem)
            return
        self._mismatches = 0
        self._check_at = now + cfg.key_check_s
        if self._set_key("ok", None, now) == "mismatch":
            logger.warning("the server now holds this box's public key for device %s", seen.device_id)
        if changed:  # the first answer, or the device changed on the server: held items may go now
            released = self.outbox.release_held(now)
            if released:
                logger.info("%d held items are tried again", released)

    def _set_key(self, state: KeyState, problem: str | None, now: float) -> KeyState:
        """Record the server's answer about the key; returns the state before."""
        with self._stats_lock:
            was = self._stats.key
            self._stats.key, self._stats.key_problem, self._stats.key_checked_at = state, problem, now
        return was

    def _check_failed(self, now: float, why: str) -> None:
        """No answer about the device (an outage, an older server without the route, a refused API
        key): nothing changes; asked again with backoff. Uploads meet the same failure, if any."""
        self._check_failures += 1
        cfg = self.config
        u = self._rng.random()
        self._check_at = now + backoff_delay(
            self._check_failures, cfg.backoff_initial_s, cfg.backoff_max_s, cfg.jitter, u
        )
        logger.debug("cannot ask the server about this device: %s", why)

    def _mismatch_line(self, seen: _Registered) -> str:
        where = f", {self.key_file}" if self.key_file is not None else ""
        pub = self.key_file if self.key_file is not None else "<this box's public key file>"
        return (
            f"the server has another public key for device {seen.device_id} (sha256 {seen.key_sha256[:16]}…)"
            f" than this box signs with (sha256 {self._fingerprint[:16]}…{where}): register this box's key"
            f" with `phatnguoi devices set-public-key {seen.device_id} --public-key {pub}` on the server;"
            " evidence stays queued on the box until then"
        )

    def _not_for_this_device(self, device_id: object, camera_id: str) -> str | None:
        """Why the server would refuse an item of `device_id` (None: not known) and `camera_id` from
        this device (as its last answer described it), or None."""
        seen = self._registered
        if seen is None:
            return None
        if device_id is not None and device_id != seen.device_id:
            return (
                f"manifest device_id {device_id!r} is not the calling device {seen.device_id!r} (on the box)"
            )
        if camera_id not in seen.cameras:
            return f"device {seen.device_id} may not post for camera {camera_id!r} (on the box)"
        return None

    # ------------------------------------------------------------------ outcomes

    def _failed(self, items: Sequence[OutboxItem], answer: _Answer) -> bool:
        now = self.clock()
        cfg = self.config
        if answer.verdict == "hold":
            return self._held(items, answer, now)
        if answer.verdict == "conflict":
            self._count(conflicts=len(items), error=answer.detail)
            # Two different packages claim one event id: retrying cannot help, a person must look.
            self.outbox.mark_permanent_failure(items, f"conflict: {answer.detail}", alert_kind="conflict")
            return True
        if answer.verdict == "refused":
            self._count(refused=len(items), error=answer.detail, cause=answer.cause)
            self.outbox.mark_permanent_failure(items, answer.detail)
            return True
        with self._stats_lock:
            self._stats.consecutive_failures += 1
            failures = self._stats.consecutive_failures
        pause = backoff_delay(
            failures, cfg.backoff_initial_s, cfg.backoff_max_s, cfg.jitter, self._rng.random()
        )
        if answer.retry_after_s is not None:
            pause = max(pause, min(answer.retry_after_s, cfg.retry_after_max_s))
        for item in items:
            own = backoff_delay(
                item.attempts + 1, cfg.backoff_initial_s, cfg.backoff_max_s, cfg.jitter, self._rng.random()
            )
            self.outbox.mark_retry(item, answer.detail, max(own, pause), now)
        with self._stats_lock:
            self._stats.retries += len(items)
            self._stats.errors[answer.cause] = self._stats.errors.get(answer.cause, 0) + 1
            self._stats.last_error = answer.detail
            self._stats.last_cause = answer.cause
            self._stats.paused_until = now + pause
        level = logging.WARNING if failures in (1, 10, 100) or failures % 1000 == 0 else logging.DEBUG
        logger.log(
            level,
            "upload failed (%s, %d in a row): %s; next attempt in %.1f s",
            answer.cause,
            failures,
            answer.detail,
            pause,
        )
        if answer.cause == "auth" and failures in (1, 10, 100):
            self.outbox.alert("auth", None, f"the server refuses this device's key: {answer.detail}")
        return False

    def _held(self, items: Sequence[OutboxItem], answer: _Answer, now: float) -> bool:
        """Hold items the server refuses (or would refuse) for a configuration reason: queued, tried
        again after ``key_check_s`` (or when the server's answer about the device changes); the other
        items go on. Returns False when the round should stop (the key is to be checked first)."""
        with self._stats_lock:
            self._stats.held += len(items)
            self._stats.errors["config"] = self._stats.errors.get("config", 0) + 1
            self._stats.last_error = answer.detail
        self.outbox.mark_held(items, answer.detail, self.config.key_check_s, now)
        if answer.detail not in self._alerted_holds:
            self._alerted_holds.add(answer.detail)
            self.outbox.alert(
                "held",
                items[0].camera_id,
                f"{items[0].kind} {items[0].key} and any like it stay queued, not sent, until this is"
                f" fixed on the server or the box: {answer.detail}",
            )
        if answer.key_refused:
            self._check_at = now  # which key does the server hold? asked before the next package
            return False
        return True

    def _count(
        self, *, refused: int = 0, conflicts: int = 0, error: str | None = None, cause: str = ""
    ) -> None:
        with self._stats_lock:
            self._stats.refused += refused
            self._stats.conflicts += conflicts
            if cause:
                self._stats.errors[cause] = self._stats.errors.get(cause, 0) + 1
            if error:
                self._stats.last_error = error

    def _succeeded(
        self,
        *,
        evidence: int = 0,
        duplicates: int = 0,
        flows: int = 0,
        flow_conflicts: int = 0,
        size: int = 0,
        seconds: float = 0.0,
    ) -> None:
        with self._stats_lock:
            s = self._stats
            if s.consecutive_failures:
                logger.info("upload succeeded after %d failures in a row", s.consecutive_failures)
            s.evidence_sent += evidence - duplicates
            s.evidence_duplicates += duplicates
            s.flows_sent += flows
            s.flow_conflicts += flow_conflicts
            s.bytes_sent += size
            s.upload_s += seconds
            s.last_success_at = self.clock()
            s.consecutive_failures = 0
            s.last_cause = None
            s.paused_until = 0.0


def _interval_start(item: OutboxItem) -> str:
    """A flow count's interval start as queued (ISO 8601 UTC to the second: sorts as time)."""
    return str((item.payload or {}).get("interval_start", ""))


def _registered(response: httpx.Response) -> _Registered | None:
    """The device in a ``GET /api/v1/devices/me`` answer, or None when it is not one."""
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    device_id, cameras, key = body.get("id"), body.get("cameras"), body.get("public_key_sha256")
    if not (isinstance(device_id, str) and isinstance(key, str) and isinstance(cameras, list)):
        return None
    return _Registered(device_id, frozenset(str(c) for c in cameras), key)


def _package_parts(
    folder: Path, manifest_sha256: str
) -> tuple[list[tuple[str, tuple[str, bytes, str]]], str, int, dict[str, Any]]:
    """Multipart parts of a package, its signature, the bytes sent, and its manifest.

    Raises:
        OSError: a file is missing or unreadable.
        ValueError: manifest.json is not the one that was queued.
    """
    manifest_bytes = (folder / MANIFEST_NAME).read_bytes()
    if hashlib.sha256(manifest_bytes).hexdigest() != manifest_sha256:
        raise ValueError("manifest.json changed since it was queued")
    signature = (folder / SIGNATURE_NAME).read_text(encoding="ascii").strip()
    manifest = json.loads(manifest_bytes)
    parts = [("manifest", (MANIFEST_NAME, manifest_bytes, "application/json"))]
    size = len(manifest_bytes) + len(signature)
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        parts.append(("files", (entry["name"], data, entry["media_type"])))
        size += len(data)
    return parts, signature, size, manifest
