"""A flow batch the server refuses whole, because of some of its counts, loses only those counts.

After the box's clock is set back (NTP correcting a clock that ran ahead), the outbox can hold counts
dated ahead of the corrected clock, queued before the step, beside the real counts queued after it;
they go in one batch. The server refuses a batch whole (422 "check the device clock") when one of its
intervals starts beyond ``PHATNGUOI_INGEST_FUTURE_SKEW_S``, and (409) when one overlaps a stored
interval. Before the fix, the uploader marked every count of such a batch refused for good: the
real ones were lost. Now the batch is split until only the refused counts are left: those are dropped
(``failed_permanent``, one alert naming how many and why), the others stored, nothing retried.

The real uploader against the real server (`phatnguoi serve` on loopback), through the fault proxy
to see the requests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import httpx
import pytest

from phatnguoi.flows import FlowCount
from phatnguoi.outbox import Outbox
from phatnguoi.uploader import Uploader, UploaderConfig
from tests.edge.conftest import Clock
from tests.edge.proxy import FORWARD, Action, FaultProxy
from tests.edge.server import FLOWS, LiveServer

FAST = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5, "jitter": 0.0, "timeout_s": 10.0}
STEP_S = 7 * 3600.0  # how far ahead the box's clock ran before NTP set it


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    srv = live_server()
    srv.start()
    return srv


def _counts(t0: float, n: int, lane: str = "approach", *, first: int = 0) -> list[FlowCount]:
    return [
        FlowCount("cam-a1", lane, "forward", "motorcycle", t0 + 300 * k, t0 + 300 * (k + 1), 10 + k)
        for k in range(first, first + n)
    ]


def _queue_across_a_step_back(ob: Outbox, clock: Clock) -> tuple[list[FlowCount], list[FlowCount]]:
    """Two intervals closed while the clock ran `STEP_S` ahead, then three real ones after NTP set it:
    (real, future), all queued in one outbox."""
    now = clock.t
    t0 = math.floor(now / 300) * 300 - 3 * 300  # three closed 5-minute intervals before now
    clock.t = now + STEP_S
    future = _counts(t0 + STEP_S, 2)
    assert ob.enqueue_flows(future) == 2
    clock.t = now
    ob.rebase(STEP_S, now)  # what the uploader does when it sees the step
    real = _counts(t0, 3, lane="exit")
    assert ob.enqueue_flows(real) == 3
    return real, future


def _key(fc: FlowCount) -> tuple[str, str, str, str, str]:
    start = fc.to_json()["interval_start"]
    return (fc.camera_id, fc.lane, fc.direction, fc.vehicle_class, start)


def test_future_counts_are_dropped_and_the_real_ones_of_their_batch_stored(
    server: LiveServer, make_outbox: Callable[..., Outbox], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ob = make_outbox(server.private_key.public_key())
    real, future = _queue_across_a_step_back(ob, clock)
    with FaultProxy(server.url) as proxy:
        up = Uploader(ob, server.device_key, UploaderConfig(server_url=proxy.url, **FAST), clock=clock)
        with caplog.at_level(logging.WARNING):
            assert up.run_once() == 5
        # Every row is settled in that one round: nothing is due again, nothing is retried.
        assert up.run_once() == 0 and not up.paused
        clock.t += 3600.0
        assert up.run_once() == 0
    outcomes = proxy.outcomes(FLOWS)
    assert outcomes[0] == "422"  # the whole batch, refused
    assert outcomes.count("200") >= 1 and len(outcomes) <= 7  # split, not sent one by one
    assert server.flows() == {_key(fc): fc.count for fc in real}
    rows = ob.flow_rows()
    states = {(r["lane"], r["state"]) for r in rows}
    assert states == {("exit", "sent"), ("approach", "failed_permanent")}
    assert [r["state"] for r in rows].count("failed_permanent") == len(future)
    for r in rows:
        if r["state"] == "failed_permanent":
            assert "check the device clock" in r["last_error"]
    s = up.stats()
    assert (s.flows_sent, s.refused, s.retries) == (3, 2, 0)
    [alert] = ob.alerts()
    assert alert["kind"] == "refused" and alert["message"].startswith("2 flow item(s) refused for good")
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, [r.getMessage() for r in loud]  # one line for the dropped counts
    line = loud[0].getMessage()
    assert "2 flow item(s)" in line and "of 5" in line and "check the device clock" in line


def test_a_count_overlapping_a_stored_interval_costs_only_itself(
    server: LiveServer, make_outbox: Callable[..., Outbox], clock: Clock
) -> None:
    """409: one count overlaps an interval the server holds (another interval length); the batch's
    other counts are stored."""
    ob = make_outbox(server.private_key.public_key())
    t0 = math.floor(clock.t / 3600) * 3600 - 7200
    batch = _counts(t0, 4)
    with httpx.Client(base_url=server.url) as http:
        # The server holds [t0 + 300, t0 + 900): it overlaps batch[1] and batch[2] ([t0 + 300, t0 + 600)
        # and [t0 + 600, t0 + 900)) without being either.
        held = {
            **batch[0].to_json(),
            "interval_start": batch[1].to_json()["interval_start"],
            "interval_end": batch[2].to_json()["interval_end"],
            "count": 99,
        }
        r = http.post(
            FLOWS,
            json={"camera_id": "cam-a1", "counts": [held]},
            headers={"Authorization": f"Bearer {server.device_key}"},
        )
        assert r.status_code == 200, r.text
    assert ob.enqueue_flows(batch) == 4
    up = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url, **FAST), clock=clock)
    assert up.run_once() == 4
    assert up.run_once() == 0
    # The held interval (99, from the start of batch[1]) and batch[0], batch[3].
    assert server.flows() == {_key(batch[0]): 10, _key(batch[1]): 99, _key(batch[3]): 13}
    rows = {r["interval_start"]: r for r in ob.flow_rows()}
    assert [rows[fc.interval_start]["state"] for fc in batch] == [
        "sent",
        "failed_permanent",
        "failed_permanent",
        "sent",
    ]
    assert "overlaps the stored interval" in rows[batch[1].interval_start]["last_error"]


def test_an_outage_while_splitting_gives_back_what_was_not_sent(
    server: LiveServer, make_outbox: Callable[..., Outbox], clock: Clock
) -> None:
    """The server answers the whole batch (422), then fails (500) while the uploader splits it: the
    counts not sent stay queued (none left 'sending', none refused for good) and go when it is back."""
    ob = make_outbox(server.private_key.public_key())
    real, _ = _queue_across_a_step_back(ob, clock)

    def plan(n: int, path: str) -> Action:
        return Action("status", 500) if path == FLOWS and n == 2 else FORWARD

    with FaultProxy(server.url, plan) as proxy:
        up = Uploader(ob, server.device_key, UploaderConfig(server_url=proxy.url, **FAST), clock=clock)
        assert up.run_once() == 5
        assert proxy.outcomes(FLOWS) == ["422", "500"]
        flows = ob.stats().flows
        assert flows.get("sending", 0) == 0 and flows.get("failed_permanent", 0) == 0
        assert flows["queued"] == 5 and up.paused
        clock.t += FAST["backoff_max_s"] * 4
        for _ in range(3):
            up.run_once()
    assert server.flows() == {_key(fc): fc.count for fc in real}
    flows = ob.stats().flows
    assert (flows.get("sent"), flows.get("failed_permanent"), flows.get("queued", 0)) == (3, 2, 0)
