"""Retention: irreversibly delete the evidence of rejected and of expired, never-confirmed violations.

`run_retention(settings, now)` deletes the evidence files of
- rejected violations decided more than `PHATNGUOI_RETENTION_REJECTED_DAYS` ago, and
- violations still `new`, and never confirmed, that happened more than
  `PHATNGUOI_RETENTION_UNREVIEWED_DAYS` ago (too old to be fined);
never of confirmed violations (the legal record of a fine). The violation rows stay, with
`evidence_purged_at` set, so statistics and the audit trail still add up; each file row gets
`deleted_at`, and reading it answers 410.

Why "never confirmed": an offence can be sanctioned for one year after it happened (Law on Handling
Administrative Violations, Art. 6: thời hiệu xử phạt 01 năm), so evidence that nobody decided on within
the unreviewed period can no longer lead to a fine and has no purpose left. A violation that was
confirmed had its fine procedure opened in time; when a supervisor reopens it (an owner's complaint, a
plate to correct) it is a case under dispute, and its evidence is what the complaint is decided on,
however old the violation is. So a violation whose audit log holds a `violation.confirm` is never
deleted as unreviewed: it keeps its evidence while it is reviewed again, for good when confirmed again,
and for the rejected period from the new decision when rejected. A violation only ever rejected and
then reopened is no such case: it still expires with its occurrence.

Per batch of violations, one transaction marks the violations and their files deleted (conditionally: a
violation reopened or confirmed meanwhile is skipped), works out which blobs no longer have any live
reference (the store is content-addressed: two violations may share a blob, and a blob goes only with
its last reference), queues those blobs in `blob_deletions` and writes one audit entry per violation.
From that commit on the evidence is gone for every reader. Then, outside any transaction:
1. the queue is worked through (this run's blobs and whatever a failed or killed run left): a blob that
   a live evidence row uses again (a byte-identical upload since) is only dropped from the queue; any
   other is deleted from the store, then from the queue. A store failure leaves the row (attempts,
   last error) for the next run and is reported (`RetentionReport.errors`, `blobs_pending`).
2. the sweep: every blob in the store older than `ORPHAN_GRACE` that no live evidence row references
   is deleted, and so are temporary files of interrupted writes: files of an ingest refused or failed
   after its store step, and blobs of purges from before the queue existed. The grace spares the files
   of an ingest in flight (stored, rows not yet committed).
One window is not closed: an ingest of byte-identical evidence that finds the blob present just before
step 1 or 2 deletes it would point at a missing blob (it needs two packages with identical file bytes,
within the milliseconds between the check and the delete).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from pathlib import Path

from sqlalchemy import ColumnElement, String, and_, cast, delete, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.db import make_engine, make_sessionmaker, utcnow
from api.errors import StorageError
from api.models import AuditEntry, BlobDeletion, EvidenceFile, Violation
from api.settings import Settings
from api.storage import EvidenceStore, LocalStore, S3Store, make_store

log = logging.getLogger(__name__)

ACTOR = "system:retention"
BATCH_VIOLATIONS = 500
#: Blobs looked up and deleted per page (queue and sweep).
BATCH_BLOBS = 500
#: How old an unreferenced blob must be before the sweep deletes it: far longer than any ingest takes
#: between storing its files and committing its rows.
ORPHAN_GRACE = timedelta(days=1)
#: The audit action of a confirmation (`api.services.review.decide`).
CONFIRM_ACTION = "violation.confirm"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"  # LocalStore's temporary files


@dataclass
class RetentionReport:
    """What one `run_retention` did."""

    rejected_before: datetime
    unreviewed_before: datetime
    violations_purged: int = 0
    files_deleted: int = 0
    blobs_deleted: int = 0
    blobs_kept_shared: int = 0
    bytes_deleted: int = 0
    blobs_pending: int = 0  # queued deletions the store refused; the next run tries again
    orphans_deleted: int = 0  # unreferenced blobs (and temporary files) the sweep deleted
    errors: list[str] = field(default_factory=list)


def _ever_confirmed() -> ColumnElement[bool]:
    return (
        select(AuditEntry.seq)
        .where(
            AuditEntry.object_type == "violation",
            AuditEntry.object_id == cast(Violation.id, String),
            AuditEntry.action == CONFIRM_ACTION,
        )
        .exists()
    )


def _due(rejected_before: datetime, unreviewed_before: datetime) -> ColumnElement[bool]:
    return and_(
        Violation.evidence_purged_at.is_(None),
        or_(
            and_(Violation.status == "rejected", Violation.reviewed_at < rejected_before),
            and_(Violation.status == "new", Violation.occurred_at < unreviewed_before, ~_ever_confirmed()),
        ),
    )


def run_retention(
    settings: Settings,
    now: datetime | None = None,
    *,
    sessions: sessionmaker[Session] | None = None,
    store: EvidenceStore | None = None,
    batch: int = BATCH_VIOLATIONS,
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> RetentionReport:
    """Delete the evidence that is past its retention period, and unreferenced blobs (see the module
    docstring).

    Args:
        settings: retention periods, database and evidence store.
        now: the time the periods and the grace count back from (default: the clock).
        sessions: sessions on the database (default: an engine from `settings.database_url`).
        store: the evidence store (default: the one `settings` configures).
        batch: violations per transaction.
        orphan_grace: how old an unreferenced blob must be to be swept.

    Returns:
        Counts of what was deleted, and the blob deletions that failed (tried again next time).

    Raises:
        StorageError: the configured store cannot be opened.
    """
    if sessions is None:
        engine = make_engine(settings.database_url)
        try:
            return run_retention(
                settings,
                now,
                sessions=make_sessionmaker(engine),
                store=store,
                batch=batch,
                orphan_grace=orphan_grace,
            )
        finally:
            engine.dispose()
    store = store if store is not None else make_store(settings)
    now = now or utcnow()
    report = RetentionReport(
        rejected_before=now - timedelta(days=settings.retention_rejected_days),
        unreviewed_before=now - timedelta(days=settings.retention_unreviewed_days),
    )
    due = _due(report.rejected_before, report.unreviewed_before)
    after_id = 0
    with sessions() as session:
        while True:
            ids = list(
                session.scalars(
                    select(Violation.id)
                    .where(due, Violation.id > after_id)
                    .order_by(Violation.id)
                    .limit(batch)
                )
            )
            session.commit()
            if not ids:
                break
            after_id = ids[-1]
            _purge_batch(session, ids, due, now, report)
        _delete_queued(session, store, report)
        _sweep(session, store, now - orphan_grace, report)
        audit.record(
            session,
            actor=ACTOR,
            action="retention.run",
            detail={
                "rejected_before": report.rejected_before.isoformat(),
                "unreviewed_before": report.unreviewed_before.isoformat(),
                "violations": report.violations_purged,
                "files": report.files_deleted,
                "blobs": report.blobs_deleted,
                "bytes": report.bytes_deleted,
                "pending": report.blobs_pending,
                "orphans": report.orphans_deleted,
                "errors": len(report.errors),
            },
        )
        session.commit()
    log.info(
        "retention: evidence of %d violations deleted (%d files, %d blobs, %d bytes; %d orphans swept; "
        "%d blob deletions pending; %d errors)",
        report.violations_purged,
        report.files_deleted,
        report.blobs_deleted,
        report.bytes_deleted,
        report.orphans_deleted,
        report.blobs_pending,
        len(report.errors),
    )
    return report


def _purge_batch(
    session: Session, ids: list[int], due: ColumnElement[bool], now: datetime, report: RetentionReport
) -> None:
    """Mark one batch deleted, queue the blobs it leaves unreferenced and audit it (one transaction)."""
    try:
        # Conditional on still being due: a violation reopened or confirmed since the select is kept.
        marked_rows = session.execute(
            update(Violation)
            .where(Violation.id.in_(ids), due)
            .values(evidence_purged_at=now)
            .returning(Violation.id, Violation.status)
            .execution_options(synchronize_session=False)
        ).all()
        statuses: dict[int, str] = {r.id: r.status for r in marked_rows}
        marked = sorted(statuses)
        files = session.execute(
            select(EvidenceFile.id, EvidenceFile.violation_id, EvidenceFile.name, EvidenceFile.sha256,
                   EvidenceFile.size, EvidenceFile.storage_uri)
            .where(EvidenceFile.violation_id.in_(marked), EvidenceFile.deleted_at.is_(None))
        ).all()  # fmt: skip
        if files:
            session.execute(
                update(EvidenceFile)
                .where(EvidenceFile.id.in_([f.id for f in files]))
                .values(deleted_at=now)
                .execution_options(synchronize_session=False)
            )
        candidates = {f.sha256: (f.storage_uri, f.size) for f in files}
        shared = set(_live(session, list(candidates)))
        queued = utcnow()
        blobs = [
            {"sha256": sha, "storage_uri": uri, "size": size, "queued_at": queued, "attempts": 0}
            for sha, (uri, size) in sorted(candidates.items())
            if sha not in shared
        ]
        if blobs:
            session.execute(insert(BlobDeletion), blobs)
        per_violation: dict[int, list[str]] = defaultdict(list)
        for f in files:
            per_violation[f.violation_id].append(f.name)
        for vid in marked:
            audit.record(
                session,
                actor=ACTOR,
                action="evidence.purge",
                object_type="violation",
                object_id=vid,
                detail={
                    "reason": "rejected" if statuses.get(vid) == "rejected" else "unreviewed",
                    "files": sorted(per_violation.get(vid, [])),
                },
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    report.violations_purged += len(marked)
    report.files_deleted += len(files)
    report.blobs_kept_shared += len(shared)


def _live(session: Session, shas: list[str]) -> set[str]:
    """Those of `shas` that a live (not deleted) evidence row references."""
    if not shas:
        return set()
    return set(
        session.scalars(
            select(EvidenceFile.sha256)
            .where(EvidenceFile.sha256.in_(shas), EvidenceFile.deleted_at.is_(None))
            .distinct()
        )
    )


def _delete_queued(session: Session, store: EvidenceStore, report: RetentionReport) -> None:
    """Delete the queued blobs from the store, a page at a time; no transaction is open while the store
    works. A row goes only after its blob did, so a run killed in between deletes it again next time."""
    after_id = 0
    while True:
        try:
            rows = session.execute(
                select(BlobDeletion.id, BlobDeletion.sha256, BlobDeletion.storage_uri, BlobDeletion.size)
                .where(BlobDeletion.id > after_id)
                .order_by(BlobDeletion.id)
                .limit(BATCH_BLOBS)
            ).all()
            live = _live(session, [r.sha256 for r in rows])
            session.commit()
        except BaseException:
            session.rollback()
            raise
        if not rows:
            return
        after_id = rows[-1].id
        done: list[int] = []
        failed: dict[int, str] = {}
        for r in rows:
            if r.sha256 in live:
                log.info("retention: blob %s is used again by a new upload; kept", r.sha256)
                report.blobs_kept_shared += 1
                done.append(r.id)
                continue
            try:
                store.delete(r.storage_uri)
            except StorageError as e:
                log.error("retention: blob %s not deleted (tried again next run): %s", r.sha256, e)
                report.errors.append(f"{r.sha256}: {e}")
                failed[r.id] = str(e)[:1000]
                continue
            done.append(r.id)
            report.blobs_deleted += 1
            report.bytes_deleted += r.size
        try:
            if done:
                session.execute(delete(BlobDeletion).where(BlobDeletion.id.in_(done)))
            for row_id, error in failed.items():
                session.execute(
                    update(BlobDeletion)
                    .where(BlobDeletion.id == row_id)
                    .values(attempts=BlobDeletion.attempts + 1, last_error=error)
                )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        report.blobs_pending += len(failed)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A file found in the evidence store: a blob (its SHA-256) or a temporary file (None)."""

    where: str
    sha256: str | None
    size: int
    remove: Callable[[], None]


