"""The reviewer's vehicle-class correction; why a notice is held for a supervisor.

- `violations.vehicle_class_corrected`: the class a reviewer set on the decision (None: the detector's
  stands). `violations.vehicle_class` is then that class, the one the violation is fined as; the
  detector's stays in the signed manifest (`api.services.review`).
- `notices.hold_reason`: why an `awaiting_owner` notice waits for a supervisor although the registry
  knows its plate (the registered vehicle is of another class regime than the violation's;
  `api.notices.workflow`). Existing rows get None: nothing was corrected or held before this revision.

Written by hand and checked against the models by `tests/api/test_migrations.py`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("violations", sa.Column("vehicle_class_corrected", sa.String(length=32), nullable=True))
    op.add_column("notices", sa.Column("hold_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision. A corrected class stays in `vehicle_class` (the class fined; the correction
    is in the audit log). Held notices stay `awaiting_owner`, without their reason."""
    op.drop_column("notices", "hold_reason")
    op.drop_column("violations", "vehicle_class_corrected")
