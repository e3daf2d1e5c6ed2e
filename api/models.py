"""The server's database schema: SQLAlchemy 2 typed ORM classes, one per table.

The schema is created and changed only through Alembic migrations (`api/migrations`), generated from
this metadata and reviewed. It holds what the review UI, statistics, exports, notices and retention
need (migration 0002 added the reviewer's note, the time indexes of the review list and the webhook
outbox's frozen body and idempotency key; 0004 let that outbox hold several messages per violation;
0005 added SMS receipts held for a send not yet recorded, and the plates each notice was given out with;
0006 the retention job's queue of blob deletions; 0007 the reviewer's vehicle-class correction and why a
notice is held).

Personal data of vehicle owners lives only in `owners` (joined to `vehicles` by id): violations carry the
plate, never a person, so the review, statistics and export code never touch personal data unless it
asks for it (and the audit log records that it did).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from api.db import UTCDateTime, utcnow

# Integer on SQLite so that the column is the ROWID (auto-increment); BIGINT on PostgreSQL.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

Role = Literal["admin", "supervisor", "officer"]
ROLES: Final[tuple[str, ...]] = ("admin", "supervisor", "officer")
ViolationStatus = Literal["new", "confirmed", "rejected"]
STATUSES: Final[tuple[str, ...]] = ("new", "confirmed", "rejected")
FILE_KINDS: Final[tuple[str, ...]] = ("still_before", "still_at", "still_after", "plate", "clip")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class District(Base):
    """An administrative district (quận/huyện); officers are scoped to one."""

    __tablename__ = "districts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


device_cameras = Table(
    "device_cameras",
    Base.metadata,
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("camera_id", ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True),
)


class Camera(Base):
    """A camera at an intersection. Its district decides which officers see its violations."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    district_id: Mapped[str | None] = mapped_column(ForeignKey("districts.id"), index=True)
    scene_version: Mapped[str | None] = mapped_column(String(64))
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Device(Base):
    """An edge worker. It authenticates with an API key and signs evidence with its Ed25519 key.

    The API key is `pnd_<key_id>_<secret>`: `key_id` (indexed) finds the row, and `key_hash` is the
    SHA-256 of the whole key. The key holds 256 random bits, so a fast hash is as safe as a slow one
    (there is nothing to guess) and authenticating an upload costs microseconds, not argon2's ~150 ms.
    """

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    public_key_pem: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)

    cameras: Mapped[list[Camera]] = relationship(secondary=device_cameras, lazy="selectin")


