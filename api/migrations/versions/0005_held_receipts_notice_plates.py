"""SMS receipts held for a send not yet recorded; the plates each notice's lookup code was given out with.

- `sms_held_receipts`: a delivery receipt for a message id that no sent message has yet (the gateway
  posted it before the outbox recorded the send); applied when the send is recorded, deleted after 24 h
  when it never is (`api.notices.sms`).
- `notice_plates`: (notice, plate, owner) for each plate an SMS alert or the paper notice named with
  the notice's lookup code, so that the owner can still look the violation up with that plate after
  a correction (`api.web.lookup`). Existing notices get one row: the plate of their confirmed
  violation and their owner, when an alert was queued or the paper notice posted (a plate corrected
  before this revision is not known and is not added).

Written by hand and checked against the models by `tests/api/test_migrations.py`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sms_held_receipts",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('delivered', 'failed')", name=op.f("ck_sms_held_receipts_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_held_receipts")),
    )
    op.create_index(
        op.f("ix_sms_held_receipts_provider_message_id"),
        "sms_held_receipts",
        ["provider_message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_sms_held_receipts_received_at"), "sms_held_receipts", ["received_at"], unique=False
    )
    op.create_table(
        "notice_plates",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("notice_id", _BIGINT, nullable=False),
        sa.Column("plate_key", sa.String(length=256), nullable=False),
        sa.Column("owner_id", _BIGINT, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_plates_notice_id_notices")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name=op.f("fk_notice_plates_owner_id_owners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_plates")),
        sa.UniqueConstraint("notice_id", "plate_key", "owner_id", name=op.f("uq_notice_plates_key")),
    )
    # What each existing notice was given out with, as far as it is known now.
    op.execute(
        "INSERT INTO notice_plates (notice_id, plate_key, owner_id, issued_at) "
        "SELECT n.id, UPPER(v.plate_key), n.owner_id, COALESCE(n.sent_at, n.posted_at, n.created_at) "
        "FROM notices n JOIN violations v ON v.id = n.violation_id "
        "WHERE v.status = 'confirmed' AND v.plate_key IS NOT NULL AND n.owner_id IS NOT NULL "
        "AND (n.posted_at IS NOT NULL OR EXISTS "
        "(SELECT 1 FROM sms_outbox m WHERE m.notice_id = n.id AND m.status <> 'cancelled'))"
    )


def downgrade() -> None:
    """Revert this revision (held receipts and the plates' history are dropped)."""
    op.drop_table("notice_plates")
    op.drop_index(op.f("ix_sms_held_receipts_received_at"), "sms_held_receipts")
    op.drop_index(op.f("ix_sms_held_receipts_provider_message_id"), "sms_held_receipts")
    op.drop_table("sms_held_receipts")
