"""The durable outbox on real signed packages and a real SQLite file: verification before queueing,
idempotence, the state machine, restarts (including a SIGKILLed process), retention and the disk
budget (oldest flow counts dropped first, evidence never)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from phatnguoi.flows import FlowCount
from phatnguoi.outbox import Outbox, OutboxConfig, OutboxError
from tests.api.evidence import build_package
from tests.conftest import REPO_ROOT
from tests.edge.conftest import Clock
from tests.edge.packages import make_packages, noise_package, write_package
from violations.manifest import public_key_pem

DAY = 86400.0
T0 = 1_699_999_800.0


def flows(n: int, *, start: float = T0, camera: str = "cam-a1", count: int = 3) -> list[FlowCount]:
    """`n` flow counts in consecutive 5-minute intervals from `start`."""
    return [
        FlowCount(camera, "approach", "forward", "motorcycle", start + 300 * k, start + 300 * (k + 1), count)
        for k in range(n)
    ]


def sha(path: Path) -> str:
    return hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Enqueue: verified, idempotent, committed
# ---------------------------------------------------------------------------------------------------


def test_enqueue_verifies_commits_and_is_idempotent(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path, tmp_path: Path
) -> None:
    ob = make_outbox(key.public_key())
    [folder] = make_packages(key, evidence_root, 1, device_id="edge-1", camera_id="cam-a1")
    first = ob.enqueue_package(folder)
    assert (first.status, first.event_id) == ("queued", folder.name)
    # Committed: another connection sees it at once.
    with sqlite3.connect(tmp_path / "outbox.db") as other:
        row = other.execute("SELECT state, manifest_sha256, camera_id FROM evidence").fetchone()
    assert row == ("queued", sha(folder), "cam-a1")
    assert ob.enqueue_package(folder).status == "exists"
    assert ob.stats().evidence["queued"] == 1
    # The same event id with another (validly signed) manifest elsewhere: the first is kept, alerted.
    other_root = tmp_path / "elsewhere"
    pkg = build_package(key, device_id="edge-1", camera_id="cam-a1", event_id=folder.name, seed=9)
    clash = ob.enqueue_package(write_package(pkg, other_root))
    assert clash.status == "conflict"
    assert ob.evidence_rows()[0]["manifest_sha256"] == sha(folder)
    assert [a["kind"] for a in ob.alerts()] == ["conflict"]


def _alter_still(folder: Path) -> None:
    p = folder / "still_at.jpg"
    data = bytearray(p.read_bytes())
    data[200] ^= 0xFF
    p.write_bytes(bytes(data))


def _edit_manifest(folder: Path) -> None:
    p = folder / "manifest.json"
    p.write_bytes(p.read_bytes().replace(b'"track_id":18', b'"track_id":19'))


def _rename(folder: Path) -> None:
    folder.rename(folder.with_name("00000000-0000-4000-8000-000000000000"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_alter_still, "does not match its SHA-256"),
        (_edit_manifest, "signature does not match"),
        (lambda f: (f / "still_after.jpg").unlink(), "listed in the manifest but missing"),
        (lambda f: (f / "extra.jpg").write_bytes(b"\xff\xd8\xff"), "not listed in the manifest"),
        (lambda f: (f / "manifest.sig").unlink(), "manifest.sig is missing"),
        (_rename, "is not the event id"),
    ],
)
def test_a_corrupt_package_is_refused_and_alerted(
    make_outbox: Callable[..., Outbox],
    key: Ed25519PrivateKey,
    evidence_root: Path,
    damage: Callable[[Path], object],
    reason: str,
) -> None:
    ob = make_outbox(key.public_key())
    [folder] = make_packages(key, evidence_root, 1, device_id="edge-1", camera_id="cam-a1")
    damage(folder)
    [path] = list(evidence_root.iterdir())
    result = ob.enqueue_package(path)
    assert result.status == "rejected" and reason in (result.reason or ""), result
    assert ob.evidence_rows() == []
    [alert] = ob.alerts()
    assert alert["kind"] == "corrupt_package" and reason in alert["message"]


def test_a_package_signed_by_another_key_is_refused(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path
) -> None:
    ob = make_outbox(key.public_key())
    [folder] = make_packages(
        Ed25519PrivateKey.generate(), evidence_root, 1, device_id="edge-1", camera_id="c"
    )
    assert ob.enqueue_package(folder).status == "rejected"


def test_a_row_is_committed_before_the_caller_hears_queued_even_under_sigkill(
    key: Ed25519PrivateKey, evidence_root: Path, tmp_path: Path, make_outbox: Callable[..., Outbox]
) -> None:
    """A process queues packages one by one and prints each id once `enqueue_package` returned; it is
    SIGKILLed after 8. Every printed id is in the database, and the database is intact."""
    make_packages(key, evidence_root, 100, device_id="edge-1", camera_id="cam-a1")
    pem = tmp_path / "device.pub"
    pem.write_text(public_key_pem(key))
    args = [str(tmp_path / "outbox.db"), str(evidence_root), str(pem)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.edge.enqueue_proc", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    told: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while len(told) < 8 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            status, event_id = line.split()
            assert status == "queued"
            told.append(event_id)
    finally:
        proc.kill()
        proc.wait(10)
    assert len(told) == 8
    ob = make_outbox(key.public_key())
    rows = {r["event_id"]: r for r in ob.evidence_rows()}
    assert set(told) <= set(rows)
    assert all(rows[e]["state"] == "queued" for e in told)
    assert len(rows) < 100, "the process was to be killed before the end"
    # Whatever it had not queued is found on disk at the next start.
    adopted = ob.adopt()
    assert {r.status for r in adopted} == {"queued"}
    assert len(ob.evidence_rows()) == 100


# ---------------------------------------------------------------------------------------------------
# Sending states
# ---------------------------------------------------------------------------------------------------


def test_state_machine_backoff_permanent_failure_and_requeue(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path, clock: Clock
) -> None:
    ob = make_outbox(key.public_key())
    folders = make_packages(key, evidence_root, 3, device_id="edge-1", camera_id="cam-a1")
    for k, f in enumerate(folders):
        clock.t += 1
        ob.enqueue_package(f)
        assert k + 1 == ob.stats().evidence["queued"]
    claimed = ob.next_due(limit=2)
    assert [i.key for i in claimed] == [f.name for f in folders[:2]]  # oldest first
    assert claimed[0].path == folders[0].resolve() and claimed[0].manifest_sha256 == sha(folders[0])
    assert ob.stats().evidence["sending"] == 2
    third = ob.next_due(limit=5)
    assert [i.key for i in third] == [folders[2].name]  # claimed ones are not handed out twice
    ob.mark_sent(claimed[0], {"status": 201, "id": 7})
    ob.mark_retry(claimed[1], "HTTP 500: boom", backoff_s=30)
    ob.release(third)  # given back unattempted (a shutdown)
    assert ob.next_attempt_at() == clock.t  # the third, due since it was queued (now)
    assert [i.key for i in ob.next_due(limit=5)] == [folders[2].name]
    clock.t += 29
    assert ob.next_due(limit=5) == []
    clock.t += 1
    [again] = ob.next_due(limit=5)
    assert (again.key, again.attempts) == (folders[1].name, 1)
    ob.mark_permanent_failure(again, "HTTP 422: manifest: bad field")
    rows = {r["event_id"]: r for r in ob.evidence_rows()}
    assert rows[folders[0].name]["state"] == "sent" and '"id": 7' in rows[folders[0].name]["response"]
    assert rows[folders[1].name]["state"] == "failed_permanent"
    assert rows[folders[1].name]["last_error"] == "HTTP 422: manifest: bad field"
    assert rows[folders[2].name]["state"] == "sending"
    assert [a["kind"] for a in ob.alerts()] == ["refused"]
    assert ob.requeue_failed() == 1
    assert ob.stats().evidence == {"queued": 1, "sending": 1, "sent": 1, "failed_permanent": 0}


def test_items_left_sending_by_a_crash_are_queued_again_at_start(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path
) -> None:
    first = make_outbox(key.public_key())
    for f in make_packages(key, evidence_root, 3, device_id="edge-1", camera_id="cam-a1"):
        first.enqueue_package(f)
    first.enqueue_flows(flows(2))
    assert len(first.next_due(limit=9)) == 3 and len(first.next_due(limit=9, kind="flow")) == 2
    # The process dies without closing anything; the next one opens the same file.
    restarted = make_outbox(key.public_key())
    stats = restarted.stats()
    assert stats.evidence["queued"] == 3 and stats.flows["queued"] == 2
    assert stats.evidence["sending"] == stats.flows["sending"] == 0


def test_flows_are_idempotent_on_their_key_and_remember_how_far_they_went(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey
) -> None:
    ob = make_outbox(key.public_key())
    assert ob.flows_until("cam-a1") is None
    assert ob.enqueue_flows(flows(3)) == 3
    assert ob.enqueue_flows(flows(3, count=5)) == 0  # same keys: the first values stay
    assert [r["count"] for r in ob.flow_rows()] == [3, 3, 3]
    assert ob.flows_until("cam-a1") == T0 + 900
    [item, *_] = ob.next_due(limit=1, kind="flow")
    assert item.payload == {
        "lane": "approach",
        "direction": "forward",
        "vehicle_class": "motorcycle",
        "interval_start": "2023-11-14T22:10:00Z",
        "interval_end": "2023-11-14T22:15:00Z",
        "count": 3,
    }


def test_stats_give_depth_and_age_of_the_oldest_unsent_item(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path, clock: Clock
) -> None:
    ob = make_outbox(key.public_key())
    a, b = make_packages(key, evidence_root, 2, device_id="edge-1", camera_id="cam-a1")
    ob.enqueue_package(a)
    clock.t += 100
    ob.enqueue_package(b)
    ob.enqueue_flows(flows(1))
    clock.t += 20
    s = ob.stats()
    assert (s.depth, s.oldest_evidence_age_s, s.oldest_flow_age_s) == (3, 120.0, 20.0)
    ob.mark_sent(ob.next_due(limit=1))
    assert ob.stats().oldest_evidence_age_s == 20.0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b"this is not a database" * 100), "unusable"),
        (lambda p: sqlite3.connect(p).execute("PRAGMA user_version=99").connection.close(), "newer"),
    ],
)
def test_an_unusable_database_is_a_clear_error(
    tmp_path: Path, key: Ed25519PrivateKey, damage: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "outbox.db"
    damage(path)
    with pytest.raises(OutboxError, match=message):
        Outbox(path, key.public_key())


# ---------------------------------------------------------------------------------------------------
# Retention and the disk budget
# ---------------------------------------------------------------------------------------------------


def test_acknowledged_packages_are_kept_for_the_retention_then_deleted(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path, clock: Clock
) -> None:
    ob = make_outbox(key.public_key(), retention_days=7, history_days=30)
    folders = make_packages(key, evidence_root, 2, device_id="edge-1", camera_id="cam-a1")
    for f in folders:
        ob.enqueue_package(f)
    ob.mark_sent(ob.next_due(limit=1))  # the second stays queued
    clock.t += 6 * DAY
    assert ob.apply_retention() == (0, 0) and folders[0].exists()
    clock.t += 1 * DAY
    assert ob.apply_retention() == (1, 0)
    assert not folders[0].exists() and folders[1].exists()  # unsent evidence is never deleted
    clock.t += 30 * DAY
    assert ob.apply_retention() == (0, 1)
    assert [r["event_id"] for r in ob.evidence_rows()] == [folders[1].name]


def test_retention_zero_deletes_a_package_once_acknowledged(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path
) -> None:
    ob = make_outbox(key.public_key(), retention_days=0)
    [folder] = make_packages(key, evidence_root, 1, device_id="edge-1", camera_id="cam-a1")
    ob.enqueue_package(folder)
    ob.mark_sent(ob.next_due())
    assert not folder.exists()
    assert ob.evidence_rows()[0]["package_deleted_at"] is not None


def test_adopt_queues_written_but_unqueued_packages_and_skips_temp_folders(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path
) -> None:
    ob = make_outbox(key.public_key())
    folders = make_packages(key, evidence_root, 3, device_id="edge-1", camera_id="cam-a1")
    ob.enqueue_package(folders[0])
    shutil.copytree(folders[1], evidence_root / f".tmp-{folders[1].name}")
    results = ob.adopt()
    assert sorted(r.event_id or "" for r in results) == sorted(f.name for f in folders[1:])
    assert ob.stats().evidence["queued"] == 3


def test_adopt_finds_packages_at_any_depth_and_the_budget_counts_every_byte_once(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """The edge worker's layout: ``<data>/outbox.sqlite`` beside ``<data>/<camera>/evidence/<id>/``
    and other files of each camera. Packages are adopted wherever they are; a half-written
    ``.tmp-*`` folder and folders that are not packages are left alone (no alert); the disk use
    counts every file under the data folder once (the database's own files by their live pages)."""
    data = tmp_path / "data"
    ob = Outbox(
        data / "outbox.sqlite",
        key.public_key(),
        evidence_root=data,
        config=OutboxConfig(usage_scan_s=0, min_free_bytes=0, reserve_bytes=0),
    )
    try:
        a = make_packages(key, data / "cam-a1" / "evidence", 2, device_id="edge-1", camera_id="cam-a1")
        b = make_packages(key, data / "cam-b1" / "evidence", 1, device_id="edge-1", camera_id="cam-b1")
        shutil.copytree(a[0], data / "cam-a1" / "evidence" / f".tmp-{a[0].name}")
        (data / "cam-a1" / "events.jsonl").write_text("{}\n" * 500)
        results = ob.adopt()
        assert sorted(r.event_id or "" for r in results) == sorted(p.name for p in a + b)
        assert {r.status for r in results} == {"queued"} and ob.alerts() == []
        ob.checkpoint()
        files = sum(
            f.stat().st_size for f in data.rglob("*") if f.is_file() and "outbox.sqlite" not in f.name
        )
        db_file = (data / "outbox.sqlite").stat().st_size
        assert files < ob.usage_bytes() <= files + db_file
    finally:
        ob.close()


MIB = 1024 * 1024


def test_over_budget_frees_acknowledged_packages_first_then_drops_oldest_flows_never_evidence(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path, clock: Clock
) -> None:
    """Budget 1 MiB. Steps: (1) acknowledged packages go first, oldest acknowledgement first;
    (2) then the oldest unsent flow counts, counted; (3) unsent evidence is never dropped: the
    operator is alerted once and new evidence is still queued; (4) the flag clears once under."""
    ob = make_outbox(key.public_key(), max_bytes=MIB, retention_days=7)

    def new(seed: int) -> Path:  # a package the builder just wrote: ~150 kB
        pkg = noise_package(key, device_id="edge-1", camera_id="cam-a1", seed=seed, kb=50)
        return write_package(pkg, evidence_root)

    ob.enqueue_flows(flows(300))
    sent = []
    for i in range(4):
        clock.t += 1
        sent.append(new(i))
        assert ob.enqueue_package(sent[-1]).status == "queued"
    for item in ob.next_due(limit=4):
        clock.t += 1
        ob.mark_sent(item)
    assert ob.stats().usage_bytes < MIB and not ob.disk_full
    # (1) Over budget with acknowledged packages on disk: those go, oldest first; flows untouched.
    unsent = []
    for i in range(4, 8):
        clock.t += 1
        unsent.append(new(i))
        ob.enqueue_package(unsent[-1])
    gone = [f for f in sent if not f.exists()]
    assert gone and gone == sent[: len(gone)]
    assert all(f.exists() for f in unsent)
    assert ob.counter("flows_dropped") == 0 and len(ob.flow_rows()) == 300
    assert ob.stats().usage_bytes <= MIB and not ob.disk_full
    # (2)+(3) More evidence: every acknowledged package goes, then the flow counts, oldest first;
    # then the budget cannot be met without dropping evidence, which is not done: alert, still queued.
    for i in range(8, 12):
        clock.t += 1
        unsent.append(new(i))
        assert ob.enqueue_package(unsent[-1]).status == "queued"
    assert not any(f.exists() for f in sent)
    assert all(f.exists() for f in unsent)
    s = ob.stats()
    assert s.evidence["queued"] == 8 and s.disk_full and s.usage_bytes > MIB
    assert s.flows_dropped == 300 and ob.flow_rows() == []
    assert ob.enqueue_package(new(99)).status == "queued"
    assert [a["kind"] for a in ob.alerts()].count("disk_full") == 1  # once, not per item
    # (4) The uplink is back: acknowledged packages leave, the budget is met, the flag clears.
    ob.mark_sent(ob.next_due(limit=20))
    report = ob.enforce_limit()
    assert not report.disk_full and not ob.disk_full


def test_flows_are_dropped_oldest_first_and_counted(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path
) -> None:
    ob = make_outbox(key.public_key(), max_bytes=MIB)
    ob.enqueue_flows(flows(400, start=T0))
    # Fill the evidence folder (unsent evidence, counted by the budget) to just under the budget.
    ob.checkpoint()  # an empty WAL: its size no longer moves the measure while we fill
    seed = 0
    while ob.usage_bytes() < MIB - 40 * 1024:
        seed += 1
        write_package(
            noise_package(key, device_id="edge-1", camera_id="cam-a1", seed=seed, kb=5), evidence_root
        )
    assert not ob.enforce_limit().disk_full
    ob.enqueue_flows(flows(400, start=T0 + 300 * 400))  # about 100 kB of rows: over budget
    kept = ob.flow_rows()
    dropped = ob.counter("flows_dropped")
    assert 0 < dropped < 800 and len(kept) == 800 - dropped, ob.usage_bytes()
    assert not ob.disk_full and ob.usage_bytes() <= MIB
    # What is left is the newest: every kept interval starts after every dropped one.
    assert min(r["interval_start"] for r in kept) == T0 + 300 * dropped


def test_claiming_items_for_upload_may_use_the_reserve(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey
) -> None:
    """Uploading is what frees a full disk, and it starts by claiming items (a write): when that write
    finds the disk full, the reserve file is given up and the claim goes through."""
    ob = make_outbox(key.public_key())
    assert ob.enqueue_flows(flows(2)) == 2
    assert ob.reserve_path.exists()
    real = ob._tx
    full = [True]

    @contextlib.contextmanager
    def full_once() -> Iterator[sqlite3.Connection]:
        if full:
            full.pop()
            raise OutboxError("database or disk is full", disk_full=True)
        with real() as c:
            yield c

    ob._tx = full_once  # type: ignore[method-assign]
    items = ob.next_due(kind="flow")
    assert len(items) == 2 and ob.stats().flows["sending"] == 2
    assert not ob.reserve_path.exists() and ob.alert_counts["reserve_used"] == 1


def test_queueing_goes_on_while_the_evidence_folder_is_walked(
    tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk that measures the evidence folder (seconds on a large folder on an SD card) holds no
    lock: a package is queued while it is under way, and the measure after it counts that package."""
    import phatnguoi.outbox as outbox_module

    data = tmp_path / "data"
    ob = Outbox(
        data / "outbox.sqlite",
        key.public_key(),
        evidence_root=data,
        config=OutboxConfig(usage_scan_s=3600, min_free_bytes=0, reserve_bytes=0),
    )
    walking, release = threading.Event(), threading.Event()
    real_walk = outbox_module._folder_bytes

    def slow_walk(root: Path, exclude: Sequence[Path] = ()) -> int:
        total = real_walk(root, exclude)  # what is on disk when the walk starts
        walking.set()
        assert release.wait(30)
        return total

    try:
        first, later = make_packages(
            key, data / "cam-a1" / "evidence", 2, device_id="edge-1", camera_id="cam-a1"
        )
        shutil.move(later, tmp_path / later.name)  # written after the walk began
        monkeypatch.setattr(outbox_module, "_folder_bytes", slow_walk)
        measured: list[int] = []
        walker = threading.Thread(target=lambda: measured.append(ob.usage_bytes()))
        walker.start()
        assert walking.wait(30)
        moved = shutil.move(tmp_path / later.name, data / "cam-a1" / "evidence" / later.name)
        queued: list[str] = []
        enqueuer = threading.Thread(target=lambda: queued.append(ob.enqueue_package(Path(moved)).status))
        enqueuer.start()
        enqueuer.join(10)
        assert queued == ["queued"]  # not blocked by the walk
        release.set()
        walker.join(30)
        monkeypatch.setattr(outbox_module, "_folder_bytes", real_walk)
        packages = sum(f.stat().st_size for p in (first, Path(moved)) for f in p.iterdir())
        ob.checkpoint()
        assert ob.usage_bytes() >= packages
    finally:
        release.set()
        ob.close()


def test_measuring_a_package_another_thread_deleted_is_not_an_error(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """The frame loop and the uploader free space from the same list of acknowledged packages: the
    one that comes second finds the folder gone (it used to raise FileNotFoundError out of the frame
    loop's enqueue, after the row was committed, and stop the worker)."""
    from phatnguoi.outbox import _package_bytes

    (folder,) = make_packages(key, tmp_path / "ev", 1, device_id="edge-1", camera_id="cam-a1")
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert _package_bytes(folder) == size > 0
    shutil.rmtree(folder)
    assert _package_bytes(folder) == 0


def test_a_package_deleted_during_the_walk_is_not_subtracted_twice(
    tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uploader deletes an acknowledged package while the frame loop's walk is under way, before
    the walk reaches it: the walk does not count it, so subtracting its deletion too would count less
    than the disk holds (the budget must never be under-counted)."""
    import phatnguoi.outbox as outbox_module

    data = tmp_path / "data"
    ob = Outbox(
        data / "outbox.sqlite",
        key.public_key(),
        evidence_root=data,
        config=OutboxConfig(usage_scan_s=3600, min_free_bytes=0, reserve_bytes=0, retention_days=1),
    )
    real_walk = outbox_module._folder_bytes
    try:
        evidence = data / "cam-a1" / "evidence"
        kept, gone = make_packages(key, evidence, 2, device_id="edge-1", camera_id="cam-a1")
        for p in (kept, gone):
            ob.enqueue_package(p)
        [item] = [i for i in ob.next_due(limit=8) if Path(i.path).name == gone.name] or [None]
        assert item is not None
        ob.mark_sent(item, {"status": 201})

        def walk_then_delete(root: Path, exclude: Sequence[Path] = ()) -> int:
            # the uploader's retention deletes the acknowledged package before the walk sees it
            assert ob.apply_retention(time.time() + 2 * 86400)[0] == 1 and not gone.exists()
            return real_walk(root, exclude)

        ob._scanned_at = -float("inf")
        monkeypatch.setattr(outbox_module, "_folder_bytes", walk_then_delete)
        ob.usage_bytes()
        on_disk = sum(f.stat().st_size for f in kept.iterdir())
        assert ob._evidence_bytes >= on_disk  # the evidence part of usage_bytes (the database adds its own)
    finally:
        ob.close()
