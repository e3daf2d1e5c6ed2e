"""Retention: irreversibly delete the evidence of rejected and of never-reviewed violations.

`run_retention(settings, now)` deletes the evidence files of
- rejected violations decided more than `PHATNGUOI_RETENTION_REJECTED_DAYS` ago, and
- violations still `new` that happened more than `PHATNGUOI_RETENTION_UNREVIEWED_DAYS` ago (too old
  to be fined);
never of confirmed violations (the legal record of a fine). The violation rows stay, with
`evidence_purged_at` set, so statistics and the audit trail still add up; each file row gets
`deleted_at`, and reading it answers 410.

Per batch of violations, in this order:
1. one transaction marks the violations and their files deleted (conditionally: a violation reopened or
   confirmed meanwhile is skipped), works out which blobs no longer have any live reference (the store
   is content-addressed: two violations may share a blob, and a blob goes only with its last
   reference), and writes one audit entry per violation;
2. after the commit, those blobs are deleted from the store.
From the commit on, the evidence is gone for every reader, so a failure in step 2 leaves only
unreferenced bytes (reported in `RetentionReport.errors`, logged), never a row pointing at a missing
file. One window is not closed: an ingest of byte-identical evidence that finds the blob present just
before step 2 deletes it would point at a missing blob (it needs two packages with identical file bytes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import audit
from api.db import make_engine, make_sessionmaker, utcnow
from api.errors import StorageError
from api.models import EvidenceFile, Violation
from api.settings import Settings
from api.storage import EvidenceStore, make_store

log = logging.getLogger(__name__)

ACTOR = "system:retention"
BATCH_VIOLATIONS = 500


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
    errors: list[str] = field(default_factory=list)


def _due(rejected_before: datetime, unreviewed_before: datetime) -> ColumnElement[bool]:
    return and_(
        Violation.evidence_purged_at.is_(None),
        or_(
            and_(Violation.status == "rejected", Violation.reviewed_at < rejected_before),
            and_(Violation.status == "new", Violation.occurred_at < unreviewed_before),
        ),
    )


def run_retention(
    settings: Settings,
    now: datetime | None = None,
    *,
    sessions: sessionmaker[Session] | None = None,
    store: EvidenceStore | None = None,
    batch: int = BATCH_VIOLATIONS,
) -> RetentionReport:
    """Delete the evidence that is past its retention period (see the module docstring).

    Args:
        settings: retention periods, database and evidence store.
        now: the time the periods count back from (default: the clock).
        sessions: sessions on the database (default: an engine from `settings.database_url`).
        store: the evidence store (default: the one `settings` configures).
        batch: violations per transaction.

    Returns:
        Counts of what was deleted, and the blob deletions that failed.

    Raises:
        StorageError: the configured store cannot be opened.
    """
    if sessions is None:
        engine = make_engine(settings.database_url)
        try:
            return run_retention(settings, now, sessions=make_sessionmaker(engine), store=store, batch=batch)
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
            blobs = _purge_batch(session, ids, due, now, report)
            _delete_blobs(store, blobs, report)
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
                "errors": len(report.errors),
            },
        )
        session.commit()
    log.info(
        "retention: evidence of %d violations deleted (%d files, %d blobs, %d bytes; %d errors)",
        report.violations_purged,
        report.files_deleted,
        report.blobs_deleted,
        report.bytes_deleted,
        len(report.errors),
    )
    return report


def _purge_batch(
    session: Session, ids: list[int], due: ColumnElement[bool], now: datetime, report: RetentionReport
) -> dict[str, tuple[str, int]]:
    """Mark one batch deleted and audit it (one transaction). Returns the blobs to delete afterwards:
    sha256 → (storage URI, size)."""
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
        shared = set(
            session.scalars(
                select(EvidenceFile.sha256)
                .where(EvidenceFile.sha256.in_(list(candidates)), EvidenceFile.deleted_at.is_(None))
                .distinct()
            )
        )
        blobs = {sha: where for sha, where in candidates.items() if sha not in shared}
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
    return blobs


def _delete_blobs(store: EvidenceStore, blobs: dict[str, tuple[str, int]], report: RetentionReport) -> None:
    for sha, (uri, size) in sorted(blobs.items()):
        try:
            store.delete(uri)
        except StorageError as e:
            log.error("retention: blob %s not deleted: %s", sha, e)
            report.errors.append(f"{sha}: {e}")
            continue
        report.blobs_deleted += 1
        report.bytes_deleted += size
