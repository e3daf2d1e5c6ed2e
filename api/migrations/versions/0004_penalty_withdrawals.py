"""Penalty webhook withdrawals: several outbox messages per violation, each a confirmation or a withdrawal.

- `penalty_deliveries.kind`: `confirmed` or `withdrawn` (a reopened violation whose confirmation had
  reached the penalty system, see `api.webhook`); existing rows are confirmations.
- The UNIQUE constraint on `penalty_deliveries.violation_id` becomes a plain index: a violation has one
  row per message (confirmed, withdrawn, confirmed again with a corrected plate, ...), sent in id order.

Written by hand and checked against the models by `tests/api/test_migrations.py`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "kind IN ('confirmed', 'withdrawn')"


def upgrade() -> None:
    """Apply this revision."""
    # SQLite cannot drop a UNIQUE constraint in place: batch mode copies the table there (plain ALTERs
    # on PostgreSQL). The server default fills the existing rows; the second batch removes it (the code
    # always says which kind it writes).
    with op.batch_alter_table("penalty_deliveries") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default=sa.text("'confirmed'"))
        )
        batch.create_check_constraint(op.f("ck_penalty_deliveries_kind"), _KINDS)
        batch.drop_constraint(op.f("uq_penalty_deliveries_violation_id"), type_="unique")
        batch.create_index(op.f("ix_penalty_deliveries_violation_id"), ["violation_id"], unique=False)
    with op.batch_alter_table("penalty_deliveries") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=16), server_default=None)


def downgrade() -> None:
    """Revert this revision. The old schema holds one confirmation per violation: withdrawals, and all but
    the newest confirmation of each violation, are dropped."""
    op.execute("DELETE FROM penalty_deliveries WHERE kind = 'withdrawn'")
    op.execute(
        "DELETE FROM penalty_deliveries WHERE id NOT IN "
        "(SELECT MAX(id) FROM penalty_deliveries GROUP BY violation_id)"
    )
    with op.batch_alter_table("penalty_deliveries") as batch:
        batch.drop_index(op.f("ix_penalty_deliveries_violation_id"))
        batch.create_unique_constraint(op.f("uq_penalty_deliveries_violation_id"), ["violation_id"])
        batch.drop_constraint(op.f("ck_penalty_deliveries_kind"), type_="check")
        batch.drop_column("kind")
