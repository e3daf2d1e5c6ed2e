"""The uploader against the real server (`phatnguoi serve` on loopback), directly or through the
fault proxy: what each answer does to an item, lost acknowledgements, the device key, flows, and a
bounded shutdown. The backoff and header parsing are pure functions, tested with tables."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from phatnguoi.flows import FlowCount
from phatnguoi.outbox import Outbox
from phatnguoi.uploader import Uploader, UploaderConfig, backoff_delay, classify_status, parse_retry_after
from tests.edge.conftest import Clock
from tests.edge.packages import make_packages
from tests.edge.proxy import FORWARD, Action, FaultProxy
from tests.edge.server import DEVICE_ID, FLOWS, VIOLATIONS, LiveServer, free_port, wait_until

FAST = {"backoff_initial_s": 0.1, "backoff_max_s": 0.5, "jitter": 0.5, "timeout_s": 10.0}


@pytest.mark.parametrize(
    ("attempts", "u", "expected"),
    [
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (4, 0.0, 8.0),
        (9, 0.0, 256.0),
        (10, 0.0, 300.0),  # capped
        (10_000, 0.0, 300.0),  # no overflow
        (3, 0.5, 3.0),  # jitter 0.5 * u 0.5 takes a quarter off 4 s
        (3, 0.999999, 2.000002),
        (0, 0.0, 1.0),  # treated as the first failure
    ],
)
def test_backoff_doubles_is_capped_and_jittered(attempts: int, u: float, expected: float) -> None:
    assert backoff_delay(attempts, 1.0, 300.0, 0.5, u) == pytest.approx(expected)


NOW = datetime(2026, 11, 23, 5, 16, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Mon, 23 Nov 2026 05:16:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 05:15:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("soon", None),
        ("1.5", None),  # delta-seconds are whole numbers
    ],
)
def test_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (201, "sent"), (200, "sent"), (409, "conflict"), (400, "refused"), (413, "refused"), (415, "refused"),
        (422, "refused"), (401, "retry"), (403, "retry"), (408, "retry"), (429, "retry"), (500, "retry"),
        (502, "retry"), (503, "retry"), (204, "retry"), (302, "retry"),
    ],
)  # fmt: skip
def test_what_a_status_means(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_a_4xx_the_ingest_api_did_not_explain_is_retried(status: int) -> None:
    """A proxy's or a wrong address's 4xx (no JSON reason) must not park the queue for good."""
    assert classify_status(status, explained=False) == "retry"
    assert classify_status(404) == "retry"


# ---------------------------------------------------------------------------------------------------
# Against the real server
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    srv = live_server()
    srv.start()
    return srv


@pytest.mark.parametrize(
    ("fault", "first_outcome"),
    [
        # The server stored the package; the connection closes without an answer.
        (Action("drop_after_forward"), "dropped_after_201"),
        # The server stored the package; its answer comes after the uploader's 0.5 s timeout.
        (Action(hold_s=1.5), "201"),
    ],
)
def test_a_lost_acknowledgement_is_resent_and_stored_once(
    server: LiveServer,
    make_outbox: Callable[..., Outbox],
    evidence_root: Path,
    fault: Action,
    first_outcome: str,
) -> None:
    """The uploader never hears that its first upload was stored; it retries, the server answers
    200 (already stored): one row per package, all sent."""
    ob = make_outbox(server.private_key.public_key())
    folders = make_packages(server.private_key, evidence_root, 3, device_id=DEVICE_ID, camera_id="cam-a1")
    for f in folders:
        ob.enqueue_package(f)
    plan = lambda n, path: fault if n == 1 else FORWARD  # noqa: E731
    with FaultProxy(server.url, plan) as proxy:
        up = Uploader(
            ob, server.device_key, UploaderConfig(server_url=proxy.url, **{**FAST, "timeout_s": 0.5})
        )
        up.start()
        try:
            wait_until(lambda: ob.stats().depth == 0, what="outbox drained")
        finally:
            assert up.stop(10)
        # Four requests: the lost one, its resend, the two others; the lost one may finish last.
        wait_until(lambda: len(proxy.outcomes(VIOLATIONS)) == 4, 10, "every request answered")
    assert proxy.outcomes(VIOLATIONS)[0] == first_outcome
    assert "200" in proxy.outcomes(VIOLATIONS)
    assert server.stored() == {r["event_id"]: r["manifest_sha256"] for r in ob.evidence_rows()}
    assert set(server.stored()) == {f.name for f in folders}
    assert server.received_audits() == 3
    s = up.stats()
    assert (s.evidence_sent, s.evidence_duplicates, s.errors) == (2, 1, {"network": 1})


def test_a_wrong_device_key_is_retried_not_given_up(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path
) -> None:
    """401: the key may be re-registered on the server. The item stays queued (alerted); once the
    right key is configured it goes through."""
    ob = make_outbox(server.private_key.public_key())
    [folder] = make_packages(server.private_key, evidence_root, 1, device_id=DEVICE_ID, camera_id="cam-a1")
    ob.enqueue_package(folder)
    wrong = Uploader(ob, "pn_dev_wrong.key", UploaderConfig(server_url=server.url, **FAST))
    assert wrong.run_once() == 1
    [row] = ob.evidence_rows()
    assert (row["state"], row["attempts"]) == ("queued", 1) and row["last_error"].startswith("HTTP 401")
    assert wrong.stats().errors == {"auth": 1} and wrong.paused
    assert wrong.stats().last_cause == "auth"  # the edge's /healthz is not ok while it lasts
    assert [a["kind"] for a in ob.alerts()] == ["auth"]
    right = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url, **FAST))
    wait_until(lambda: right.run_once() == 1, 5, "backoff over")
    assert ob.evidence_rows()[0]["state"] == "sent" and set(server.stored()) == {folder.name}
    assert right.stats().last_cause is None


def test_flow_counts_arrive_batched_per_camera_and_conflicts_keep_the_server_value(
    server: LiveServer, make_outbox: Callable[..., Outbox]
) -> None:
    ob = make_outbox(server.private_key.public_key())
    t0 = 1_699_999_800.0
    counts = [
        FlowCount(cam, "approach", d, cls, t0 + 300 * k, t0 + 300 * (k + 1), n)
        for cam in ("cam-a1", "cam-b1")
        for k, (d, cls, n) in enumerate(
            [("forward", "motorcycle", 41), ("forward", "car", 3), ("cross", "bus", 1)]
        )
    ]
    assert ob.enqueue_flows(counts) == 6
    # The server already holds one of these keys with another value (another writer, first wins).
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            FLOWS,
            json={"camera_id": "cam-a1", "counts": [{**counts[0].to_json(), "count": 40}]},
            headers={"Authorization": f"Bearer {server.device_key}"},
        )
        assert r.status_code == 200
    with FaultProxy(server.url) as proxy:
        up = Uploader(ob, server.device_key, UploaderConfig(server_url=proxy.url, flow_batch=100, **FAST))
        assert up.run_once() == 6
    assert len(proxy.outcomes(FLOWS)) == 2  # one request per camera
    stored = server.flows()
    assert len(stored) == 6
    assert stored[("cam-a1", "approach", "forward", "motorcycle", "2023-11-14T22:10:00Z")] == 40
    assert stored[("cam-b1", "approach", "forward", "motorcycle", "2023-11-14T22:10:00Z")] == 41
    assert ob.stats().flows["sent"] == 6
    assert (up.stats().flows_sent, up.stats().flow_conflicts) == (6, 1)


def test_stop_flushes_what_is_due_within_its_deadline(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path
) -> None:
    """Items queued while the loop sleeps are sent by the flush at stop."""
    ob = make_outbox(server.private_key.public_key())
    up = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url, shutdown_flush_s=10, **FAST))
    stop_now = threading.Event()
    stop_now.set()
    for f in make_packages(server.private_key, evidence_root, 5, device_id=DEVICE_ID, camera_id="cam-a1"):
        ob.enqueue_package(f)
    up.run(stop_now)  # the loop ends at once; the flush runs
    assert ob.stats().evidence["sent"] == 5 and len(server.stored()) == 5


def test_stop_is_bounded_when_the_server_is_unreachable(
    make_outbox: Callable[..., Outbox], key: Ed25519PrivateKey, evidence_root: Path
) -> None:
    """Nothing listens: the uploader pauses with growing backoff; stop ends the thread within the
    flush deadline, and every item is still queued (none lost, none stuck 'sending')."""
    ob = make_outbox(key.public_key())
    for f in make_packages(key, evidence_root, 4, device_id=DEVICE_ID, camera_id="cam-a1"):
        ob.enqueue_package(f)
    cfg = UploaderConfig(server_url=f"http://127.0.0.1:{free_port()}", shutdown_flush_s=1.0, **FAST)
    up = Uploader(ob, "pn_dev_x.y", cfg)
    up.start()
    wait_until(lambda: up.stats().errors.get("network", 0) >= 3, 10, "three failed attempts")
    assert up.stop(timeout_s=cfg.shutdown_flush_s + 2.0)
    stats = ob.stats()
    assert stats.evidence["queued"] == 4 and stats.evidence["sending"] == 0
    assert up.stats().consecutive_failures >= 3


def test_a_wrong_server_address_parks_nothing(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path
) -> None:
    """A typo in ``server_url`` (the real server answers 404) or a proxy's page: retried with backoff,
    never a permanent failure; with the right address the package goes through."""
    ob = make_outbox(server.private_key.public_key())
    [folder] = make_packages(server.private_key, evidence_root, 1, device_id=DEVICE_ID, camera_id="cam-a1")
    ob.enqueue_package(folder)
    wrong = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url + "/phatnguoi", **FAST))
    assert wrong.run_once() == 1
    [row] = ob.evidence_rows()
    assert (row["state"], row["attempts"]) == ("queued", 1) and row["last_error"].startswith("HTTP 404")
    assert wrong.paused and wrong.stats().refused == 0
    right = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url, **FAST))
    wait_until(lambda: right.run_once() == 1, 5, "backoff over")
    assert ob.evidence_rows()[0]["state"] == "sent" and set(server.stored()) == {folder.name}


def test_the_clock_set_back_does_not_hold_uploads_for_the_length_of_the_step(
    server: LiveServer, make_outbox: Callable[..., Outbox], evidence_root: Path, clock: Clock
) -> None:
    """The box booted with its clock a day ahead and the uplink down; NTP then sets the clock right.
    The pause and the retry times computed on the old clock move back with it: the packages go as
    soon as the server answers, not a day later, and a flow mark ahead of the clock is not kept."""
    ob = make_outbox(server.private_key.public_key())
    folders = make_packages(server.private_key, evidence_root, 2, device_id=DEVICE_ID, camera_id="cam-a1")
    clock.t += 86_400.0  # a day ahead
    for f in folders:
        ob.enqueue_package(f)
    ob.enqueue_flows([FlowCount("cam-a1", "l1", "in", "car", clock.t - 300, clock.t, 4)])
    cfg = UploaderConfig(server_url=f"http://127.0.0.1:{free_port()}", **FAST)
    down = Uploader(ob, server.device_key, cfg, clock=clock)
    assert down.run_once() >= 1 and down.paused  # the uplink is not up yet
    clock.t -= 86_400.0  # NTP sets the clock right
    assert down.paused and ob.stats(clock.t).oldest_evidence_age_s == 0.0  # what the step did
    assert ob.flows_until("cam-a1") == clock.t  # not a day ahead: new counts are not "late"
    down.clock_went_back(86_400.0, clock.t)
    due = ob.next_attempt_at()
    assert due is not None and due <= clock.t + FAST["backoff_max_s"]
    clock.t += FAST["backoff_max_s"] + 0.1
    assert not down.paused  # the pause is what it was meant to be, not a day
    assert ob.stats(clock.t).oldest_evidence_age_s > 0.0
    up = Uploader(ob, server.device_key, UploaderConfig(server_url=server.url, **FAST), clock=clock)
    assert up.run_once() >= 2
    assert set(server.stored()) == {f.name for f in folders}
