"""The retention job's queue of blob deletions.

- `blob_deletions`: a blob whose last live evidence row the retention job purged, written in the purge's
  transaction and removed once the evidence store deleted the blob; a store failure or a killed run
  leaves it for the next run (`api.retention`). Blobs that purges before this revision failed to delete
  are found by the retention job's sweep of unreferenced blobs, so nothing is filled in here.

Written by hand and checked against the models by `tests/api/test_migrations.py`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "blob_deletions",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_uri", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_deletions")),
    )


def downgrade() -> None:
    """Revert this revision. Deletions still queued are dropped: their blobs stay in the store until the
    retention job's sweep of unreferenced blobs (after an upgrade again) deletes them."""
    op.drop_table("blob_deletions")
