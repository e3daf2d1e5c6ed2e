"""Shared value types of the violations layer: rule ids, signal readings and violation events.

These are the contract between the rules, the signal reader, the evidence builder and the server
(see the evidence manifest): names and meanings must not drift. Pure standard library, so the server
can import it without numpy or OpenCV.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

RuleId = Literal["red_light", "stop_line", "wrong_way", "wrong_lane", "illegal_stop", "sidewalk", "speeding"]
#: Every rule id, in a stable order (reports, CLI listings).
RULE_IDS: tuple[RuleId, ...] = get_args(RuleId)

SignalState = Literal["red", "amber", "green", "unknown"]
SIGNAL_STATES: tuple[SignalState, ...] = get_args(SignalState)

#: Namespace of the deterministic event ids (uuid5). Fixed forever: changing it changes every id.
EVENT_NAMESPACE = uuid.UUID("9649906b-6fbd-4b3e-905d-2764de5ed618")


@dataclass(frozen=True, slots=True)
class SignalReading:
    """The state of one traffic light at one moment.

    Attributes:
        state: red, amber, green or unknown.
        since_ts: when this state began, in frame time (seconds, `Frame.ts`); for red,
            ``red_for_s = ts - since_ts``.
        confidence: 0..1, how sure the reader is of `state`.
    """

    state: SignalState
    since_ts: float
    confidence: float

    def __post_init__(self) -> None:
        if self.state not in SIGNAL_STATES:
            raise ValueError(f"state must be one of {SIGNAL_STATES}, got {self.state!r}")
        if not math.isfinite(self.since_ts):
            raise ValueError(f"since_ts must be finite, got {self.since_ts}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {self.confidence}")


def event_id(camera_id: str, track_id: int, rule: RuleId, episode_start_ts: float) -> str:
    """Deterministic id of a violation: re-running the same video gives the same ids.

    ``uuid5(EVENT_NAMESPACE, f"{camera_id}/{track_id}/{rule}/{episode_start_ts:.3f}")`` as a string.
    """
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{camera_id}/{track_id}/{rule}/{episode_start_ts:.3f}"))


@dataclass(frozen=True, slots=True)
class ViolationEvent:
    """One violation established by a rule, ready for evidence building.

    Attributes:
        event_id: deterministic id, see `event_id`.
        rule: which rule established it.
        legal_reference: the Vietnamese citation that applies to the vehicle class, e.g.
            "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP".
        camera_id: the scene's camera id.
        track_id: tracker id of the vehicle at `frame_index`.
        frame_index: the frame at which the violation is established.
        ts: that frame's timestamp (seconds, `Frame.ts`).
        vehicle_class: "motorcycle", "car", "bus", "truck", "bicycle" or "person".
        box_xyxy: the vehicle's box at `frame_index`, frame pixels.
        details: rule-specific, JSON-serialisable (line/zone id, signal, speeds, dwell, ...).
    """

    event_id: str
    rule: RuleId
    legal_reference: str
    camera_id: str
    track_id: int
    frame_index: int
    ts: float
    vehicle_class: str
    box_xyxy: tuple[float, float, float, float]
    details: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``events.jsonl`` rows, manifests)."""
        return {
            "event_id": self.event_id,
            "rule": self.rule,
            "legal_reference": self.legal_reference,
            "camera_id": self.camera_id,
            "track_id": self.track_id,
            "frame_index": self.frame_index,
            "ts": self.ts,
            "vehicle_class": self.vehicle_class,
            "box_xyxy": list(self.box_xyxy),
            "details": dict(self.details),
        }
