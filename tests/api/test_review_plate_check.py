"""The plate a confirmation fines is a plate by this server's grammar, never by the device's word.

A device's manifest says whether its reading is `valid`; the server does not believe it. The staff view
states the server's own verdict (`plate.valid`, `canonical`, `problem`; the device's claim is
`valid_signed`), and a confirmation without a typed plate is refused (422, "type the plate") when the
reading is not a plate exactly as written, or its formatted form is another plate: nothing is fined,
no notice made, nothing exported. A typed valid plate confirms as before (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import Notice, Violation
from api.web import i18n
from tests.api.conftest import World
from tests.api.evidence import ingest

Auth = Callable[[str], dict[str, str]]


def reading(text: str | None, formatted: str | None, *, valid: bool = True) -> dict[str, Any]:
    """A manifest's `plate` section: the device's reading as it chose to sign it."""
    return {
        "text": text,
        "formatted": formatted,
        "valid": valid,
        "confidence": 0.95,
        "lines": 1,
        "colour": "white",
        "raw": text or "",
        "alternatives": [],
    }


def decide(client: TestClient, vid: int, auth: Auth, **body: Any) -> Any:
    return client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a"))


def exported_ids(client: TestClient, auth: Auth) -> set[str]:
    r = client.get("/api/v1/exports/confirmed.csv", headers=auth("sup"))
    assert r.status_code == 200, r.text
    return {line.split(",", 1)[0] for line in r.text.splitlines()[1:]}


# (device reading, why the server refuses it)
BAD_READINGS = [
    pytest.param(reading("30A12", "30A-12"), "too short for a plate: '30A12'", id="short-claimed-valid"),
    pytest.param(reading("30A12", "30A-12", valid=False), "too short for a plate", id="short-honest"),
    pytest.param(
        reading("<img src=x onerror=alert(1)>", "<b>30A-123.45</b>"), "no province code", id="hostile-markup"
    ),
    pytest.param(
        reading("S1G12345", "S1G-123.45"),
        "not a plate as written (the grammar reads 51G-123.45)",
        id="repaired",
    ),
    pytest.param(
        reading("30A12345", "51G-999.99"),
        "it is recorded as another plate, 30A-123.45",
        id="formatted-differs",
    ),
]


@pytest.mark.parametrize(("plate", "problem"), BAD_READINGS)
def test_a_reading_that_is_not_a_plate_is_refused_until_the_plate_is_typed(
    client: TestClient, world: World, auth: Auth, session: Session, plate: dict[str, Any], problem: str
) -> None:
    vid = ingest(client, world, overrides={"plate": plate})
    r = decide(client, vid, auth, decision="confirm")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the plate read by the device (") and detail.endswith("; type the plate")
    assert problem in detail and "\n" not in detail
    # the officer reads it in Vietnamese, every part of it
    vi = i18n.translate_error(detail, "vi")
    assert vi.startswith("Biển số thiết bị đọc được (") and vi.endswith("; hãy nhập biển số"), vi
    assert "plate" not in vi and "grammar" not in vi, vi
    session.rollback()
    assert session.get(Violation, vid).status == "new"  # type: ignore[union-attr]
    assert session.scalar(select(func.count()).select_from(Notice).where(Notice.violation_id == vid)) == 0
    assert str(vid) not in exported_ids(client, auth)
    view = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()["plate"]
    assert (view["valid"], view["valid_signed"], view["canonical"]) == (False, plate["valid"], None)
    assert problem in view["problem"]

    r = decide(client, vid, auth, decision="confirm", plate="30A-567.89")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["plate"]["key"], r.json()["plate"]["corrected"]) == (
        "confirmed",
        "30A56789",
        "30A56789",
    )
    assert r.json()["plate"]["compact"] == plate["text"]  # the device's reading is kept as evidence
    assert str(vid) in exported_ids(client, auth)


def test_typing_the_reading_itself_is_judged_as_typed(client: TestClient, world: World, auth: Auth) -> None:
    """A reading shown in the correction box and sent as typed gets the typed-plate refusal, and the
    officer who types the device's compact plate vouches for it (its formatted form notwithstanding)."""
    short = ingest(client, world, overrides={"plate": reading("30A12", "30A-12")})
    r = decide(client, short, auth, decision="confirm", plate="30A-12")
    assert r.status_code == 422 and "is not a valid Vietnamese plate" in r.json()["detail"], r.text

    odd = ingest(client, world, seed=2, overrides={"plate": reading("30A12345", "51G-999.99")})
    r = decide(client, odd, auth, decision="confirm", plate="30A-123.45")
    assert r.status_code == 200, r.text
    assert (r.json()["plate"]["key"], r.json()["plate"]["corrected"]) == ("30A12345", None)


def test_a_valid_reading_confirms_unchanged(client: TestClient, world: World, auth: Auth) -> None:
    vid = ingest(client, world, plate="29X123456")  # a two-line plate, formatted by the device its own way
    view = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()["plate"]
    assert (view["valid"], view["valid_signed"], view["canonical"], view["problem"]) == (
        True,
        True,
        "29-X1 234.56",
        None,
    )
    r = decide(client, vid, auth, decision="confirm")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["plate"]["key"], r.json()["plate"]["corrected"]) == (
        "confirmed",
        "29X123456",
        None,
    )


def test_the_device_saying_invalid_does_not_make_a_plate_invalid(
    client: TestClient, world: World, auth: Auth
) -> None:
    """The server's grammar decides both ways: a real plate the device marked invalid is a plate."""
    vid = ingest(client, world, overrides={"plate": reading("30A12345", "30A-123.45", valid=False)})
    view = client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()["plate"]
    assert (view["valid"], view["valid_signed"]) == (True, False)
    assert decide(client, vid, auth, decision="confirm").status_code == 200


def test_a_reading_that_is_not_a_plate_can_still_be_rejected(
    client: TestClient, world: World, auth: Auth
) -> None:
    vid = ingest(client, world, overrides={"plate": reading("30A12", "30A-12")})
    r = decide(client, vid, auth, decision="reject", reason="plate_unreadable")
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
