"""Initial schema: registry, violations and evidence, audit log, flow counts, notices, penalty outbox.

Generated from `api.models` by autogenerate, then reviewed: timestamps as plain `DateTime(timezone=True)`
(the model's UTC type decorator is application code), plus what autogenerate cannot produce: the
pg_trgm extension and trigram index (PostgreSQL only) and the triggers that make `audit_log`
append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 05:54:30.231116
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_log",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("key_id", name=op.f("uq_devices_key_id")),
    )
    op.create_table(
        "districts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
    )
    op.create_table(
        "owners",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("national_id", sa.String(length=32), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owners")),
        sa.UniqueConstraint("national_id", name=op.f("uq_owners_national_id")),
    )
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("district_id", sa.String(length=64), nullable=True),
        sa.Column("scene_version", sa.String(length=64), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_cameras_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    op.create_index(op.f("ix_cameras_district_id"), "cameras", ["district_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role <> 'officer' OR district_id IS NOT NULL", name=op.f("ck_users_officer_district")
        ),
        sa.CheckConstraint("role IN ('admin', 'supervisor', 'officer')", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_users_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "vehicles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plate_compact", sa.String(length=32), nullable=False),
        sa.Column("vehicle_class", sa.String(length=32), nullable=True),
        sa.Column("make", sa.String(length=64), nullable=True),
        sa.Column("colour", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name=op.f("fk_vehicles_owner_id_owners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("plate_compact", name=op.f("uq_vehicles_plate_compact")),
    )
    op.create_index(op.f("ix_vehicles_owner_id"), "vehicles", ["owner_id"], unique=False)

    op.create_table(
        "device_cameras",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_device_cameras_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_cameras_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "camera_id", name=op.f("pk_device_cameras")),
    )
    op.create_table(
        "flow_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("vehicle_class", sa.String(length=32), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_flow_counts_count")),
        sa.CheckConstraint("interval_end > interval_start", name=op.f("ck_flow_counts_interval")),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name=op.f("fk_flow_counts_camera_id_cameras")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_flow_counts_device_id_devices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_counts")),
        sa.UniqueConstraint(
            "camera_id",
            "lane",
            "direction",
            "vehicle_class",
            "interval_start",
            "interval_end",
            name="uq_flow_counts_key",
        ),
    )
    op.create_index("ix_flow_counts_time", "flow_counts", ["interval_start"], unique=False)

    op.create_table(
        "violations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("legal_reference", sa.Text(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("track_id", sa.BigInteger(), nullable=False),
        sa.Column("frame_index", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_class", sa.String(length=32), nullable=False),
        sa.Column("box_xyxy", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("scene_version", sa.String(length=64), nullable=False),
        sa.Column("plate_text", sa.String(length=256), nullable=True),
        sa.Column("plate_compact", sa.String(length=256), nullable=True),
        sa.Column("plate_formatted", sa.String(length=256), nullable=True),
        sa.Column("plate_confidence", sa.Float(), nullable=True),
        sa.Column("plate_valid", sa.Boolean(), nullable=True),
        sa.Column("plate_lines", sa.Integer(), nullable=True),
        sa.Column("plate_colour", sa.String(length=256), nullable=True),
        sa.Column("plate_alternatives", sa.JSON(), nullable=True),
        sa.Column("plate_key", sa.String(length=256), nullable=True),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.Column("speed_limit_kmh", sa.Float(), nullable=True),
        sa.Column("signal_state", sa.String(length=16), nullable=True),
        sa.Column("red_for_s", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("plate_corrected", sa.String(length=32), nullable=True),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('new', 'confirmed', 'rejected')", name=op.f("ck_violations_status")),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name=op.f("fk_violations_camera_id_cameras")),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_violations_device_id_devices")),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_violations_district_id_districts")
        ),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"], name=op.f("fk_violations_reviewed_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violations")),
        sa.UniqueConstraint("event_id", name=op.f("uq_violations_event_id")),
    )
    op.create_index("ix_violations_camera_time", "violations", ["camera_id", "occurred_at"], unique=False)
    op.create_index(
        "ix_violations_district_time", "violations", ["district_id", "occurred_at", "id"], unique=False
    )
    op.create_index(
        "ix_violations_plate_key",
        "violations",
        ["plate_key"],
        unique=False,
        postgresql_ops={"plate_key": "text_pattern_ops"},
    )
    op.create_index(
        "ix_violations_review", "violations", ["status", "district_id", "occurred_at", "id"], unique=False
    )
    op.create_index("ix_violations_rule_time", "violations", ["rule", "occurred_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Fuzzy/infix plate search. pg_trgm is a trusted extension: the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_violations_plate_key_trgm",
            "violations",
            ["plate_key"],
            postgresql_using="gin",
            postgresql_ops={"plate_key": "gin_trgm_ops"},
        )

    op.create_table(
        "evidence_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("violation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("storage_uri", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('still_before', 'still_at', 'still_after', 'plate', 'clip')",
            name=op.f("ck_evidence_files_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"],
            ["violations.id"],
            name=op.f("fk_evidence_files_violation_id_violations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_files")),
        sa.UniqueConstraint("violation_id", "name", name="uq_evidence_files_violation_name"),
    )
    op.create_index("ix_evidence_files_sha256", "evidence_files", ["sha256"], unique=False)

    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("violation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("lookup_code_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'delivered', 'failed')", name=op.f("ck_notices_status")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name=op.f("fk_notices_owner_id_owners")),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_notices_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("lookup_code_hash", name=op.f("uq_notices_lookup_code_hash")),
        sa.UniqueConstraint("violation_id", name=op.f("uq_notices_violation_id")),
    )
    op.create_table(
        "penalty_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("violation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_penalty_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violations.id"], name=op.f("fk_penalty_deliveries_violation_id_violations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_deliveries")),
        sa.UniqueConstraint("violation_id", name=op.f("uq_penalty_deliveries_violation_id")),
    )
    op.create_index(
        "ix_penalty_deliveries_due", "penalty_deliveries", ["status", "next_attempt_at"], unique=False
    )

    _create_audit_triggers()


def _create_audit_triggers() -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit rows: the log is append-only."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only ({verb} refused)'); END"
            )


def _drop_audit_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def downgrade() -> None:
    """Revert this revision."""
    _drop_audit_triggers()
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_violations_plate_key_trgm", "violations")
    op.drop_index("ix_penalty_deliveries_due", "penalty_deliveries")

    op.drop_table("penalty_deliveries")
    op.drop_table("notices")
    op.drop_index("ix_evidence_files_sha256", "evidence_files")

    op.drop_table("evidence_files")
    op.drop_index("ix_violations_rule_time", "violations")
    op.drop_index("ix_violations_review", "violations")
    op.drop_index("ix_violations_plate_key", "violations", postgresql_ops={"plate_key": "text_pattern_ops"})
    op.drop_index("ix_violations_district_time", "violations")
    op.drop_index("ix_violations_camera_time", "violations")

    op.drop_table("violations")
    op.drop_index("ix_flow_counts_time", "flow_counts")

    op.drop_table("flow_counts")
    op.drop_table("device_cameras")
    op.drop_index(op.f("ix_vehicles_owner_id"), "vehicles")

    op.drop_table("vehicles")
    op.drop_table("users")
    op.drop_index(op.f("ix_cameras_district_id"), "cameras")

    op.drop_table("cameras")
    op.drop_table("owners")
    op.drop_table("districts")
    op.drop_table("devices")
    op.drop_index("ix_audit_log_object", "audit_log")

    op.drop_table("audit_log")
