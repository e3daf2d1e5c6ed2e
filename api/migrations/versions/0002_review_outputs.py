"""Review and outputs: time indexes for the review list, the reviewer's note, the webhook outbox payload.

- `violations.decision_note`: the free text of a decision (the reason itself is a code).
- `ix_violations_time` (occurred_at, id) and `ix_violations_status_time` (status, occurred_at, id): the
  keyset-paginated list for supervisors and admins, who see every district (the district indexes of
  0001 serve officers).
- PostgreSQL only: the `fuzzystrmatch` extension (trusted, like pg_trgm) for the distance-2 plate
  search's `levenshtein_less_equal` (SQLite gets a Python function from `api.db`), and a statistics
  target of 1000 for `violations.plate_key` (wildcard searches are planned from its histogram).
- `penalty_deliveries`: the frozen JSON body, an idempotency key per violation, the last HTTP status,
  and a `cancelled` status (a reopened violation whose confirmation was not yet delivered). No code
  wrote this table before this revision, so the new NOT NULL columns need no default.

Written by hand and checked against the models by `tests/api/test_migrations.py` (autogenerate
comparison on SQLite and PostgreSQL). On a large PostgreSQL database the two CREATE INDEX statements
lock writes to `violations` while they run (about 10 s per million rows).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATUSES = "status IN ('pending', 'delivered', 'failed')"
_NEW_STATUSES = "status IN ('pending', 'delivered', 'failed', 'cancelled')"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("violations", sa.Column("decision_note", sa.Text(), nullable=True))
    op.create_index("ix_violations_time", "violations", ["occurred_at", "id"], unique=False)
    op.create_index("ix_violations_status_time", "violations", ["status", "occurred_at", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
        # A finer histogram of plates: with the default (100 buckets) a rare prefix such as `50T*` is
        # estimated at ~40x its real count at a million rows, and the planner walks a whole district.
        op.execute("ALTER TABLE violations ALTER COLUMN plate_key SET STATISTICS 1000")

    # SQLite cannot add NOT NULL columns or change a CHECK in place: batch mode copies the table there
    # (a plain ALTER on PostgreSQL).
    with op.batch_alter_table("penalty_deliveries") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=False))
        batch.add_column(sa.Column("payload", sa.Text(), nullable=False))
        batch.add_column(sa.Column("last_status_code", sa.Integer(), nullable=True))
        batch.create_unique_constraint(op.f("uq_penalty_deliveries_idempotency_key"), ["idempotency_key"])
        batch.drop_constraint(op.f("ck_penalty_deliveries_status"), type_="check")
        batch.create_check_constraint(op.f("ck_penalty_deliveries_status"), _NEW_STATUSES)


def downgrade() -> None:
    """Revert this revision (cancelled deliveries are dropped: the old schema cannot hold them)."""
    op.execute("DELETE FROM penalty_deliveries WHERE status = 'cancelled'")
    with op.batch_alter_table("penalty_deliveries") as batch:
        batch.drop_constraint(op.f("ck_penalty_deliveries_status"), type_="check")
        batch.create_check_constraint(op.f("ck_penalty_deliveries_status"), _OLD_STATUSES)
        batch.drop_constraint(op.f("uq_penalty_deliveries_idempotency_key"), type_="unique")
        batch.drop_column("last_status_code")
        batch.drop_column("payload")
        batch.drop_column("idempotency_key")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE violations ALTER COLUMN plate_key SET STATISTICS -1")
        op.execute("DROP EXTENSION IF EXISTS fuzzystrmatch")
    op.drop_index("ix_violations_status_time", "violations")
    op.drop_index("ix_violations_time", "violations")
    op.drop_column("violations", "decision_note")
