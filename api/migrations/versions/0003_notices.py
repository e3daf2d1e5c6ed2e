"""Notices: the owner-notice workflow states and their timestamps, and the durable SMS outbox.

- `notices.status`: the states of `api.notices.workflow` (`awaiting_owner`, `created`, `sms_sent`,
  `posted`, `responded`, `escalated_20d`, `closed`) replace the old delivery states; existing rows are
  mapped (`pending`/`failed` → `created`, `sent`/`delivered` → `sms_sent`).
- `notices.posted_at`, `responded_at`, `escalated_at`, `closed_at`, and an index (status, created_at)
  for the supervisors' list of due actions.
- `sms_outbox`: one row per SMS with an idempotency key, retried with backoff (`api.notices.sms`).

Written by hand and checked against the models by `tests/api/test_migrations.py`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('pending', 'sent', 'delivered', 'failed')"
_NEW = "status IN ('awaiting_owner', 'created', 'sms_sent', 'posted', 'responded', 'escalated_20d', 'closed')"
_SMS = "status IN ('pending', 'sent', 'delivered', 'failed', 'cancelled')"
_TIMES = ("posted_at", "responded_at", "escalated_at", "closed_at")


def upgrade() -> None:
    """Apply this revision."""
    # SQLite cannot change a CHECK in place: batch mode copies the table there. The rows are mapped
    # between dropping the old CHECK and creating the new one (either would refuse the other's values).
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint(op.f("ck_notices_status"), type_="check")
        for name in _TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE notices SET status = 'created' WHERE status IN ('pending', 'failed')")
    op.execute("UPDATE notices SET status = 'sms_sent' WHERE status IN ('sent', 'delivered')")
    with op.batch_alter_table("notices") as batch:
        batch.create_check_constraint(op.f("ck_notices_status"), _NEW)
    op.create_index("ix_notices_status_created", "notices", ["status", "created_at"], unique=False)

    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("notice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_SMS, name=op.f("ck_sms_outbox_status")),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_sms_outbox_notice_id_notices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sms_outbox_idempotency_key")),
    )
    op.create_index("ix_sms_outbox_due", "sms_outbox", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_sms_outbox_phone_sent", "sms_outbox", ["phone", "sent_at"], unique=False)
    op.create_index(op.f("ix_sms_outbox_notice_id"), "sms_outbox", ["notice_id"], unique=False)
    op.create_index(
        op.f("ix_sms_outbox_provider_message_id"), "sms_outbox", ["provider_message_id"], unique=False
    )


def downgrade() -> None:
    """Revert this revision (the SMS outbox is dropped; workflow states map back to delivery states)."""
    op.drop_table("sms_outbox")
    op.drop_index("ix_notices_status_created", "notices")
    with op.batch_alter_table("notices") as batch:
        batch.drop_constraint(op.f("ck_notices_status"), type_="check")
    op.execute("UPDATE notices SET status = 'pending' WHERE status IN ('awaiting_owner', 'created')")
    op.execute("UPDATE notices SET status = 'sent' WHERE status NOT IN ('pending')")
    with op.batch_alter_table("notices") as batch:
        for name in _TIMES:
            batch.drop_column(name)
        batch.create_check_constraint(op.f("ck_notices_status"), _OLD)
