"""Violations: scene configuration, signal state, pure rules, evidence packages and signing.

Light on purpose: importing `violations` or `violations.manifest` loads no OpenCV (the server imports
the manifest module to verify uploads). The pieces:

- `violations.scene`: camera scene files (`load_scene`, `Scene`, `check_scene`)
- `violations.signal`: traffic-light reader and controller feeds
- `violations.rules.RuleEngine`: the seven rules over track histories
- `violations.evidence.EvidenceBuilder` and `violations.manifest`: signed evidence packages
"""

from violations.types import SignalReading, ViolationEvent

__all__ = ["SignalReading", "ViolationEvent"]
