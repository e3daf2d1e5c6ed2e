"""The vehicle class on review, through the API on both databases.

A reviewer can correct the detector's vehicle class (audited like a plate correction, undone by a
reopening); the corrected class is the one the notice, its PDF, the SMS alert's notice and the penalty
webhook are fined under. A notice whose registry entry is of another regime than the violation's class
(a registered motorcycle detected as a car) is not sent: it waits for a supervisor with the reason,
until a new decision corrects the class (or the plate), which releases it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from api.models import AuditEntry, PenaltyDelivery, Violation
from api.notices import service, sms
from api.notices.registry import import_csv
from api.notices.settings import NoticeSettings
from api.settings import Settings
from api.web import i18n
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package
from tests.notices.test_service import LOOKUP_URL, outbox, reopen, sms_client  # noqa: F401

Auth = Callable[[str], dict[str, str]]

# The reviewer's case: a registered motorcycle (two-line plate) that the detector called a car.
MOTORBIKE_CSV = (
    "plate,owner_name,phone,national_id,address,vehicle_class,colour\n"
    "29B1-678.90,Vũ Thị E,0976543210,,5 Kim Mã,motorcycle,\n"
    "30A-123.45,Nguyễn Văn An,0912 345 678,001090000001,12 Láng Hạ,car,trắng\n"
)
MOTORBIKE_PLATE = "29B167890"
CAR_CITATION = "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"
MOTORBIKE_CITATION = "Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"
WEBHOOK = {
    "penalty_webhook_url": "http://127.0.0.1:9/penalty",
    "penalty_webhook_secret": secrets.token_urlsafe(40),
    "penalty_webhook_interval_s": 3600,  # nothing is sent: the tests read the queued payloads
}


@pytest.fixture
def client(sms_client: Callable[..., TestClient], sessions: sessionmaker[Session]) -> TestClient:  # noqa: F811
    """A server with SMS alerts and the penalty webhook on, and the registry above imported (this
    module's `client`)."""
    with sessions() as s:
        import_csv(s, MOTORBIKE_CSV, actor="user:admin")
        s.commit()
    return sms_client(**WEBHOOK)


def ingest(client: TestClient, world: World, plate: str, seed: int = 1, **manifest: Any) -> int:
    dev = world.devices["dev-a"]
    pkg = build_package(
        dev.private_key, device_id=dev.id, camera_id="cam-a1", plate=plate, seed=seed, overrides=manifest
    )
    r = post_package(client, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def decide(client: TestClient, vid: int, auth: Auth, who: str = "off-a", **body: Any) -> Any:
    return client.post(
        f"/api/v1/violations/{vid}/decision", json={"decision": "confirm", **body}, headers=auth(who)
    )


def notice_of(client: TestClient, vid: int, auth: Auth) -> dict[str, Any]:
    r = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def penalty_payloads(sessions: sessionmaker[Session], vid: int) -> list[dict[str, Any]]:
    with sessions() as s:
        rows = s.scalars(
            select(PenaltyDelivery).where(PenaltyDelivery.violation_id == vid).order_by(PenaltyDelivery.id)
        ).all()
        return [json.loads(r.payload) for r in rows if r.kind == "confirmed"]


def send_sms(sessions: sessionmaker[Session], tmp_path: Path) -> list[dict[str, Any]]:
    """Send what the outbox holds through the file provider; every SMS written so far."""
    config = NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config()
    assert config is not None
    config = config.model_copy(update={"quiet_start": config.quiet_end})
    out = tmp_path / "sms.jsonl"
    sms.deliver_pending(sessions, sms.FileProvider(out), config)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []


def pdf_text(client: TestClient, vid: int, auth: Auth, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
    assert r.status_code == 200, r.text
    path = tmp_path / f"notice-{vid}.pdf"
    path.write_bytes(r.content)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def test_a_registered_motorcycle_detected_as_a_car_is_held_and_released_by_a_class_correction(
    client: TestClient,
    world: World,
    auth: Auth,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    make_settings: Callable[..., Settings],
) -> None:
    vid = ingest(client, world, MOTORBIKE_PLATE)
    r = decide(client, vid, auth)
    assert r.status_code == 200, r.text

    # Held: no SMS, the notice waits for a supervisor and says why (in Vietnamese).
    held = notice_of(client, vid, auth)
    assert (held["status"], held["next_action"], held["sms"]) == ("awaiting_owner", "find_owner", [])
    assert outbox(sessions) == []
    assert held["hold_reason"] is not None
    assert "Mô tô, xe máy" in held["hold_reason"] and "Ô tô" in held["hold_reason"]
    assert "29-B1 678.90" in held["hold_reason"]
    (due,) = client.get("/api/v1/notices/due", headers=auth("sup")).json()
    assert (due["violation_id"], due["action"], due["hold_reason"]) == (
        vid,
        "find_owner",
        held["hold_reason"],
    )
    assert (
        client.post(f"/api/v1/violations/{vid}/notice/posted", json={}, headers=auth("sup")).status_code
        == 409
    )
    # A registry import that changes nothing does not release it either.
    wiring = service.wiring_for(make_settings(), NoticeSettings(sms_lookup_url=LOOKUP_URL).sms_config())
    assert service.catch_up(sessions, wiring).owners_found == 0
    assert outbox(sessions) == [] and notice_of(client, vid, auth)["status"] == "awaiting_owner"
    assert send_sms(sessions, tmp_path) == []

    # The supervisor reopens it and confirms it with the class corrected: released, fined as a motorbike.
    reopen(client, vid, auth)
    r = decide(client, vid, auth, who="sup", vehicle_class="motorcycle")
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["vehicle_class"], v["vehicle_class_corrected"], v["vehicle_class_detected"]) == (
        "motorcycle",
        "motorcycle",
        "car",
    )
    released = notice_of(client, vid, auth)
    assert (released["id"], released["status"], released["hold_reason"]) == (held["id"], "created", None)
    assert (released["legal_reference"], released["fine_min_vnd"], released["fine_max_vnd"]) == (
        MOTORBIKE_CITATION,
        4_000_000,
        6_000_000,
    )
    (sent,) = send_sms(sessions, tmp_path)
    assert sent["to"] == "+84976543210" and released["lookup_code"] in sent["text"]
    confirmed = penalty_payloads(sessions, vid)[-1]["violation"]
    assert confirmed["vehicle_class"] == "motorcycle"
    text = pdf_text(client, vid, auth, tmp_path)
    assert MOTORBIKE_CITATION in text and "từ 4.000.000 đồng đến 6.000.000 đồng" in text
    assert CAR_CITATION not in text and "18.000.000" not in text

    # Audited like a plate correction; the evidence check allows the audited correction.
    with sessions() as s:
        entries = s.scalars(
            select(AuditEntry).where(
                AuditEntry.object_type == "violation", AuditEntry.action == "violation.confirm"
            )
        ).all()
        details = [json.loads(e.detail) for e in entries if e.object_id == str(vid)]
    assert [(d["vehicle_class_read"], d["vehicle_class_corrected"]) for d in details] == [
        ("car", None),
        ("car", "motorcycle"),
    ]
    extras = client.get(f"/web/api/violations/{vid}/evidence", headers=auth("sup"))
    assert extras.status_code == 200, extras.text
    assert extras.json()["check"]["ok"] is True, extras.json()["check"]


def test_a_class_corrected_at_the_first_decision_sends_the_motorbike_notice(
    client: TestClient, world: World, auth: Auth, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    vid = ingest(client, world, MOTORBIKE_PLATE)
    r = decide(client, vid, auth, vehicle_class="motorcycle")
    assert r.status_code == 200, r.text
    notice = notice_of(client, vid, auth)
    assert (notice["status"], notice["hold_reason"], [m["status"] for m in notice["sms"]]) == (
        "created",
        None,
        ["pending"],
    )
    assert (notice["legal_reference"], notice["fine_min_vnd"], notice["fine_max_vnd"]) == (
        MOTORBIKE_CITATION,
        4_000_000,
        6_000_000,
    )
    (sent,) = send_sms(sessions, tmp_path)
    assert sent["to"] == "+84976543210" and notice["lookup_code"] in sent["text"]
    assert penalty_payloads(sessions, vid)[-1]["violation"]["vehicle_class"] == "motorcycle"

    # Reopened: the detector's class is back (the correction belonged to the decision undone).
    reopen(client, vid, auth)
    v = client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()
    assert (v["vehicle_class"], v["vehicle_class_corrected"]) == ("car", None)


def test_a_matching_class_is_unchanged(
    client: TestClient, world: World, auth: Auth, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    car = ingest(client, world, "30A12345")
    motorbike = ingest(
        client, world, MOTORBIKE_PLATE, seed=2, vehicle_class="motorcycle", legal_reference=MOTORBIKE_CITATION
    )
    for vid in (car, motorbike):
        r = decide(client, vid, auth)
        assert r.status_code == 200, r.text
        assert r.json()["vehicle_class_corrected"] is None
    car_notice, motorbike_notice = notice_of(client, car, auth), notice_of(client, motorbike, auth)
    assert [(n["status"], n["hold_reason"]) for n in (car_notice, motorbike_notice)] == [
        ("created", None),
        ("created", None),
    ]
    assert (car_notice["legal_reference"], car_notice["fine_min_vnd"]) == (CAR_CITATION, 18_000_000)
    assert (motorbike_notice["legal_reference"], motorbike_notice["fine_min_vnd"]) == (
        MOTORBIKE_CITATION,
        4_000_000,
    )
    assert len(send_sms(sessions, tmp_path)) == 2
    # A class within the same regime (a truck for a car) is a correction, never a hold.
    truck = ingest(client, world, "30A12345", seed=3)
    r = decide(client, truck, auth, vehicle_class="truck")
    assert r.status_code == 200, r.text
    assert notice_of(client, truck, auth)["status"] == "created"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"vehicle_class": "tank"}, 422),
        ({"vehicle_class": "person"}, 422),
        ({"decision": "reject", "reason": "other", "note": "x", "vehicle_class": "car"}, 422),
    ],
)
def test_the_decision_takes_only_a_known_class_and_only_to_confirm(
    client: TestClient, world: World, auth: Auth, body: dict[str, Any], status: int
) -> None:
    vid = ingest(client, world, "30A12345")
    assert decide(client, vid, auth, **body).status_code == status
    assert client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()["status"] == "new"