def _local_files(store: LocalStore, before: datetime) -> Iterator[_Stored]:
    """Blobs and temporary files under the store's `aa/bb/` folders last written before `before`."""
    root = store.root
    if not root.is_dir():
        return
    for first in sorted(root.iterdir()):
        if len(first.name) != 2 or not first.is_dir():
            continue
        for second in sorted(first.iterdir()):
            if len(second.name) != 2 or not second.is_dir():
                continue
            for path in sorted(second.iterdir()):
                name = path.name
                blob = bool(_SHA256.fullmatch(name)) and name[:4] == first.name + second.name
                if not (blob or name.startswith(_TEMP_PREFIX)) or not path.is_file():
                    continue
                try:
                    st = path.stat()
                except FileNotFoundError:  # deleted meanwhile (a rename ending a write)
                    continue
                if datetime.fromtimestamp(st.st_mtime, UTC) >= before:
                    continue
                if blob:
                    uri = f"{store.scheme}{first.name}/{second.name}/{name}"
                    yield _Stored(uri, name, st.st_size, partial(store.delete, uri))
                else:
                    yield _Stored(str(path), None, st.st_size, partial(_unlink, path))


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        raise StorageError(f"cannot delete {path}: {e}") from e


def _s3_files(store: S3Store, before: datetime) -> Iterator[_Stored]:
    """Blobs under the store's prefix last written before `before` (other keys are not ours)."""
    # The stores have no listing of their own (`api.storage`): list through the store's client.
    pages = store._client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=store.prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            key = str(obj["Key"])
            name = key.rsplit("/", 1)[-1]
            if key != store.prefix + f"{name[:2]}/{name[2:4]}/{name}" or not _SHA256.fullmatch(name):
                continue
            if obj["LastModified"] >= before:
                continue
            uri = f"s3://{store.bucket}/{key}"
            yield _Stored(uri, name, int(obj["Size"]), partial(store.delete, uri))


