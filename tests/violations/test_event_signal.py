"""The light's state an evidence package states: the one at the crossing, not at the frame where the
violation was established (at least `signal_settle_s` later, so 'red for' would read too long)."""

from __future__ import annotations

import dataclasses
import types

from phatnguoi.pipeline import EdgePipeline
from tests.violations import Drive, make_scene, phases, run
from violations.rules import RuleEngine

THROUGH = [(0.0, 320.0, 420.0), (4.5, 320.0, 150.0)]


def test_the_package_states_the_light_at_the_crossing() -> None:
    signals = phases((0.0, "amber"), (1.4, "red"))
    (ev,) = run(RuleEngine(make_scene()), [Drive(1, THROUGH)], signals)
    assert ev.ts - ev.details["crossed_at_ts"] >= 1.0
    holder = types.SimpleNamespace(signals=signals(ev.ts))  # what the pipeline holds at that frame
    signal = EdgePipeline._signal_for(holder, ev, ev.ts)  # type: ignore[arg-type]
    assert signal == {"state": "red", "red_for_s": ev.details["red_for_s"]}
    assert signal["red_for_s"] == 0.6


def test_a_rule_without_a_light_states_no_light() -> None:
    signals = phases((0.0, "red"))
    (ev,) = run(RuleEngine(make_scene()), [Drive(1, THROUGH)], signals)
    ev = dataclasses.replace(ev, details={k: v for k, v in ev.details.items() if k != "light_id"})
    holder = types.SimpleNamespace(signals=signals(ev.ts))
    assert EdgePipeline._signal_for(holder, ev, ev.ts) is None  # type: ignore[arg-type]