def test_a_class_the_catalogue_cannot_fine_for_this_offence_is_refused(
    client: TestClient, world: World, auth: Auth
) -> None:
    """Speeding by a bicycle is no offence of the catalogue: the reviewer rejects instead."""
    vid = ingest(
        client,
        world,
        "30A12345",
        rule="speeding",
        legal_reference="Điểm a khoản 6 Điều 6 Nghị định 168/2024/NĐ-CP",
        details={"speed_kmh": 75.0, "limit_kmh": 50.0},
    )
    r = decide(client, vid, auth, vehicle_class="bicycle")
    assert r.status_code == 422, r.text
    assert i18n.translate_error(r.json()["detail"], "vi") == (
        "Không có mức phạt của hành vi này cho loại xe đã chọn; hãy loại bỏ vi phạm"
    )
    assert client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()["status"] == "new"


def test_a_speeding_car_corrected_to_a_motorcycle_is_fined_in_the_motorcycle_band_of_its_excess(
    client: TestClient, world: World, auth: Auth
) -> None:
    """25 km/h over: the car's band 'trên 20 đến 35' (Art. 6.6.a) becomes the motorcycle's 'trên 20'."""
    vid = ingest(
        client,
        world,
        "30A11111",  # not registered: the notice waits for its owner, nothing is held
        rule="speeding",
        legal_reference="Điểm a khoản 6 Điều 6 Nghị định 168/2024/NĐ-CP",
        details={"speed_kmh": 75.0, "limit_kmh": 50.0, "excess_kmh": 25.0},
    )
    r = decide(client, vid, auth, vehicle_class="motorcycle")
    assert r.status_code == 200, r.text
    notice = notice_of(client, vid, auth)
    assert (notice["status"], notice["hold_reason"]) == ("awaiting_owner", None)
    assert (notice["legal_reference"], notice["fine_min_vnd"], notice["fine_max_vnd"]) == (
        "Điểm a khoản 8 Điều 7 Nghị định 168/2024/NĐ-CP",
        6_000_000,
        8_000_000,
    )