def _stored_files(store: EvidenceStore, before: datetime) -> Iterator[_Stored]:
    try:
        if isinstance(store, LocalStore):
            yield from _local_files(store, before)
        elif isinstance(store, S3Store):
            yield from _s3_files(store, before)
        else:
            log.warning("retention: cannot list a %s; unreferenced blobs not swept", type(store).__name__)
    except StorageError:
        raise
    except Exception as e:  # OSError, or botocore's errors for the S3 listing
        raise StorageError(f"cannot list the evidence store: {e}") from e


def _sweep(session: Session, store: EvidenceStore, before: datetime, report: RetentionReport) -> None:
    """Delete the stored files older than `before` that no live evidence row references."""
    found = _stored_files(store, before)
    while True:
        try:
            page = list(islice(found, BATCH_BLOBS))
        except StorageError as e:
            log.error("retention: sweep of unreferenced blobs stopped: %s", e)
            report.errors.append(f"sweep: {e}")
            return
        if not page:
            return
        try:
            live = _live(session, [f.sha256 for f in page if f.sha256 is not None])
            session.commit()
        except BaseException:
            session.rollback()
            raise
        for f in page:
            if f.sha256 in live:
                continue
            try:
                f.remove()
            except StorageError as e:
                log.error("retention: unreferenced %s not deleted: %s", f.where, e)
                report.errors.append(f"{f.where}: {e}")
                continue
            log.info("retention: unreferenced %s deleted (%d bytes)", f.where, f.size)
            report.orphans_deleted += 1
            report.bytes_deleted += f.size
