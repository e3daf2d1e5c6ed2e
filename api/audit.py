"""Append-only, hash-chained audit log: every decision and every view of personal data.

Row `n` stores `prev_hash` (row `n-1`'s hash; 64 zeros for the first row) and
`hash = sha256(prev_hash + canonical_content)`, where the canonical content is a JSON array of the row's
fields in a fixed order. Editing any field of a row changes its hash; deleting a row leaves a gap in
`seq` and breaks the next row's `prev_hash`. `verify_chain` finds either.

Appends are serialised so the chain never forks: on PostgreSQL by a transaction-scoped advisory lock
(released at commit), on SQLite by the write lock every transaction takes at BEGIN (see `api.db`). The
entry is written in the caller's transaction, so a decision and its audit row commit (or not) together.

What a hash chain cannot show alone is the loss of the newest rows (the remaining chain is still
consistent): publish the head (`seq`, `hash`) somewhere else now and then and pass it as `anchor`.
Database triggers (created by the migration) also refuse UPDATE and DELETE on the table; an attacker
with DDL rights can drop them, which is what the chain is for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.db import is_postgresql, utcnow
from api.models import AuditEntry

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# Key of the PostgreSQL advisory lock that serialises appends ("phat" in ASCII).
_PG_LOCK_KEY = 0x70686174


def canonical_json(value: Mapping[str, Any] | None) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8 kept) of an audit detail."""
    return json.dumps(value or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str | None,
    object_id: str | None,
    ip: str | None,
    detail: str,
) -> str:
    """SHA-256 (hex) of `prev_hash` followed by the row's canonical content."""
    at_iso = at.astimezone(UTC).isoformat(timespec="microseconds")
    content = json.dumps(
        [seq, at_iso, actor, action, object_type, object_id, ip, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str | None = None,
    object_id: str | int | None = None,
    detail: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry to the audit log in the session's transaction (flushed, not committed).

    Args:
        actor: who, as "user:<username>", "device:<id>" or "system:<job>".
        action: what, dotted: "violation.view", "violation.confirm", "auth.login_failed", ...
        object_type, object_id: what it was done to ("violation", 42).
        detail: JSON-serialisable facts worth keeping (reason, fields changed...).
        ip: the client address, when there is a request.
    """
    if is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    head = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head is not None else (1, GENESIS_HASH)
    at = utcnow()
    detail_json = canonical_json(detail)
    oid = None if object_id is None else str(object_id)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=oid,
        ip=ip,
        detail=detail_json,
        prev_hash=prev_hash,
        hash=entry_hash(
            prev_hash,
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=oid,
            ip=ip,
            detail=detail_json,
        ),
    )
    session.add(entry)
    session.flush()  # the next append in this transaction must see this row as the head
    return entry


_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.object_type,
    AuditEntry.object_id,
    AuditEntry.ip,
    AuditEntry.detail,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of `verify_chain`. `problem` is None when the chain is intact."""

    rows: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return self.problem is None


def verify_chain(
    session: Session, *, anchor: tuple[int, str] | None = None, batch: int = 5000
) -> ChainReport:
    """Recompute the whole chain and report the first edited, deleted or re-ordered row.

    Args:
        anchor: a (seq, hash) published earlier; checks that this row still exists unchanged, which
            also detects deletion of the newest rows.
        batch: rows read per query (keyset pagination; memory stays flat with millions of rows).
    """
    expected_seq, prev_hash, rows = 1, GENESIS_HASH, 0
    anchor_seen = False
    while True:
        # Plain rows, not ORM objects: nothing accumulates in the caller's session.
        chunk = session.execute(
            select(*_COLUMNS).where(AuditEntry.seq >= expected_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not chunk:
            break
        for e in chunk:
            if e.seq != expected_seq:
                problem = f"rows {expected_seq}..{e.seq - 1} are missing (deleted)"
                return ChainReport(rows, expected_seq - 1, prev_hash, problem, expected_seq)
            if e.prev_hash != prev_hash:
                problem = f"row {e.seq}: prev_hash does not match row {e.seq - 1} (rows removed or rewritten)"
                return ChainReport(rows, e.seq - 1, prev_hash, problem, e.seq)
            h = entry_hash(
                e.prev_hash,
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                object_type=e.object_type,
                object_id=e.object_id,
                ip=e.ip,
                detail=e.detail,
            )
            if h != e.hash:
                return ChainReport(
                    rows,
                    e.seq - 1,
                    prev_hash,
                    f"row {e.seq}: content does not match its hash (edited)",
                    e.seq,
                )
            if anchor is not None and e.seq == anchor[0]:
                if e.hash != anchor[1]:
                    return ChainReport(
                        rows, e.seq, e.hash, f"row {e.seq}: differs from the published anchor", e.seq
                    )
                anchor_seen = True
            prev_hash, expected_seq, rows = e.hash, e.seq + 1, rows + 1
    if anchor is not None and not anchor_seen:
        return ChainReport(
            rows,
            expected_seq - 1,
            prev_hash,
            f"anchor row {anchor[0]} is missing (newest rows deleted)",
            anchor[0],
        )
    return ChainReport(rows, expected_seq - 1, prev_hash)
