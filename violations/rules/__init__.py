"""Violation rules: pure functions of (scene, track histories, signal states, time) → events.

`RuleEngine` is the entry point: one per camera, fed the live tracks and the latest signal readings
after every processed frame. The rule classes are exported for tests and tools that want one rule.
"""

from violations.rules.base import Batch, Rule, SignalBook
from violations.rules.engine import COCO_NAMES, RuleEngine
from violations.rules.signal_rules import SignalLineRule
from violations.rules.speed import SpeedEstimate, SpeedingRule, estimate_speed
from violations.rules.zone_rules import IllegalStopRule, SidewalkRule, WrongLaneRule, WrongWayRule

__all__ = [
    "COCO_NAMES",
    "Batch",
    "IllegalStopRule",
    "Rule",
    "RuleEngine",
    "SidewalkRule",
    "SignalBook",
    "SignalLineRule",
    "SpeedEstimate",
    "SpeedingRule",
    "WrongLaneRule",
    "WrongWayRule",
    "estimate_speed",
]
