"""Confirm → notice → SMS through the real server: uvicorn in a subprocess configured by environment
variables like a deployment, its own SMS outbox thread, and the real HTTP gateway adapter talking to a
real HTTP server on loopback that plays the gateway (fails with 500, then accepts). On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.settings import Settings
from api.webhook import sign_body
from tests.api.conftest import PASSWORD, Db
from tests.api.evidence import build_package, post_package
from tests.notices.conftest import REGISTRY_CSV, Gateway
from tests.web.conftest import open_tab, run_server

LOOKUP_URL = "https://tracuu.csgt.hanoi.gov.vn/tra-cuu"
RECEIPT_SECRET = secrets.token_urlsafe(32)
CODE = re.compile(r"^[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}$")


def sms_env(gateway: Gateway) -> dict[str, str]:
    """A deployment's SMS settings: the HTTP gateway on loopback, fast rounds and retries, no quiet
    hours (the test runs at any time of day)."""
    return {
        "PHATNGUOI_SMS_LOOKUP_URL": LOOKUP_URL,
        "PHATNGUOI_SMS_PROVIDER": "http",
        "PHATNGUOI_SMS_GATEWAY_URL": gateway.url,
        "PHATNGUOI_SMS_GATEWAY_AUTH": "Bearer gw-token",
        "PHATNGUOI_SMS_GATEWAY_TIMEOUT_S": "1",
        "PHATNGUOI_SMS_RECEIPT_SECRET": RECEIPT_SECRET,
        "PHATNGUOI_SMS_INTERVAL_S": "0.1",
        "PHATNGUOI_SMS_BACKOFF_S": "0.3",
        "PHATNGUOI_SMS_BACKOFF_MAX_S": "0.6",
        "PHATNGUOI_SMS_QUIET_START": "00:00",
        "PHATNGUOI_SMS_QUIET_END": "00:00",
    }


def token(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def wait_for(what: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def ingest(http: httpx.Client, db: Db, plate: str, seed: int) -> int:
    dev = db.world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", plate=plate, seed=seed)
    r = post_package(http, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def signed(body: bytes, secret: str = RECEIPT_SECRET) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "X-Phatnguoi-Timestamp": str(stamp),
        "X-Phatnguoi-Signature": sign_body(secret.encode(), stamp, body),
    }


def test_confirm_sends_one_sms_retried_through_500s_and_a_late_owner_gets_one_too(
    db: Db, settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    gateway.modes = ["500", "500"]  # the gateway fails twice, then recovers
    with (
        run_server(settings, tmp_path / "server.log", **sms_env(gateway)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        admin, sup, off = token(http, "admin"), token(http, "sup"), token(http, "off-a")
        r = http.post("/api/v1/registry/import", json={"csv": REGISTRY_CSV}, headers=admin)
        assert r.status_code == 200 and r.json()["created"] == 2, r.text

        vid = ingest(http, db, "30A12345", seed=1)
        r = http.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=off)
        assert r.status_code == 200, r.text
        wait_for(lambda: len(gateway.received) == 1)
        wait_for(
            lambda: http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()["status"] == "sms_sent"
        )
        notice = http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()
        (sms,) = notice["sms"]
        assert (sms["status"], sms["attempts"]) == ("sent", 3)  # 500, 500, accepted
        assert len(gateway.headers) == 3
        assert all(h.get("Authorization") == "Bearer gw-token" for h in gateway.headers)
        (message,) = gateway.received
        assert message["to"] == "+84912345678"
        assert CODE.match(notice["lookup_code"])
        for piece in ("30A-123.45", LOOKUP_URL, notice["lookup_code"], "vuot den do"):
            assert piece in str(message["text"]), piece
        assert "Nguyen" not in str(message["text"]) and "Nguyễn" not in str(message["text"])

        # Reopened and confirmed again: the same notice, and no second SMS.
        assert http.post(f"/api/v1/violations/{vid}/reopen", json={"note": "xem lại"}, headers=sup).is_success
        r = http.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=off)
        assert r.status_code == 200, r.text
        time.sleep(1.0)  # ten outbox rounds
        assert len(gateway.received) == 1
        again = http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()
        assert (again["id"], again["lookup_code"], len(again["sms"])) == (
            notice["id"],
            notice["lookup_code"],
            1,
        )

        # Delivery receipts: forged ones are refused, the signed one is recorded.
        body = json.dumps({"message_id": "gw-1", "status": "delivered"}).encode()
        for headers in ({}, signed(body, "not-the-receipt-secret-0123456789abcdef")):
            assert http.post("/api/v1/sms/receipts", content=body, headers=headers).status_code == 403
        r = http.post("/api/v1/sms/receipts", content=body, headers=signed(body))
        assert r.status_code == 200 and r.json() == {"accepted": True, "held": False}
        sms = http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()["sms"][0]
        assert sms["status"] == "delivered" and sms["delivered_at"] is not None

        # A plate nobody owns yet: the notice waits, visibly; nothing is sent.
        orphan = ingest(http, db, "51G88888", seed=2)
        r = http.post(f"/api/v1/violations/{orphan}/decision", json={"decision": "confirm"}, headers=off)
        assert r.status_code == 200, r.text
        waiting = http.get(f"/api/v1/violations/{orphan}/notice", headers=off).json()
        assert (waiting["status"], waiting["sms"], waiting["next_action"]) == (
            "awaiting_owner",
            [],
            "find_owner",
        )
        due = http.get("/api/v1/notices/due", headers=sup).json()
        assert [(d["violation_id"], d["action"], d["plate"]) for d in due if d["violation_id"] == orphan] == [
            (orphan, "find_owner", "51G88888")
        ]
        time.sleep(0.5)
        assert len(gateway.received) == 1

        # The owner is imported later: the notice finds them and the one SMS goes out.
        late = "plate,owner_name,phone\n51G-888.88,Lê Văn Cường,0903 111 222\n"
        r = http.post("/api/v1/registry/import", json={"csv": late}, headers=admin)
        assert r.status_code == 200 and r.json()["owners_found"] == 1, r.text
        wait_for(lambda: len(gateway.received) == 2)
        second = gateway.received[1]
        assert second["to"] == "+84903111222" and waiting["lookup_code"] in str(second["text"])
        wait_for(
            lambda: (
                http.get(f"/api/v1/violations/{orphan}/notice", headers=off).json()["status"] == "sms_sent"
            )
        )
        # Importing the same registry again changes nothing.
        assert (
            http.post("/api/v1/registry/import", json={"csv": late}, headers=admin).json()["owners_found"]
            == 0
        )
        time.sleep(0.5)
        assert len(gateway.received) == 2


def test_a_server_restart_while_the_gateway_fails_loses_nothing_and_sends_once(
    db: Db, settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    gateway.modes = ["500"] * 1000  # down for as long as the first server runs
    env = sms_env(gateway)
    with (
        run_server(settings, tmp_path / "first.log", **env) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        admin, off = token(http, "admin"), token(http, "off-a")
        assert http.post("/api/v1/registry/import", json={"csv": REGISTRY_CSV}, headers=admin).is_success
        vid = ingest(http, db, "30A12345", seed=3)
        assert http.post(
            f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=off
        ).is_success
        wait_for(lambda: len(gateway.headers) >= 2)  # at least one retry failed too
        (sms,) = http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()["sms"]
        assert sms["status"] == "pending" and sms["attempts"] >= 2 and "HTTP 500" in sms["last_error"]
    assert gateway.received == []
    with gateway.lock:
        gateway.modes = []  # back up, while the server is down
    with (
        run_server(settings, tmp_path / "second.log", **env) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        off = token(http, "off-a")
        wait_for(lambda: len(gateway.received) == 1)
        time.sleep(1.0)
        assert len(gateway.received) == 1
        notice = http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()
        assert notice["status"] == "sms_sent" and notice["sms"][0]["status"] == "sent"
    (message,) = gateway.received
    assert message["to"] == "+84912345678" and message["reference"] == f"notice-{notice['id']}-alert"
    # The gateway got the same idempotency key on every attempt: it can drop a repeat on its side.
    assert {h.get("Idempotency-Key") for h in gateway.headers} == {message["reference"]}


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"PHATNGUOI_SMS_PROVIDER": "http"}, "PHATNGUOI_SMS_GATEWAY_URL"),
        ({"PHATNGUOI_SMS_PROVIDER": "http", "PHATNGUOI_SMS_GATEWAY_URL": "http://127.0.0.1:9/send"}, "_AUTH"),
        ({"PHATNGUOI_SMS_GATEWAY_BODY": "[1, 2]"}, "PHATNGUOI_SMS_GATEWAY_BODY"),
        ({"PHATNGUOI_SMS_PROVIDER": "carrier-pigeon"}, "PHATNGUOI_SMS_PROVIDER"),
    ],
)
def test_bad_sms_settings_are_refused_naming_the_variable(
    env: dict[str, str], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.errors import SettingsError
    from api.notices.settings import load_notice_settings

    monkeypatch.setenv("PHATNGUOI_SMS_LOOKUP_URL", LOOKUP_URL)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError, match=problem):
        load_notice_settings()


def test_a_receipt_posted_before_the_send_is_recorded_is_kept_and_applied(
    db: Db, settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    """A fast gateway posts the delivery receipt before it answers the send, so before the outbox has
    recorded the message id. The receipt is held, not lost: once the send is recorded the message is
    "delivered" (or "failed"), as if the receipt had come after."""
    answers: list[tuple[int, object]] = []
    outcomes = ["delivered", "failed"]

    with (
        run_server(settings, tmp_path / "server.log", **sms_env(gateway)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):

        def receipt_first(message_id: str) -> None:
            body = json.dumps({"message_id": message_id, "status": outcomes[len(answers)]}).encode()
            r = httpx.post(f"{url}/api/v1/sms/receipts", content=body, headers=signed(body), timeout=10)
            answers.append((r.status_code, r.json()))

        gateway.before_answer = receipt_first
        admin, off = token(http, "admin"), token(http, "off-a")
        assert http.post("/api/v1/registry/import", json={"csv": REGISTRY_CSV}, headers=admin).is_success
        vids = [ingest(http, db, plate, seed=i + 1) for i, plate in enumerate(["30A12345", "29X123456"])]
        for vid in vids:  # the outbox sends in this order: the first gets "delivered", the second "failed"
            r = http.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=off)
            assert r.status_code == 200, r.text
        wait_for(lambda: len(answers) == 2)

        def sms_of(vid: int) -> dict[str, object]:
            (message,) = http.get(f"/api/v1/violations/{vid}/notice", headers=off).json()["sms"]
            return dict(message)

        deadline = time.monotonic() + 10
        while [sms_of(v)["status"] for v in vids] != ["delivered", "failed"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [sms_of(v)["status"] for v in vids] == ["delivered", "failed"], answers
        assert answers == [(200, {"accepted": True, "held": True})] * 2
        delivered = sms_of(vids[0])
        assert delivered["delivered_at"] is not None and delivered["sent_at"] is not None
        assert str(delivered["delivered_at"]) >= str(delivered["sent_at"])
        # A late "failed" for the delivered one changes nothing; a second receipt is applied at once.
        for message_id, status in (("gw-1", "failed"), ("gw-2", "delivered")):
            body = json.dumps({"message_id": message_id, "status": status}).encode()
            r = http.post("/api/v1/sms/receipts", content=body, headers=signed(body))
            assert r.status_code == 200 and r.json() == {"accepted": True, "held": False}
        assert [sms_of(v)["status"] for v in vids] == ["delivered", "delivered"]


def test_the_plate_and_code_of_the_sms_still_find_the_violation_after_a_plate_correction(
    db: Db,
    settings: Settings,
    gateway: Gateway,
    tmp_path: Path,
    browser: Any,
) -> None:
    """The owner got an SMS naming the misread plate; the plate was corrected after a reopening.

    - to another vehicle of the same owner: no second SMS, and the plate and code of the one they got
      open the violation page, which shows the corrected plate and the plate it was corrected from;
    - to someone else's vehicle: the new owner gets an SMS naming their plate; the first owner's plate
      and code answer that their notice was withdrawn (410), showing nothing of the violation.
    Plate and code stay required together: another plate, or another code, is "not found"."""
    registry = REGISTRY_CSV + "30A-123.46,Nguyễn Văn An,0912 345 678,001090000001,12 Láng Hạ,car,đen\n"
    env = {**sms_env(gateway), "PHATNGUOI_LOOKUP_MAX_REQUESTS": "100"}
    with (
        run_server(settings, tmp_path / "server.log", **env) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        admin, sup, off = token(http, "admin"), token(http, "sup"), token(http, "off-a")
        assert http.post("/api/v1/registry/import", json={"csv": registry}, headers=admin).is_success

        def confirm(vid: int, plate: str | None = None) -> None:
            body = {"decision": "confirm"} if plate is None else {"decision": "confirm", "plate": plate}
            r = http.post(f"/api/v1/violations/{vid}/decision", json=body, headers=off)
            assert r.status_code == 200, r.text

        def lookup(plate: str, code: str) -> httpx.Response:
            return http.get("/api/v1/lookup", params={"plate": plate, "code": code})

        def code_in(text: object) -> str:
            found = re.search(r"[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}", str(text))
            assert found is not None, text
            return found.group(0)

        # 1. Misread as the owner's other vehicle, corrected to the right one.
        same = ingest(http, db, "30A12346", seed=1)
        confirm(same)
        wait_for(lambda: len(gateway.received) == 1)
        first = gateway.received[0]
        assert "30A-123.46" in str(first["text"])
        code = code_in(first["text"])
        r = lookup("30A-123.46", code)
        assert r.status_code == 200 and r.json().get("corrected_from") is None
        assert http.post(
            f"/api/v1/violations/{same}/reopen", json={"note": "sai biển"}, headers=sup
        ).is_success
        confirm(same, "30A-123.45")
        time.sleep(1.0)  # ten outbox rounds: no second SMS to the same owner
        assert len(gateway.received) == 1
        r = lookup("30a-123.46", code.lower())
        assert r.status_code == 200, r.text
        page = r.json()
        assert (page["plate"], page["corrected_from"], page["status"]) == (
            "30A-123.45",
            "30A-123.46",
            "confirmed",
        )
        assert len(page["stills"]) == 3
        r = lookup("30A-123.45", code)
        assert r.status_code == 200 and r.json().get("corrected_from") is None

        # 2. Misread as someone else's plate, corrected to the real owner's.
        other = ingest(http, db, "30A12345", seed=2)
        confirm(other)
        wait_for(lambda: len(gateway.received) == 2)
        to_first = gateway.received[1]
        assert to_first["to"] == "+84912345678" and "30A-123.45" in str(to_first["text"])
        code2 = code_in(to_first["text"])
        assert http.post(
            f"/api/v1/violations/{other}/reopen", json={"note": "sai biển"}, headers=sup
        ).is_success
        confirm(other, "29-X1 234.56")
        wait_for(lambda: len(gateway.received) == 3)
        to_right = gateway.received[2]
        assert to_right["to"] == "+84987654321" and "29-X1 234.56" in str(to_right["text"])
        assert code_in(to_right["text"]) == code2
        r = lookup("30A-123.45", code2)
        assert r.status_code == 410, r.text
        assert "withdrawn" in r.json()["detail"] and "29" not in r.text and "stills" not in r.text
        r = lookup("29-X1 234.56", code2)
        assert r.status_code == 200 and r.json()["plate"] == "29-X1 234.56"

        # Plate and code stay required together.
        for plate, c in (
            ("30A-123.47", code),
            ("30A-123.46", code2),
            ("29-X1 234.56", code),
            ("30A-123.46", "ABCDE-FGHJK"),
        ):
            assert lookup(plate, c).status_code == 404, (plate, c)

        # What the owners see on the lookup page.
        context, tab = open_tab(browser, url)
        try:
            page = tab.page
            tab.goto("/lookup")

            def look_up(plate: str, code: str) -> None:
                page.get_by_label("Biển số xe").fill(plate)
                page.get_by_label("Mã tra cứu").fill(code)
                page.get_by_role("button", name="Tra cứu").click()

            look_up("30A-123.46", code)
            page.locator("#lookup-result").wait_for(state="visible")
            assert page.locator("#lr-plate").inner_text() == "30A-123.45"
            assert page.locator("#lr-corrected").inner_text() == (
                "Biển số trong thông báo (30A-123.46) đã được cán bộ sửa thành 30A-123.45 khi xem xét."
            )
            look_up("30A-123.45", code2)
            page.get_by_role("alert").wait_for(state="visible")
            assert (
                page.get_by_role("alert")
                .inner_text()
                .startswith("Thông báo gửi cho biển số này đã được thu hồi")
            )
            assert page.locator("#lookup-result").is_hidden()
            look_up("30A-123.45", code)
            page.locator("#lookup-result").wait_for(state="visible")
            assert page.locator("#lr-corrected").is_hidden()
            assert tab.errors == []
        finally:
            context.close()
