"""The edge worker's durable outbox: evidence packages and flow counts waiting for the server.

One SQLite database (WAL, ``synchronous=FULL``) per edge process, shared by the frame loop (which
enqueues) and the uploader thread (which sends). Every call that changes state commits before it
returns, so a caller told "queued" can crash the next instant without losing the item.

Item life cycle (table ``evidence`` keyed by ``event_id``; table ``flows`` keyed by camera, lane,
direction, class and interval)::

    queued ──next_due──► sending ──mark_sent──► sent ──(retention)──► local package deleted
      ▲                    │ mark_retry (attempts+1, next_attempt_at = now + backoff)
      ├────────────────────┤ mark_held (the same, held: the box's or the server's configuration)
      └────────────────────┤
                           └ mark_permanent_failure ──► failed_permanent (alerted; `requeue_failed`)

- **Verified before queued**: `enqueue_package` checks the package's signature and every file hash
  with the device's own public key (`violations.manifest.verify_package`); a corrupt package is
  refused and alerted, never uploaded.
- **Held, not failed**: an item the server refuses because of how the box or the device is set up
  (the server holds another signing key for the device, the package names another device or a
  camera the device is not registered for) stays ``queued`` with ``last_error`` starting with
  ``held: `` and is retried with backoff; `stats` counts such items (the edge's health is not ok
  while there are any). `release_held` (the key was found right again, `requeue_failed`) makes
  them due at once.
- **Idempotent**: enqueueing an event id or a flow key again is a no-op (a different manifest for a
  known event id is alerted as a conflict and the first one kept).
- **Restart**: rows left ``sending`` by a crash go back to ``queued`` on open; the server is idempotent
  on ``event_id`` so the resend of a package it already stored returns 200 and changes nothing.
  `adopt` enqueues package folders that were written but never queued (a crash between the evidence
  builder's rename and `enqueue_package`, or a disk too full to commit the row).
- **Bounded disk**: ``max_bytes`` for this database plus the evidence folder, and ``min_free_bytes``
  left free on the file system (something else may fill it, or the budget may not fit the disk).
  When short of either:
  1. delete local copies of packages the server acknowledged, oldest acknowledgement first;
  2. delete history rows of sent items;
  3. drop the oldest unsent flow counts (counted in ``flows_dropped``, logged);
  4. evidence that is not acknowledged is never dropped: the ``disk_full`` health flag is raised and
     an error logged, and new evidence is still accepted (the worker keeps detecting). When the disk
     is really full, a commit fails with `OutboxError` (``storage_error`` set, alerted); the package
     stays on disk and `adopt` queues it once there is room.
  A reserve file (``reserve_bytes``) beside the database is given up when the disk is so full that
  the database cannot be opened or an acknowledgement cannot be recorded: uploading is what frees
  the disk, so it must not be blocked by the disk being full. It is re-created once there is room.
- **Alerts** (corrupt package, conflict, permanent refusal, disk over budget, database unwritable)
  go to the log and to the ``alerts`` table, and are counted for `/metrics`.

One uploader at a time: `next_due` claims items for its caller. Other processes may open the same
file (SQLite locks it), e.g. an uploader in its own process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from phatnguoi.flows import FlowCount
from violations.manifest import MANIFEST_NAME, EvidenceError, verify_package

logger = logging.getLogger(__name__)

Kind = Literal["evidence", "flow"]
State = Literal["queued", "sending", "sent", "failed_permanent"]
STATES: tuple[State, ...] = ("queued", "sending", "sent", "failed_permanent")
SCHEMA_VERSION = 1
#: ``last_error`` of a queued item held for a configuration reason (see `Outbox.mark_held`).
HELD_PREFIX = "held: "
_MIB = 1024 * 1024
_TABLE: dict[Kind, str] = {"evidence": "evidence", "flow": "flows"}
_KEY: dict[Kind, str] = {"evidence": "event_id", "flow": "id"}
# Flow rows dropped per transaction when over budget: small enough to stop close to the budget.
_DROP_CHUNK = 200
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evidence (
    event_id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    path TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed_permanent')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL,
    response TEXT,
    package_deleted_at REAL
);
CREATE INDEX IF NOT EXISTS evidence_due ON evidence (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS flows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    direction TEXT NOT NULL,
    vehicle_class TEXT NOT NULL,
    interval_start REAL NOT NULL,
    interval_end REAL NOT NULL,
    count INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed_permanent')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL,
    response TEXT,
    UNIQUE (camera_id, lane, direction, vehicle_class, interval_start, interval_end)
);
CREATE INDEX IF NOT EXISTS flows_due ON flows (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS flows_age ON flows (interval_start);
CREATE TABLE IF NOT EXISTS flow_marks (camera_id TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT,
    message TEXT NOT NULL
);
"""


