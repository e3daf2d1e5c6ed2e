"""Request and response bodies of the notice and registry routes (`api.routes.notices`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NoticeState = Literal[
    "awaiting_owner", "created", "sms_sent", "posted", "responded", "escalated_20d", "closed"
]


class RegistryImportRequest(BaseModel):
    """A registry CSV (see `api.notices.registry` for the columns)."""

    model_config = ConfigDict(extra="forbid")

    csv: str = Field(max_length=20_000_000, description="The CSV text, header row first.")


class RejectedRowPublic(BaseModel):
    line: int
    plate: str
    reason: str


class RegistryImportReport(BaseModel):
    created: int
    updated: int
    rejected: list[RejectedRowPublic]
    notices_created: int = Field(0, description="Notices made for confirmed violations that had none.")
    owners_found: int = Field(0, description="Waiting notices whose owner this import supplied.")


class OwnerPublic(BaseModel):
    """Personal data: only for supervisors and admins, every read audited."""

    plate: str
    registered: bool
    full_name: str | None
    phone: str | None
    address: str | None
    vehicle_class: str | None
    colour: str | None


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    violation_id: int = Field(ge=1, le=2**63 - 1)


class SmsPublic(BaseModel):
    status: str = Field(description="pending (queued), sent, delivered, failed or cancelled.")
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


class NoticePublic(BaseModel):
    id: int
    violation_id: int
    status: NoticeState
    created_at: datetime
    sent_at: datetime | None
    posted_at: datetime | None
    responded_at: datetime | None
    escalated_at: datetime | None
    closed_at: datetime | None
    sms: list[SmsPublic]
    lookup_code: str | None = Field(
        None, description="The code printed on the notice and in the SMS; null when it cannot be shown."
    )
    notice_due_at: datetime = Field(description="The notice must be sent by then (violation + 10 days).")
    escalate_due_at: datetime | None = Field(
        None, description="Warn the registration bodies then (posted + 20 days without a response)."
    )
    next_action: Literal["find_owner", "send_notice", "escalate"] | None = Field(
        None, description="What staff must do next (the due list's action); null when nothing is due."
    )
    overdue: bool = False
    hold_reason: str | None = Field(
        None,
        description="Why the notice is held for a supervisor (Vietnamese): the registry's vehicle is of "
        "another class than the violation's. A new decision with the right class (or plate) releases it.",
    )
    fine_min_vnd: int | None = Field(None, description="Fine range in force at the violation's time.")
    fine_max_vnd: int | None = None
    legal_reference: str | None = None


class NoticeCreated(BaseModel):
    notice: NoticePublic
    created: bool
    lookup_code: str | None = Field(
        None,
        description="When the notice was created by this request (never stored; staff views of the "
        "notice show it again in `notice.lookup_code`).",
    )


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: NoticeState
    note: str | None = Field(None, max_length=2000)


class DueActionPublic(BaseModel):
    notice_id: int
    violation_id: int
    plate: str | None = None
    rule: str | None = None
    occurred_at: datetime | None = None
    status: NoticeState
    action: Literal["find_owner", "send_notice", "escalate"]
    due_at: datetime
    overdue: bool
    hold_reason: str | None = Field(None, description="Why the notice is held (see `NoticePublic`).")


class PostedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000, description="e.g. the registered-mail number.")


class ReceiptResult(BaseModel):
    """A signed delivery receipt was kept: applied now, or `held` until its send is recorded."""

    accepted: bool
    held: bool = False
