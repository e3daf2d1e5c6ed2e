"""One legal basis on every channel: the owner's notice (API and PDF), the public lookup, the penalty
webhook (to a real receiver on loopback) and the CSV export all state the catalogue's citation for the
violation's rule, vehicle class and time — not the citation the device wrote, which ingest keeps as
signed but flags (`violation.citation_mismatch`)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import AuditEntry
from api.webhook import deliver_pending
from tests.api.conftest import World
from tests.api.evidence import register_owner
from tests.api.test_webhook import (  # noqa: F401  (the receiver and the server hooked to it)
    Hook,
    Receiver,
    bodies,
    confirm_one,
    hook,
    receiver,
)

pytest.importorskip("fpdf", reason="fpdf2 not installed (pip install fpdf2)")
if shutil.which("pdftotext") is None:
    pytest.skip("poppler-utils (pdftotext) not installed", allow_module_level=True)

Auth = Callable[[str], dict[str, str]]
CAR_RED = "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"  # what tests.api.evidence packages cite
MOTO_RED = "Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"


def flags(session: Session) -> list[tuple[str | None, dict[str, str]]]:
    session.rollback()
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "violation.citation_mismatch").order_by(AuditEntry.seq)
    )
    return [(a.object_id, json.loads(a.detail)) for a in rows]


def channels(on: Hook, got: Receiver, auth: Auth, vid: int, tmp_path: Path) -> dict[str, str]:
    """The citation each channel states for violation `vid` (confirmed, its plate's owner registered):
    the server `on`, its penalty webhook received by `got`."""
    client = on.client
    deliver_pending(on.settings)
    (confirmation,) = [b for b in bodies(got) if b["violation"]["id"] == vid]
    notice = client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    found = client.get("/api/v1/lookup", params={"plate": "30A-123.45", "code": notice["lookup_code"]})
    assert found.status_code == 200, found.text
    export = client.get("/api/v1/exports/confirmed.csv", headers=auth("sup"))
    assert export.status_code == 200, export.text
    (row,) = [
        r
        for r in csv.DictReader(io.StringIO(export.content.decode("utf-8-sig")))
        if r["violation_id"] == str(vid)
    ]
    out = {
        "notice": notice["legal_reference"],
        "lookup": found.json()["legal_reference"],
        "webhook": confirmation["violation"]["legal_reference"],
        "export": row["legal_reference"],
    }
    r = client.get(f"/api/v1/violations/{vid}/notice.pdf", headers=auth("sup"))
    assert r.status_code == 200, r.text
    (tmp_path / "notice.pdf").write_bytes(r.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "notice.pdf"), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    (line,) = [x for x in text.splitlines() if "Căn cứ pháp lý:" in x]
    out["pdf"] = line.split("Căn cứ pháp lý:", 1)[1].strip()
    return out


def test_a_motorbike_cited_with_the_cars_point_gets_the_motorbike_point_everywhere(
    receiver: Receiver,  # noqa: F811
    hook: Hook,  # noqa: F811
    world: World,
    auth: Auth,
    session: Session,
    tmp_path: Path,
) -> None:
    """The reviewer's case: a motorbike through a red light, uploaded with the car's point (Art. 6.9.b,
    18-20 million đồng) instead of the motorbike's (Art. 7.7.c, 4-6 million)."""
    register_owner(hook.client, auth)
    vid = confirm_one(hook.client, world, auth, overrides={"vehicle_class": "motorcycle"})
    stated = channels(hook, receiver, auth, vid, tmp_path)
    assert set(stated.values()) == {MOTO_RED}, stated
    notice = hook.client.get(f"/api/v1/violations/{vid}/notice", headers=auth("sup")).json()
    assert (notice["fine_min_vnd"], notice["fine_max_vnd"]) == (4_000_000, 6_000_000)

    # Stored as signed (the evidence check compares it with the manifest), and flagged.
    staff = hook.client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()
    assert (staff["legal_reference_signed"], staff["legal_reference"], staff["citation_mismatch"]) == (
        CAR_RED,
        MOTO_RED,
        True,
    )
    assert flags(session) == [
        (
            str(vid),
            {
                "problem": f"'{CAR_RED}' is not the catalogue's citation of red_light by a motorcycle "
                f"({MOTO_RED})",
                "device": CAR_RED,
                "stated": MOTO_RED,
            },
        )
    ]


def test_a_device_citing_the_catalogues_point_is_not_flagged(
    receiver: Receiver,  # noqa: F811
    hook: Hook,  # noqa: F811
    world: World,
    auth: Auth,
    session: Session,
    tmp_path: Path,
) -> None:
    register_owner(hook.client, auth)
    car = confirm_one(hook.client, world, auth)
    moto = confirm_one(
        hook.client,
        world,
        auth,
        plate="29X123456",
        overrides={"vehicle_class": "motorcycle", "legal_reference": MOTO_RED},
    )
    assert flags(session) == []
    assert set(channels(hook, receiver, auth, car, tmp_path).values()) == {CAR_RED}
    notice = hook.client.get(f"/api/v1/violations/{moto}/notice", headers=auth("sup")).json()
    assert notice["legal_reference"] == MOTO_RED