class OutboxError(RuntimeError):
    """The outbox database cannot be opened or written (disk full, I/O error, corrupt file).

    The message is one line. Nothing of the failed call was committed. `disk_full` tells a full file
    system (SQLite's SQLITE_FULL) from other failures."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


class OutboxConfig(BaseModel):
    """Disk budget and retention of the outbox (the ``outbox:`` section of an edge config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(
        8 * 1024 * _MIB, ge=_MIB, description="Budget for the outbox database plus the evidence folder."
    )
    retention_days: float = Field(
        7.0,
        ge=0.0,
        le=3650.0,
        description="Acknowledged packages stay on disk this long (0: deleted at once).",
    )
    history_days: float = Field(
        30.0,
        ge=0.0,
        le=3650.0,
        description="Rows of sent items are kept this long (restart idempotence, audit).",
    )
    min_free_bytes: int = Field(
        256 * _MIB, ge=0, description="Free space kept on the file system (the budget may not fit the disk)."
    )
    reserve_bytes: int = Field(
        16 * _MIB,
        ge=0,
        description="A file of this size is kept beside the database and given up when the disk is full, so"
        " that uploads can still be recorded (and their packages deleted).",
    )
    usage_scan_s: float = Field(
        60.0,
        ge=0.0,
        le=3600.0,
        description="Seconds between walks of the evidence folder to measure its size.",
    )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One item to send, as `next_due` hands it out.

    Attributes:
        kind: ``evidence`` (a package folder) or ``flow`` (one flow count).
        key: the event id, or the flow row id (as text).
        camera_id: the camera the item belongs to.
        attempts: failed attempts so far.
        created_at: when it was queued (epoch seconds).
        path: the package folder (evidence).
        manifest_sha256: SHA-256 of the package's manifest.json (evidence).
        payload: one entry of the flows request's ``counts`` (flow).
    """

    kind: Kind
    key: str
    camera_id: str
    attempts: int
    created_at: float
    path: Path | None = None
    manifest_sha256: str | None = None
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What `enqueue_package` did: ``queued`` (new row committed), ``exists`` (already known, same
    manifest), ``conflict`` (known with another manifest; the first kept, alerted) or ``rejected``
    (the package failed verification; alerted, not queued)."""

    event_id: str | None
    path: Path
    status: Literal["queued", "exists", "conflict", "rejected"]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LimitReport:
    """What `enforce_limit` did to get within the disk budget and free-space reserve; `disk_full`:
    still short after everything the policy may free was freed (the operator is alerted)."""

    usage_before: int
    usage_after: int
    packages_deleted: int
    history_deleted: int
    flows_dropped: int
    disk_full: bool


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Depths and ages for `/metrics` and health.

    Attributes:
        evidence, flows: rows per state.
        oldest_evidence_age_s / oldest_flow_age_s: age of the oldest unsent item (queued or sending),
            0 when none.
        flows_dropped: flow counts dropped to stay within the disk budget (since the outbox was made).
        usage_bytes / max_bytes: disk use (database + evidence folder) and budget.
        disk_full: over budget or short of free disk, with nothing left that may be freed (operator
            alerted); storage_error: the last failed database write, None once a write succeeds.
        alerts: alerts raised by this process, per kind.
        held: queued items (both kinds) held for a configuration reason (`Outbox.mark_held`);
            held_reason: the reason of one of them (as the server worded it), None when none is.
    """

    evidence: Mapping[str, int]
    flows: Mapping[str, int]
    oldest_evidence_age_s: float
    oldest_flow_age_s: float
    flows_dropped: int
    usage_bytes: int
    max_bytes: int
    disk_full: bool
    storage_error: str | None
    alerts: Mapping[str, int]
    held: int = 0
    held_reason: str | None = None

    @property
    def depth(self) -> int:
        """Unsent items (queued or sending) of both kinds."""
        return sum(self.evidence.get(s, 0) + self.flows.get(s, 0) for s in ("queued", "sending"))


def _folder_bytes(root: Path, exclude: Sequence[Path] = ()) -> int:
    """Bytes of the regular files under `root` (any depth, links not followed), `exclude` left out."""
    skip = {p.resolve() for p in exclude}
    total = 0
    for dirpath, _dirs, files in os.walk(root.resolve()):
        for name in files:
            path = Path(dirpath) / name
            if path in skip:
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue  # deleted while we looked (retention, a builder's temp folder)
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _package_folders(root: Path) -> list[Path]:
    """Folders under `root` (any depth) holding a ``manifest.json``; hidden and ``.tmp-*`` folders
    and everything below a package are skipped. Sorted."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if MANIFEST_NAME in files and dirpath != str(root):
            found.append(Path(dirpath))
            dirs[:] = []
    return sorted(found)


def _package_bytes(folder: Path) -> int:
    """Bytes of the regular files of one package folder (0 when it is gone; files deleted while we
    look are left out)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    total = 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total


class Outbox:
    """The durable outbox (see the module docstring). Thread-safe: one lock around the connection.

    Args:
        db_path: the SQLite file (created with its folder if needed).
        public_key: this device's Ed25519 public key, to verify packages before they are queued.
        evidence_root: the folder the evidence builder writes packages to (measured for the disk
            budget; `adopt` scans it). None: only the database counts.
        config: budget and retention.
        clock: epoch seconds (tests pass their own).

    Raises:
        OutboxError: the database cannot be opened, is corrupt, or is of a newer schema.
    """

    def __init__(
        self,
        db_path: Path,
        public_key: Ed25519PublicKey,
        *,
        evidence_root: Path | None = None,
        config: OutboxConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(db_path)
        self.public_key = public_key
        self.evidence_root = Path(evidence_root) if evidence_root is not None else None
        self.config = config or OutboxConfig()
        self.clock = clock
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self.alert_counts: Counter[str] = Counter()
        self.disk_full = False
        self.storage_error: str | None = None
        self._evidence_bytes = 0
        self._scanned_at = -float("inf")
        self._scanning = False  # a walk of the evidence folder is under way (outside the lock)
        self._added = 0  # running sum of the bytes of packages queued here (adjustments upwards)
        self._delete_lock = threading.Lock()  # one package deletion at a time (measure, then remove)
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutboxError(f"cannot open outbox {self.path}: {e}") from None
        self._conn = self._open()
        reset = self._reset_sending()
        self._ensure_reserve()
        if reset:
            logger.info(
                "outbox %s: %d items left 'sending' by the last run are queued again", self.path, reset
            )

    def _open(self) -> sqlite3.Connection:
        """Connect and set up; on a full disk (WAL and shared-memory files cannot be created) give up
        the reserve file and try once more."""
        for attempt in (1, 2):
            try:
                conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as e:
                raise OutboxError(f"cannot open outbox {self.path}: {e}") from None
            try:
                self._setup(conn)
                return conn
            except sqlite3.Error as e:
                conn.close()
                full = getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                if attempt == 1 and full and self._release_reserve():
                    continue
                raise OutboxError(
                    f"outbox {self.path} is unusable ({e})"
                    + ("" if full else "; move it aside to start afresh"),
                    disk_full=full,
                ) from None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ set-up

    def _setup(self, c: sqlite3.Connection) -> None:
        # auto_vacuum only takes effect on a new database, before any table exists: it lets dropped
        # rows give their pages back to the file system (a full disk needs the bytes, not free pages).
        c.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode WAL refused ({mode})")
        # FULL: the WAL is fsynced at every commit, so a committed row survives a power cut too.
        c.execute("PRAGMA synchronous=FULL")
        # A checkpoint every ~1 MiB of WAL, and the WAL file cut back to 1 MiB after it: the WAL is
        # part of the disk budget and must not keep the size of the largest burst.
        c.execute("PRAGMA wal_autocheckpoint=256")
        c.execute(f"PRAGMA journal_size_limit={_MIB}")
        ok = c.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {ok}")
        version = int(c.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this program's {SCHEMA_VERSION}"
            )
        c.executescript(_SCHEMA)
        if version != SCHEMA_VERSION:
            # Only when it changes: opening must write nothing, so that it works on a full disk.
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _reset_sending(self) -> int:
        left = self._read(
            "SELECT (SELECT count(*) FROM evidence WHERE state='sending') + (SELECT count(*) FROM flows"
            " WHERE state='sending')"
        )[0][0]
        if not left:
            return 0

        def reset(c: sqlite3.Connection) -> int:
            n = c.execute("UPDATE evidence SET state='queued' WHERE state='sending'").rowcount
            return int(n + c.execute("UPDATE flows SET state='queued' WHERE state='sending'").rowcount)

        return self._write(reset, may_use_reserve=True)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (fsynced) before the block's caller goes on.

        Raises:
            OutboxError: SQLite failed (disk full, I/O error); the transaction was rolled back.
        """
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                msg = f"outbox {self.path.name}: {e}"
                if self.storage_error is None:
                    self.alert_counts["storage"] += 1
                    logger.error("ALERT storage: %s (writes fail until this clears)", msg)
                self.storage_error = msg
                full = getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                raise OutboxError(msg, disk_full=full) from None
            self.storage_error = None

    def _write(self, fn: Callable[[sqlite3.Connection], _T], *, may_use_reserve: bool = False) -> _T:
        """Run `fn` in one write transaction. With `may_use_reserve` (writes that let disk space be
        freed: acknowledgements, deletions), a full disk gives up the reserve file and tries again once.

        Raises:
            OutboxError: the transaction failed (and was rolled back).
        """
        try:
            with self._tx() as c:
                return fn(c)
        except OutboxError as e:
            if not (may_use_reserve and e.disk_full and self._release_reserve()):
                raise
        with self._tx() as c:
            return fn(c)

    @property
    def reserve_path(self) -> Path:
        """The reserve file beside the database."""
        return self.path.with_name(self.path.name + ".reserve")

    def _release_reserve(self) -> bool:
        try:
            self.reserve_path.unlink()
        except FileNotFoundError:
            return False
        logger.error(
            "ALERT storage: disk full; the %s reserve was given up to record uploads", self.reserve_path.name
        )
        self.alert_counts["reserve_used"] += 1
        return True

    def _ensure_reserve(self) -> None:
        """(Re)create the reserve file when there is room for it beyond ``min_free_bytes``."""
        size = self.config.reserve_bytes
        path = self.reserve_path
        if size <= 0 or (path.exists() and path.stat().st_size >= size):
            return
        if self.free_bytes() < size + self.config.min_free_bytes:
            return
        chunk = b"\0" * min(size, _MIB)
        try:
            # Written, not truncated: a sparse file would hold no blocks to give back.
            with path.open("wb") as fh:
                for _ in range(0, size, len(chunk)):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            path.unlink(missing_ok=True)
            logger.warning("outbox: could not create the %d-byte reserve file: %s", size, e)

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, args).fetchall())
            except sqlite3.Error as e:
                raise OutboxError(f"outbox {self.path.name}: {e}") from None

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` (no arguments, must not block) whenever an item is queued: the uploader
        uses it to wake up at once instead of polling."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for cb in self._listeners:
            cb()

    def close(self) -> None:
        """Checkpoint the WAL and close the database (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self.checkpoint()
            self._closed = True
            self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ alerts

    def alert(self, kind: str, subject: str | None, message: str, *, level: int = logging.ERROR) -> None:
        """Tell the operator: a log line and a row in ``alerts`` (best effort when the disk is full)."""
        self.alert_counts[kind] += 1
        logger.log(level, "ALERT %s%s: %s", kind, f" [{subject}]" if subject else "", message)
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO alerts (at, kind, subject, message) VALUES (?, ?, ?, ?)",
                    (self.clock(), kind, subject, message[:1000]),
                )
        except OutboxError as e:
            logger.error("outbox %s: could not record the alert (%s)", self.path, e)

    def alerts(self, since_id: int = 0) -> list[dict[str, Any]]:
        """Recorded alerts after `since_id`, oldest first: ``{id, at, kind, subject, message}``."""
        rows = self._read(
            "SELECT id, at, kind, subject, message FROM alerts WHERE id > ? ORDER BY id", (since_id,)
        )
        return [dict(zip(("id", "at", "kind", "subject", "message"), r, strict=True)) for r in rows]

    # ------------------------------------------------------------------ enqueue

    def enqueue_package(self, folder: Path, now: float | None = None) -> EnqueueResult:
        """Verify an evidence package and queue it for upload (committed before this returns).

        Args:
            folder: the package folder, named after its event id.
            now: epoch seconds (default: the clock).

        Returns:
            queued / exists / conflict / rejected (see `EnqueueResult`). A rejected package stays
            where it is; it is alerted, not uploaded.

        Raises:
            OutboxError: the row could not be committed (disk full, I/O error). The package is still
                on disk; queue it again later, or `adopt` finds it at the next start.
        """
        folder = Path(folder).resolve()
        t = self.clock() if now is None else now
        try:
            manifest = verify_package(folder, self.public_key)
            manifest_bytes = (folder / MANIFEST_NAME).read_bytes()
            size = _package_bytes(folder)
        except (EvidenceError, OSError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.alert("corrupt_package", folder.name, f"{folder}: not queued: {reason}")
            return EnqueueResult(None, folder, "rejected", reason)
        event_id = str(manifest["event_id"])
        if folder.name != event_id:
            reason = f"folder name {folder.name!r} is not the event id {event_id!r}"
            self.alert("corrupt_package", folder.name, f"{folder}: not queued: {reason}")
            return EnqueueResult(event_id, folder, "rejected", reason)
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        with self._tx() as c:
            inserted = c.execute(
                "INSERT OR IGNORE INTO evidence (event_id, camera_id, path, manifest_sha256, bytes, state,"
                " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (event_id, str(manifest["camera_id"]), str(folder), digest, size, t, t),
            ).rowcount
            stored = (
                None
                if inserted
                else c.execute(
                    "SELECT manifest_sha256 FROM evidence WHERE event_id = ?", (event_id,)
                ).fetchone()
            )
        if not inserted:
            if stored is not None and stored[0] != digest:
                msg = (
                    f"event {event_id} is queued with manifest {stored[0][:12]}…, {folder} has {digest[:12]}…"
                )
                self.alert("conflict", event_id, msg + "; the first is kept")
                return EnqueueResult(event_id, folder, "conflict", msg)
            return EnqueueResult(event_id, folder, "exists")
        self._adjust_evidence_bytes(size)
        logger.debug("outbox: evidence %s queued (%d bytes)", event_id, size)
        self._notify()
        self._enforce_quietly(t)
        return EnqueueResult(event_id, folder, "queued")

    def adopt(self, root: Path | None = None, now: float | None = None) -> list[EnqueueResult]:
        """Queue every package folder under `root` (default: the evidence root; any depth, e.g.
        ``<data>/<camera>/evidence/<event_id>``) that is not in the outbox yet.

        Call once at start-up, after the evidence builders' `recover` (which removes half-written
        ``.tmp-*`` folders): packages written but never queued (a crash between the two, a full
        disk) are picked up. A package folder is one holding a ``manifest.json``; hidden folders are
        skipped. Packages acknowledged and deleted long ago are not there to find.

        Raises:
            OutboxError: a row could not be committed.
        """
        folder = root if root is not None else self.evidence_root
        if folder is None or not folder.is_dir():
            return []
        known = {r[0] for r in self._read("SELECT event_id FROM evidence")}
        results = [
            self.enqueue_package(path, now) for path in _package_folders(folder) if path.name not in known
        ]
        if results:
            n = sum(r.status == "queued" for r in results)
            logger.info("outbox: adopted %d of %d unqueued package folders in %s", n, len(results), folder)
        return results

    def enqueue_flows(self, counts: Iterable[FlowCount], now: float | None = None) -> int:
        """Queue flow counts (one transaction, committed before this returns).

        A count whose key is already queued or sent is ignored (a different value is logged: the
        first is kept, as the server does).

        Returns:
            How many new rows were queued.

        Raises:
            OutboxError: nothing was committed (disk full, I/O error).
        """
        items = list(counts)
        if not items:
            return 0
        t = self.clock() if now is None else now
        new = 0
        differing = 0
        with self._tx() as c:
            for fc in items:
                cur = c.execute(
                    "INSERT OR IGNORE INTO flows (camera_id, lane, direction, vehicle_class, interval_start,"
                    " interval_end, count, payload, state, next_attempt_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                    (*fc.key, fc.count, json.dumps(fc.to_json(), separators=(",", ":")), t, t),
                )
                if cur.rowcount:
                    new += 1
                else:
                    row = c.execute(
                        "SELECT count FROM flows WHERE camera_id=? AND lane=? AND direction=? AND"
                        " vehicle_class=? AND interval_start=? AND interval_end=?",
                        fc.key,
                    ).fetchone()
                    differing += int(row is not None and row[0] != fc.count)
                c.execute(
                    "INSERT INTO flow_marks (camera_id, until) VALUES (?, ?) ON CONFLICT(camera_id)"
                    " DO UPDATE SET until = max(until, excluded.until)",
                    (fc.camera_id, fc.interval_end),
                )
        if differing:
            logger.warning(
                "outbox: %d flow counts differ from the queued ones for the same key (kept first)", differing
            )
        if new:
            self._notify()
            self._enforce_quietly(t)
        return new

    def flows_until(self, camera_id: str, now: float | None = None) -> float | None:
        """End (epoch seconds) of the latest interval ever queued for `camera_id`, or None; never
        later than `now` (a mark ahead of the clock was written before the clock was set back).

        A restarted `FlowCounter` gets it as ``resume_after``, so it never re-emits an interval."""
        t = self.clock() if now is None else now
        rows = self._read("SELECT until FROM flow_marks WHERE camera_id = ?", (camera_id,))
        return min(float(rows[0][0]), t) if rows else None

    def rebase(self, step_s: float, now: float | None = None) -> int:
        """The wall clock was set back by `step_s` seconds (> 0): the retry times of queued items and
        the creation times that now lie ahead of it move back with it, so that a retry waits what it
        was meant to wait (not the length of the step) and the age of the oldest item stays true.

        Returns:
            Rows moved.
        """
        t = self.clock() if now is None else now

        def move(c: sqlite3.Connection) -> int:
            n = 0
            for table in _TABLE.values():
                n += int(
                    c.execute(
                        f"UPDATE {table} SET next_attempt_at = next_attempt_at - ?"
                        " WHERE state = 'queued' AND next_attempt_at > ?",
                        (step_s, t),
                    ).rowcount
                )
                c.execute(f"UPDATE {table} SET created_at = created_at - ? WHERE created_at > ?", (step_s, t))
            return n

        return self._write(move, may_use_reserve=True)

    # ------------------------------------------------------------------ sending

    def next_due(self, now: float | None = None, limit: int = 8, kind: Kind = "evidence") -> list[OutboxItem]:
        """Claim up to `limit` queued items of `kind` whose next attempt is due, oldest first.

        Claimed items are ``sending`` until `mark_sent`, `mark_retry`, `mark_permanent_failure` or
        `release` (or the next start, after a crash).
        """
        t = self.clock() if now is None else now
        table, key = _TABLE[kind], _KEY[kind]
        cols = (
            "event_id, camera_id, attempts, created_at, path, manifest_sha256, NULL"
            if kind == "evidence"
            else ("id, camera_id, attempts, created_at, NULL, NULL, payload")
        )

        def claim(c: sqlite3.Connection) -> list[Any]:
            rows = c.execute(
                f"SELECT {cols} FROM {table} WHERE state='queued' AND next_attempt_at <= ?"
                " ORDER BY created_at, rowid LIMIT ?",
                (t, int(limit)),
            ).fetchall()
            c.executemany(f"UPDATE {table} SET state='sending' WHERE {key} = ?", [(r[0],) for r in rows])
            return rows

        # Claiming is the first step of an upload, which is what frees a full disk: it may use the reserve.
        rows = self._write(claim, may_use_reserve=True)
        return [
            OutboxItem(
                kind=kind,
                key=str(r[0]),
                camera_id=str(r[1]),
                attempts=int(r[2]),
                created_at=float(r[3]),
                path=Path(r[4]) if r[4] is not None else None,
                manifest_sha256=r[5],
                payload=json.loads(r[6]) if r[6] is not None else None,
            )
            for r in rows
        ]

    def _update(self, items: OutboxItem | Sequence[OutboxItem], sql: str, args: Sequence[Any]) -> None:
        batch = [items] if isinstance(items, OutboxItem) else list(items)

        def run(stmt: str, rows: list[tuple[Any, ...]]) -> Callable[[sqlite3.Connection], object]:
            return lambda c: c.executemany(stmt, rows)

        for kind in ("evidence", "flow"):
            keys = [(*args, i.key) for i in batch if i.kind == kind]
            if keys:
                self._write(run(sql.format(table=_TABLE[kind], key=_KEY[kind]), keys), may_use_reserve=True)

    def mark_sent(
        self,
        items: OutboxItem | Sequence[OutboxItem],
        response: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> None:
        """The server acknowledged these items (stored now, or already before). With
        ``retention_days == 0`` their local packages are deleted right away.

        Raises:
            OutboxError: not recorded; the items will be sent again, which the server answers as
                duplicates.
        """
        t = self.clock() if now is None else now
        text = json.dumps(dict(response), default=str)[:2000] if response is not None else None
        self._update(
            items,
            "UPDATE {table} SET state='sent', sent_at=?, response=?, last_error=NULL WHERE {key} = ?",
            (t, text),
        )
        if self.config.retention_days == 0:
            self.apply_retention(t)

    def mark_retry(
        self,
        items: OutboxItem | Sequence[OutboxItem],
        error: str,
        backoff_s: float,
        now: float | None = None,
    ) -> None:
        """These attempts failed for a reason that may pass: try again in `backoff_s` seconds."""
        t = self.clock() if now is None else now
        self._update(
            items,
            "UPDATE {table} SET state='queued', attempts=attempts+1, next_attempt_at=?, last_error=?"
            " WHERE {key} = ?",
            (t + max(0.0, backoff_s), error[:500]),
        )

    def mark_permanent_failure(
        self,
        items: OutboxItem | Sequence[OutboxItem],
        reason: str,
        now: float | None = None,
        *,
        alert_kind: str = "refused",
    ) -> None:
        """The server refused these items for good: alerted as `alert_kind` (``refused``, or
        ``conflict`` for another manifest under the same event id); `requeue_failed` sends them again."""
        t = self.clock() if now is None else now
        batch = [items] if isinstance(items, OutboxItem) else list(items)
        self._update(
            batch,
            "UPDATE {table} SET state='failed_permanent', attempts=attempts+1, next_attempt_at=?,"
            " last_error=? WHERE {key} = ?",
            (t, reason[:500]),
        )
        subjects = ", ".join(i.key for i in batch[:3]) + (" …" if len(batch) > 3 else "")
        self.alert(alert_kind, subjects, f"{len(batch)} {batch[0].kind} item(s) refused for good: {reason}")

    def mark_held(
        self,
        items: OutboxItem | Sequence[OutboxItem],
        reason: str,
        backoff_s: float,
        now: float | None = None,
    ) -> None:
        """The server refused these items because of the box's or the device's configuration (a
        registered key that is not the box's, another device's package): they stay queued, held,
        and are tried again in `backoff_s` seconds or at once after `release_held`. Not alerted here:
        the uploader tells the operator once per cause."""
        t = self.clock() if now is None else now
        self._update(
            items,
            "UPDATE {table} SET state='queued', attempts=attempts+1, next_attempt_at=?, last_error=?"
            " WHERE {key} = ?",
            (t + max(0.0, backoff_s), (HELD_PREFIX + reason)[:500]),
        )

    def release_held(self, now: float | None = None) -> int:
        """Make every held item due now (its cause may be fixed). Returns how many."""
        t = self.clock() if now is None else now
        n = 0
        with self._tx() as c:
            for table in _TABLE.values():
                n += c.execute(
                    f"UPDATE {table} SET next_attempt_at=? WHERE state='queued' AND last_error LIKE ?",
                    (t, HELD_PREFIX + "%"),
                ).rowcount
        if n:
            self._notify()
        return n

    def release(self, items: OutboxItem | Sequence[OutboxItem]) -> None:
        """Give claimed items back unattempted (shutdown, server found unreachable mid-round)."""
        self._update(items, "UPDATE {table} SET state='queued' WHERE {key} = ? AND state='sending'", ())

    def requeue_failed(self, kind: Kind | None = None, now: float | None = None) -> int:
        """Queue permanently failed items again, and make held ones due now (after the operator fixed
        the cause). Returns how many."""
        t = self.clock() if now is None else now
        n = 0
        with self._tx() as c:
            for k in (kind,) if kind else ("evidence", "flow"):
                sql = (
                    f"UPDATE {_TABLE[k]} SET state='queued', next_attempt_at=? WHERE state='failed_permanent'"
                    " OR (state='queued' AND last_error LIKE ?)"
                )
                n += c.execute(sql, (t, HELD_PREFIX + "%")).rowcount
        if n:
            self._notify()
        return n

    def next_attempt_at(self, kind: Kind | None = None) -> float | None:
        """When the earliest queued item (of `kind`, default both) becomes due (epoch seconds), or None
        when nothing is queued."""
        rows = self._read(
            " UNION ALL ".join(
                f"SELECT min(next_attempt_at) AS t FROM {_TABLE[k]} WHERE state='queued'"
                for k in ((kind,) if kind else ("evidence", "flow"))
            ).join(("SELECT min(t) FROM (", ")"))
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # ------------------------------------------------------------------ disk budget, retention

    def _adjust_evidence_bytes(self, delta: int) -> None:
        with self._lock:
            self._evidence_bytes = max(0, self._evidence_bytes + delta)
            if delta > 0:
                self._added += delta

    def _rescan_evidence(self, t: float) -> None:
        """Walk the evidence folder when ``usage_scan_s`` has passed. The walk (seconds on a large
        folder on an SD card) runs outside the lock, so queueing and uploads go on meanwhile. Packages
        queued during it are added to its result; deletions during it are not subtracted (the walk
        may not have seen the package). Either way the next walk is exact; until then the count is
        too much, never too little."""
        if self.evidence_root is None:
            return
        with self._lock:
            if self._scanning or t - self._scanned_at < self.config.usage_scan_s:
                return
            self._scanning = True
            added = self._added
        try:
            # The database may live inside the evidence root: its files are counted separately.
            own = [Path(f"{self.path}{suffix}") for suffix in ("", "-wal", "-shm", ".reserve")]
            scanned = _folder_bytes(self.evidence_root, own)
        finally:
            with self._lock:
                self._scanning = False
        with self._lock:
            self._evidence_bytes = scanned + self._added - added
            self._scanned_at = t

    def usage_bytes(self, now: float | None = None) -> int:
        """Disk used: the database's live pages and WAL, plus the evidence folder (rescanned every
        ``usage_scan_s``; adjusted in between for packages queued and deleted here)."""
        t = self.clock() if now is None else now
        self._rescan_evidence(t)
        with self._lock:
            try:
                page_size, pages, free = (
                    int(self._conn.execute(f"PRAGMA {p}").fetchone()[0])
                    for p in ("page_size", "page_count", "freelist_count")
                )
            except sqlite3.Error as e:
                raise OutboxError(f"outbox {self.path.name}: {e}") from None
            evidence = self._evidence_bytes
        wal = Path(f"{self.path}-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        return (pages - free) * page_size + wal_bytes + evidence

    def free_bytes(self) -> int:
        """Free space on the file system(s) holding the database and the evidence folder (the
        smaller, if they differ)."""
        paths = [self.path.parent] + ([self.evidence_root] if self.evidence_root is not None else [])
        free = []
        for p in paths:
            try:
                free.append(shutil.disk_usage(p).free)
            except OSError:
                continue
        return min(free) if free else 0

    def _deficit(self, usage: int) -> int:
        """Bytes to free: over the budget, or short of the file system's free-space reserve."""
        return max(usage - self.config.max_bytes, self.config.min_free_bytes - self.free_bytes())

    def enforce_limit(self, now: float | None = None) -> LimitReport:
        """Get within ``max_bytes`` and ``min_free_bytes`` by the policy of the module docstring;
        raise or clear the ``disk_full`` flag. Never deletes unacknowledged evidence.

        Raises:
            OutboxError: the database could not be written while freeing space.
        """
        t = self.clock() if now is None else now
        before = usage = self.usage_bytes(t)
        if self._deficit(usage) > 0:
            self._vacuum()  # the WAL may hold a burst of writes: empty it before deleting anything
            usage = self.usage_bytes(t)
        packages = history = dropped = 0
        if self._deficit(usage) > 0:
            rows = self._read(
                "SELECT event_id, path, bytes FROM evidence WHERE state='sent' AND package_deleted_at IS NULL"
                " ORDER BY sent_at"
            )
            for event_id, path, size in rows:
                if self._deficit(usage) <= 0:
                    break
                self._delete_package(str(event_id), Path(path), t)
                usage -= int(size)
                packages += 1
            if packages:
                logger.warning(
                    "outbox short of disk: deleted %d acknowledged packages before their retention", packages
                )
        if self._deficit(usage) > 0:

            def forget_sent(c: sqlite3.Connection) -> int:
                n = int(c.execute("DELETE FROM flows WHERE state='sent'").rowcount)
                gone = "DELETE FROM evidence WHERE state='sent' AND package_deleted_at IS NOT NULL"
                return n + int(c.execute(gone).rowcount)

            history = self._write(forget_sent, may_use_reserve=True)
            self._vacuum()
            usage = self.usage_bytes(t)

        def drop_oldest_flows(c: sqlite3.Connection) -> int:
            n = int(
                c.execute(
                    "DELETE FROM flows WHERE id IN (SELECT id FROM flows WHERE state IN ('queued',"
                    " 'failed_permanent') ORDER BY interval_start, id LIMIT ?)",
                    (_DROP_CHUNK,),
                ).rowcount
            )
            if n:
                c.execute(
                    "INSERT INTO counters (name, value) VALUES ('flows_dropped', ?) ON CONFLICT(name)"
                    " DO UPDATE SET value = value + excluded.value",
                    (n,),
                )
            return n

        while self._deficit(usage) > 0:
            n = self._write(drop_oldest_flows, may_use_reserve=True)
            if not n:
                break
            dropped += n
            self._vacuum()
            usage = self.usage_bytes(t)
        if dropped:
            logger.warning("outbox short of disk: dropped the %d oldest unsent flow counts", dropped)
        full = self._deficit(usage) > 0
        if full and not self.disk_full:
            self.alert(
                "disk_full",
                None,
                f"{usage / _MIB:.1f} MiB used of a {self.config.max_bytes / _MIB:.1f} MiB budget,"
                f" {self.free_bytes() / _MIB:.1f} MiB free on disk"
                f" (reserve {self.config.min_free_bytes / _MIB:.1f} MiB), and only unsent evidence is left:"
                " nothing is dropped; free disk space or restore the uplink",
            )
        elif not full and self.disk_full:
            logger.warning(
                "outbox back within its disk budget (%.1f MiB of %.1f MiB)",
                usage / _MIB,
                self.config.max_bytes / _MIB,
            )
        self.disk_full = full
        if not full:
            self._ensure_reserve()
        return LimitReport(before, usage, packages, history, dropped, full)

    def _enforce_quietly(self, now: float) -> None:
        # After a committed enqueue: the item IS queued, so a failure to free space must not be
        # reported to the caller as a failure to queue.
        try:
            self.enforce_limit(now)
        except Exception as e:  # noqa: BLE001 - the item is queued: nothing may undo that for the caller
            logger.error("outbox: could not enforce the disk budget: %s", e)

    def checkpoint(self) -> None:
        """Write the WAL into the database file and empty it (shutdown; before measuring disk use)."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as e:
                logger.warning("outbox %s: checkpoint failed: %s", self.path, e)

    def _vacuum(self) -> None:
        # Give freed pages back to the file system: incremental_vacuum moves them to the end of the
        # file, and a TRUNCATE checkpoint writes that into the database file and empties the WAL.
        with self._lock:
            try:
                self._conn.execute("PRAGMA incremental_vacuum").fetchall()
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as e:
                logger.warning("outbox %s: incremental vacuum failed: %s", self.path, e)

    def _delete_package(self, event_id: str, folder: Path, now: float) -> None:
        # The frame loop (after a queueing) and the uploader (housekeeping) may free space at once,
        # from the same list of acknowledged packages: one deletes a folder, the other finds it gone.
        with self._delete_lock:
            size = _package_bytes(folder) if folder.is_dir() else 0
            shutil.rmtree(folder, ignore_errors=True)
        try:
            self._write(
                lambda c: c.execute(
                    "UPDATE evidence SET package_deleted_at=? WHERE event_id=?", (now, event_id)
                ),
                may_use_reserve=True,
            )
        except OutboxError as e:
            # The folder is gone either way; the row is fixed by the next retention pass.
            logger.error("outbox: package %s deleted but not recorded: %s", event_id, e)
        self._adjust_evidence_bytes(-size)

    def apply_retention(self, now: float | None = None) -> tuple[int, int]:
        """Delete local packages acknowledged more than ``retention_days`` ago, and history rows
        of sent items (and alerts) older than ``history_days``.

        Returns:
            (packages deleted, history rows deleted).
        """
        t = self.clock() if now is None else now
        cutoff = t - self.config.retention_days * 86400.0
        rows = self._read(
            "SELECT event_id, path FROM evidence WHERE state='sent' AND package_deleted_at IS NULL"
            " AND sent_at <= ?",
            (cutoff,),
        )
        for event_id, path in rows:
            self._delete_package(str(event_id), Path(path), t)
        history_cutoff = t - self.config.history_days * 86400.0
        with self._tx() as c:
            gone = c.execute(
                "DELETE FROM evidence WHERE state='sent' AND package_deleted_at IS NOT NULL AND sent_at < ?",
                (history_cutoff,),
            ).rowcount
            gone += c.execute(
                "DELETE FROM flows WHERE state='sent' AND sent_at < ?", (history_cutoff,)
            ).rowcount
            c.execute("DELETE FROM alerts WHERE at < ?", (history_cutoff,))
        return len(rows), int(gone)

    # ------------------------------------------------------------------ metrics

    def counter(self, name: str) -> int:
        """A persistent counter (``flows_dropped``)."""
        rows = self._read("SELECT value FROM counters WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def stats(self, now: float | None = None) -> OutboxStats:
        """Depth per state, age of the oldest unsent item, drops, disk use, alerts."""
        t = self.clock() if now is None else now
        per: dict[str, dict[str, int]] = {}
        ages: dict[str, float] = {}
        for kind, table in _TABLE.items():
            rows = self._read(f"SELECT state, count(*) FROM {table} GROUP BY state")
            per[kind] = {s: 0 for s in STATES} | {str(s): int(n) for s, n in rows}
            oldest = self._read(f"SELECT min(created_at) FROM {table} WHERE state IN ('queued', 'sending')")
            ages[kind] = max(0.0, t - float(oldest[0][0])) if oldest[0][0] is not None else 0.0
        held = self._read(
            "SELECT count(*), max(reason) FROM (SELECT last_error AS reason FROM evidence WHERE"
            " state='queued' AND last_error LIKE ?1 UNION ALL SELECT last_error FROM flows WHERE"
            " state='queued' AND last_error LIKE ?1)",
            (HELD_PREFIX + "%",),
        )[0]
        return OutboxStats(
            held=int(held[0]),
            held_reason=str(held[1]).removeprefix(HELD_PREFIX) if held[1] is not None else None,
            evidence=per["evidence"],
            flows=per["flow"],
            oldest_evidence_age_s=ages["evidence"],
            oldest_flow_age_s=ages["flow"],
            flows_dropped=self.counter("flows_dropped"),
            usage_bytes=self.usage_bytes(t),
            max_bytes=self.config.max_bytes,
            disk_full=self.disk_full,
            storage_error=self.storage_error,
            alerts=dict(self.alert_counts),
        )

    def evidence_rows(self) -> list[dict[str, Any]]:
        """Every evidence row (for tests, `phatnguoi edge status` and audits)."""
        cols = (
            "event_id", "camera_id", "path", "manifest_sha256", "bytes", "state", "attempts",
            "next_attempt_at", "last_error", "created_at", "sent_at", "response", "package_deleted_at",
        )  # fmt: skip
        rows = self._read(f"SELECT {', '.join(cols)} FROM evidence ORDER BY created_at, event_id")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def flow_rows(self) -> list[dict[str, Any]]:
        """Every flow row, oldest interval first."""
        cols = (
            "id", "camera_id", "lane", "direction", "vehicle_class", "interval_start", "interval_end",
            "count", "state", "attempts", "last_error", "sent_at",
        )  # fmt: skip
        rows = self._read(f"SELECT {', '.join(cols)} FROM flows ORDER BY interval_start, id")
        return [dict(zip(cols, r, strict=True)) for r in rows]