class User(Base):
    """A person who reviews: admin, supervisor or officer (officers belong to one district)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint("role <> 'officer' OR district_id IS NOT NULL", name="officer_district"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    district_id: Mapped[str | None] = mapped_column(ForeignKey("districts.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Violation(Base):
    """One violation: what the device saw (from its signed manifest) and what the reviewer decided.

    `plate_key` is the plate searched and exported: the reviewer's correction when there is one, else
    the OCR's compact text. The device's reading stays in `plate_compact`/`plate_text`.
    `vehicle_class` likewise is the class the violation is fined as: the reviewer's correction
    (`vehicle_class_corrected`, migration 0007) when there is one, else the detector's, which stays in
    the signed manifest (a reopening puts it back).
    """

    __tablename__ = "violations"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status"),
        # The review list: filter by status and district, newest first, stable order by id. Both
        # databases scan a B-tree backwards, so ascending columns serve "ORDER BY occurred_at DESC,
        # id DESC" as well as descending ones would (and keep autogenerate comparisons exact).
        Index("ix_violations_review", "status", "district_id", "occurred_at", "id"),
        Index("ix_violations_district_time", "district_id", "occurred_at", "id"),
        # The unfiltered list (supervisors, admins) and the status-only list across districts: without
        # these, "newest first" over all rows is a sort of the whole table.
        Index("ix_violations_time", "occurred_at", "id"),
        Index("ix_violations_status_time", "status", "occurred_at", "id"),
        Index("ix_violations_camera_time", "camera_id", "occurred_at"),
        Index("ix_violations_rule_time", "rule", "occurred_at"),
        # Exact and prefix plate search (text_pattern_ops makes LIKE 'ABC%' use it on PostgreSQL
        # whatever the database collation; SQLite searches prefixes as a range on a plain index).
        Index("ix_violations_plate_key", "plate_key", postgresql_ops={"plate_key": "text_pattern_ops"}),
        # Fuzzy and infix search on PostgreSQL (pg_trgm); the migration creates the extension.
        Index(
            "ix_violations_plate_key_trgm",
            "plate_key",
            postgresql_using="gin",
            postgresql_ops={"plate_key": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    rule: Mapped[str] = mapped_column(String(32))
    legal_reference: Mapped[str] = mapped_column(Text)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    district_id: Mapped[str | None] = mapped_column(ForeignKey("districts.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    track_id: Mapped[int] = mapped_column(BigInteger)
    frame_index: Mapped[int] = mapped_column(BigInteger)
    vehicle_class: Mapped[str] = mapped_column(String(32))
    box_xyxy: Mapped[list[float]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    scene_version: Mapped[str] = mapped_column(String(64))

    # Plate strings are as long as the manifest allows (256), not as long as a real plate: an odd OCR
    # result must still be stored, never refused.
    plate_text: Mapped[str | None] = mapped_column(String(256))
    plate_compact: Mapped[str | None] = mapped_column(String(256))
    plate_formatted: Mapped[str | None] = mapped_column(String(256))
    plate_confidence: Mapped[float | None] = mapped_column(Float)
    plate_valid: Mapped[bool | None] = mapped_column(Boolean)
    plate_lines: Mapped[int | None] = mapped_column(Integer)
    plate_colour: Mapped[str | None] = mapped_column(String(256))
    plate_alternatives: Mapped[list[Any] | None] = mapped_column(JSON)
    plate_key: Mapped[str | None] = mapped_column(String(256))

    speed_kmh: Mapped[float | None] = mapped_column(Float)
    speed_limit_kmh: Mapped[float | None] = mapped_column(Float)
    signal_state: Mapped[str | None] = mapped_column(String(16))
    red_for_s: Mapped[float | None] = mapped_column(Float)

    status: Mapped[str] = mapped_column(String(16), default="new")
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decision_note: Mapped[str | None] = mapped_column(Text)
    plate_corrected: Mapped[str | None] = mapped_column(String(32))
    vehicle_class_corrected: Mapped[str | None] = mapped_column(String(32))

    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by the retention job when it deleted this violation's evidence files (irreversibly).
    evidence_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    files: Mapped[list[EvidenceFile]] = relationship(
        back_populates="violation", lazy="selectin", order_by="EvidenceFile.id", cascade="all, delete-orphan"
    )


class EvidenceFile(Base):
    """One evidence file of a violation; the bytes live in the evidence store at `storage_uri`."""

    __tablename__ = "evidence_files"
    __table_args__ = (
        UniqueConstraint("violation_id", "name", name="uq_evidence_files_violation_name"),
        CheckConstraint(_in("kind", FILE_KINDS), name="kind"),
        Index("ix_evidence_files_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(64))
    storage_uri: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    violation: Mapped[Violation] = relationship(back_populates="files")


class BlobDeletion(Base):
    """A blob the retention job deletes from the evidence store (migration 0006): queued in the transaction
    that purged the last evidence row pointing at it, removed once the store deleted it (`api.retention`).
    A store failure or a killed process leaves the row, and every later run tries again."""

    __tablename__ = "blob_deletions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_uri: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class Owner(Base):
    """A registered vehicle owner (personal data: read only through audited code)."""

    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    national_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Vehicle(Base):
    """A registered vehicle, keyed by its compact plate; points to its owner."""

    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    plate_compact: Mapped[str] = mapped_column(String(32), unique=True)
    vehicle_class: Mapped[str | None] = mapped_column(String(32))
    make: Mapped[str | None] = mapped_column(String(64))
    colour: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: Notice states (Circular 73/2024/TT-BCA procedure, see `api.notices.workflow` for the transitions).
NOTICE_STATUSES: Final[tuple[str, ...]] = (
    "awaiting_owner",
    "created",
    "sms_sent",
    "posted",
    "responded",
    "escalated_20d",
    "closed",
)
SMS_STATUSES: Final[tuple[str, ...]] = ("pending", "sent", "delivered", "failed", "cancelled")


class Notice(Base):
    """A notice to an owner about a confirmed violation, with the code for the public lookup page.

    Unique per violation: a notice is never created twice. `lookup_code_hash` is the SHA-256 of the code
    printed in the notice and the SMS (the code itself is not stored). `awaiting_owner` is a notice
    whose plate has no owner (or no way to reach one) in the registry yet, or whose registered vehicle
    is of another class than the violation's (`hold_reason`): visible, never dropped. Migration 0003
    added the workflow states and their timestamps (`api.notices.workflow`).
    """

    __tablename__ = "notices"
    __table_args__ = (
        CheckConstraint(_in("status", NOTICE_STATUSES), name="status"),
        Index("ix_notices_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"), unique=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"))
    lookup_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    status: Mapped[str] = mapped_column(String(16), default="created")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why an `awaiting_owner` notice is held for a supervisor although the registry knows the plate
    # (its vehicle is of another class than the violation's; Vietnamese, shown to staff). Migration 0007.
    hold_reason: Mapped[str | None] = mapped_column(Text)


class SmsMessage(Base):
    """Durable SMS outbox (`api.notices.sms`): one row per message, retried with backoff until sent.

    `idempotency_key` (one per notice and purpose) makes a second enqueue a no-op, so nothing is sent
    twice; `status` moves pending → sent → delivered (gateway receipt) or failed / cancelled.
    """

    __tablename__ = "sms_outbox"
    __table_args__ = (
        CheckConstraint(_in("status", SMS_STATUSES), name="status"),
        Index("ix_sms_outbox_due", "status", "next_attempt_at"),
        Index("ix_sms_outbox_phone_sent", "phone", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


RECEIPT_STATUSES: Final[tuple[str, ...]] = ("delivered", "failed")


class HeldReceipt(Base):
    """A (signature-checked) SMS delivery receipt whose message id no sent message had yet: a gateway can
    post the receipt before the outbox has recorded the send (`api.notices.sms`, migration 0005). It is
    applied, then deleted, once the send is recorded; one never matched is deleted after
    `api.notices.sms.RECEIPT_HOLD`."""

    __tablename__ = "sms_held_receipts"
    __table_args__ = (CheckConstraint(_in("status", RECEIPT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class NoticePlate(Base):
    """A plate a notice's lookup code was given out with, and to whom (migration 0005): the plate of
    each SMS alert's text and of the paper notice (`api.notices.workflow.remember_plate`).

    The public lookup takes such a plate with the code after the violation's plate was corrected: the
    owner it was given to, while the notice is still theirs, sees the violation (with its corrected
    plate); anyone else is told that the notice was withdrawn (`api.web.lookup`)."""

    __tablename__ = "notice_plates"
    __table_args__ = (UniqueConstraint("notice_id", "plate_key", "owner_id", name="uq_notice_plates_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"))  # first column of the unique key
    plate_key: Mapped[str] = mapped_column(String(256))
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


DELIVERY_STATUSES: Final[tuple[str, ...]] = ("pending", "delivered", "failed", "cancelled")
DELIVERY_KINDS: Final[tuple[str, ...]] = ("confirmed", "withdrawn")


class PenaltyDelivery(Base):
    """Outbox of the signed webhook to the penalty system: one row per message, retried.

    A message is a confirmation (`kind` "confirmed") or the withdrawal of one that reached the penalty
    system when the violation was reopened ("withdrawn"); a violation has as many rows as it had such
    messages, sent in the order of their ids (migration 0004). `payload` is the exact JSON body, frozen
    when the row was written, so every retry sends the same bytes; `idempotency_key` (one per message,
    kept by its retries) lets the penalty system drop a repeat. A row is never deleted: `delivered` is
    the proof that the penalty system has it (see `api.webhook`).
    """

    __tablename__ = "penalty_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint(_in("kind", DELIVERY_KINDS), name="kind"),
        Index("ix_penalty_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="confirmed")
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One row of the append-only, hash-chained audit log (see `api.audit`).

    `seq` is assigned by the appender (previous + 1), so a deleted row leaves a gap and a forked chain
    violates the primary key. The migration adds triggers that refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON, stored verbatim (it is hashed)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class FlowCount(Base):
    """Vehicles counted by a camera in one lane/direction/class over one interval."""

    __tablename__ = "flow_counts"
    __table_args__ = (
        UniqueConstraint(
            "camera_id",
            "lane",
            "direction",
            "vehicle_class",
            "interval_start",
            "interval_end",
            name="uq_flow_counts_key",
        ),
        CheckConstraint("count >= 0", name="count"),
        CheckConstraint("interval_end > interval_start", name="interval"),
        Index("ix_flow_counts_time", "interval_start"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    lane: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(32))
    vehicle_class: Mapped[str] = mapped_column(String(32))
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime)
    interval_end: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