def test_the_evidence_check_allows_only_the_audited_class_correction(
    client: TestClient, world: World, auth: Auth, sessions: sessionmaker[Session]
) -> None:
    """The class column may differ from the signed one only as the latest audited decision corrected
    it: an edit of the database afterwards (or on a violation nobody decided) is named by the check."""

    def problems(vid: int) -> set[str]:
        r = client.get(f"/web/api/violations/{vid}/evidence", headers=auth("off-a"))
        assert r.status_code == 200, r.text
        return {p.split(":", 1)[0] for p in r.json()["check"]["problems"]}

    def write(vid: int, **values: Any) -> None:
        with sessions() as s:
            s.execute(update(Violation).where(Violation.id == vid).values(**values))
            s.commit()

    vid = ingest(client, world, MOTORBIKE_PLATE)
    assert decide(client, vid, auth, vehicle_class="motorcycle").status_code == 200
    assert problems(vid) == set()
    write(vid, vehicle_class="bicycle", vehicle_class_corrected="bicycle")
    assert problems(vid) == {"vehicle_class_corrected"}
    write(vid, vehicle_class="truck", vehicle_class_corrected="motorcycle")
    assert problems(vid) == {"vehicle_class"}
    other = ingest(client, world, "30A12345", seed=2)
    write(other, vehicle_class="motorcycle")
    assert problems(other) == {"vehicle_class"}
    write(other, vehicle_class_corrected="motorcycle")
    assert problems(other) == {"vehicle_class_corrected"}
