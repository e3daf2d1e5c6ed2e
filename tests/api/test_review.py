"""The review list (filters, plate search, keyset pages, district scoping) and decisions / reopening."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.models import AuditEntry, Violation
from api.pagination import Cursor
from tests.api.conftest import Db, World
from tests.api.evidence import ingest
from tests.api.factories import T0, add_violations, minutes, violation_row

Auth = Callable[[str], dict[str, str]]

# name → row; the table below refers to rows by name.
DATASET: dict[str, dict[str, Any]] = {
    "a1": violation_row(occurred_at=T0 + minutes(10), plate="30A12345"),
    "a2": violation_row(occurred_at=T0 + minutes(20), plate="30A12346", status="confirmed"),
    "a3": violation_row(occurred_at=T0 + minutes(30), plate="30A99999", status="rejected", rule="speeding"),
    "a4": violation_row(occurred_at=T0 + minutes(40), plate="29B112345"),
    "a5": violation_row(occurred_at=T0 + minutes(50), plate=None),
    "a6": violation_row(occurred_at=T0 + minutes(60), plate="30A1234"),
    "a7": violation_row(occurred_at=T0 + minutes(70), plate="80A12845", rule="stop_line"),
    "a8": violation_row(occurred_at=T0 + minutes(80), plate="50TĐ82108"),
    "b1": violation_row(occurred_at=T0 + minutes(15), camera="cam-b1", plate="30E12345"),
    "b2": violation_row(occurred_at=T0 + minutes(25), camera="cam-b1", plate="51G12345", status="confirmed"),
    "x1": violation_row(occurred_at=T0 + minutes(35), camera="cam-x", plate="30A12345"),
}
ALL_A = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"]


@pytest.fixture
def dataset(db: Db) -> dict[str, int]:
    rows = {k: dict(v, event_id=f"{k}-{db.kind}") for k, v in DATASET.items()}
    return dict(zip(rows, add_violations(db.url, list(rows.values())), strict=True))


def newest_first(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: DATASET[n]["occurred_at"], reverse=True)


@pytest.mark.parametrize(
    ("user", "params", "expected"),
    [
        ("off-a", {}, ALL_A),
        ("off-b", {}, ["b1", "b2"]),
        ("sup", {}, [*ALL_A, "b1", "b2", "x1"]),
        ("admin", {"district": "hoan-kiem"}, ["b1", "b2"]),
        ("off-a", {"district": "ba-dinh"}, ALL_A),
        ("off-a", {"status": "confirmed"}, ["a2"]),
        ("sup", {"status": "confirmed"}, ["a2", "b2"]),
        ("off-a", {"rule": "speeding"}, ["a3"]),
        ("sup", {"camera": "cam-x"}, ["x1"]),
        ("off-a", {"camera": "cam-b1"}, []),  # another district's camera: nothing, not an error
        ("off-a", {"from": "2026-11-01T07:30:00+07:00", "to": "2026-11-01T07:50:00+07:00"}, ["a3", "a4"]),
        ("off-a", {"from": "2026-11-01T01:10:00Z"}, ["a7", "a8"]),
        ("off-a", {"plate": "30a-123.45"}, ["a1"]),
        ("sup", {"plate": "30A12345"}, ["a1", "x1"]),
        ("off-a", {"plate": "30A*"}, ["a1", "a2", "a3", "a6"]),
        ("off-a", {"plate": "*12345"}, ["a1", "a4"]),
        ("sup", {"plate": "*12345"}, ["a1", "a4", "b1", "b2", "x1"]),
        ("off-a", {"plate": "30A?2345"}, ["a1"]),
        ("off-a", {"plate": "3?A*"}, ["a1", "a2", "a3", "a6"]),
        ("off-a", {"plate": "50tđ82108"}, ["a8"]),
        ("off-a", {"plate": "30A12345", "fuzzy": 1}, ["a1", "a2", "a6"]),
        ("sup", {"plate": "30A12345", "fuzzy": 1}, ["a1", "a2", "a6", "b1", "x1"]),
        ("off-a", {"plate": "30A12345", "fuzzy": 2}, ["a1", "a2", "a6", "a7"]),
        ("off-a", {"plate": "30A12345", "fuzzy": 1, "status": "new"}, ["a1", "a6"]),
    ],
)
def test_list_filters_and_plate_search(
    user: str,
    params: dict[str, Any],
    expected: list[str],
    client: TestClient,
    dataset: dict[str, int],
    auth: Auth,
) -> None:
    r = client.get("/api/v1/violations", params=params, headers=auth(user))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["id"] for i in body["items"]] == [dataset[n] for n in newest_first(expected)]
    assert body["next_cursor"] is None
    assert body["bounded_scan"] == (params.get("fuzzy") == 2)
    if expected:
        first = body["items"][0]
        assert set(first) >= {"plate", "status", "occurred_at", "camera_id", "district_id", "evidence_purged"}


@pytest.mark.parametrize(
    "params",
    [
        {"plate": "30A*"},
        {"plate": "*12345"},
        {"plate": "30A12345", "fuzzy": 1},
        {"plate": "3?A*", "status": "new"},
    ],
)
def test_many_plate_matches_take_the_one_query_path_with_the_same_result(
    params: dict[str, Any],
    client: TestClient,
    dataset: dict[str, int],
    auth: Auth,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.services import review

    narrowed = client.get("/api/v1/violations", params=params, headers=auth("sup")).json()["items"]
    monkeypatch.setattr(review, "NARROW_MAX_IDS", 1)
    direct = client.get("/api/v1/violations", params=params, headers=auth("sup")).json()["items"]
    assert direct == narrowed and len(direct) >= 2


@pytest.mark.parametrize(
    ("user", "params", "status", "detail"),
    [
        ("off-a", {"district": "hoan-kiem"}, 403, "own district"),
        ("off-a", {"plate": "*1"}, 422, "at least 2"),
        ("off-a", {"plate": "30A%"}, 422, "only letters"),
        ("off-a", {"fuzzy": 1}, 422, "fuzzy needs a plate"),
        ("off-a", {"plate": "30A*", "fuzzy": 1}, 422, "cannot contain"),
        ("off-a", {"cursor": "garbage"}, 422, "invalid cursor"),
        ("off-a", {"from": "2026-11-01T00:00:00"}, 422, ""),  # naive time
        ("off-a", {"from": "0001-01-01T00:00:00+05:00"}, 422, ""),
        ("off-a", {"limit": 0}, 422, ""),
        ("off-a", {"limit": 201}, 422, ""),
        ("off-a", {"status": "maybe"}, 422, ""),
        ("off-a", {"camera": "cam\x00"}, 422, ""),
    ],
)
def test_list_refusals(
    user: str, params: dict[str, Any], status: int, detail: str, client: TestClient, auth: Auth
) -> None:
    r = client.get("/api/v1/violations", params=params, headers=auth(user))
    assert r.status_code == status, r.text
    assert detail in json.dumps(r.json()["detail"])


def test_keyset_pages_cover_everything_once_and_do_not_shift(
    db: Db, client: TestClient, auth: Auth, session: Session
) -> None:
    # 23 rows, several sharing a timestamp (the id breaks ties), inserted out of order.
    times = [T0 + minutes(i // 3) for i in range(23)]
    ids = add_violations(
        db.url, [violation_row(occurred_at=t, plate=f"30A{i:05d}") for i, t in enumerate(times)]
    )
    expected = [i for _, i in sorted(zip(times, ids, strict=True), key=lambda p: (p[0], p[1]), reverse=True)]

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/violations", params=params, headers=auth("off-a")).json()
        seen += [i["id"] for i in body["items"]]
        pages += 1
        if pages == 2:
            # A newer violation arriving between pages does not shift the next pages.
            add_violations(db.url, [violation_row(occurred_at=T0 + minutes(999))])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        last = body["items"][-1]
        assert Cursor.decode(cursor).id == last["id"]
    assert seen == expected and pages == 5

    # Each page is audited with the ids it showed.
    lists = session.scalars(select(AuditEntry).where(AuditEntry.action == "violation.list")).all()
    assert len(lists) == 5
    assert [i for a in lists for i in json.loads(a.detail)["ids"]] == expected
    assert all(a.actor == "user:off-a" for a in lists)


def test_fuzzy2_pages_scan_a_bounded_window(
    db: Db, client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.services import review

    monkeypatch.setitem(review.FUZZY2_WINDOW, db.kind, 4)
    plates = ["30A12345", "99Z99999", "99Z99998", "30A12355", "99Z99997", "99Z99996", "30B12355", "99Z9999"]
    ids = add_violations(
        db.url, [violation_row(occurred_at=T0 + minutes(-i), plate=p) for i, p in enumerate(plates)]
    )
    found: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"plate": "30A12345", "fuzzy": 2, "limit": 50}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/violations", params=params, headers=auth("off-a")).json()
        assert body["bounded_scan"] is True
        found += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert found == [ids[0], ids[3], ids[6]]


def test_fuzzy2_search_skips_plates_too_long_to_compare(db: Db, client: TestClient, auth: Auth) -> None:
    """A garbage OCR plate of 256 characters (the model allows them) made PostgreSQL's levenshtein
    fail the whole search with a 500."""
    ids = add_violations(
        db.url,
        [violation_row(occurred_at=T0, plate="3" * 256), violation_row(occurred_at=T0, plate="30A12346")],
    )
    r = client.get("/api/v1/violations", params={"plate": "30A12345", "fuzzy": 2}, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [ids[1]]


# ---------------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------------


def decide(client: TestClient, vid: int, user: str, auth: Auth, **body: Any) -> Any:
    return client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth(user))


def audit_rows(session: Session, vid: int) -> list[tuple[str, str, dict[str, Any]]]:
    session.rollback()
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_type == "violation", AuditEntry.object_id == str(vid))
        .order_by(AuditEntry.seq)
    ).all()
    return [(a.action, a.actor, json.loads(a.detail)) for a in rows]


def test_confirm_then_a_second_decision_is_409(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    vid = ingest(client, world)
    r = decide(client, vid, "off-a", auth, decision="confirm", note="rõ ràng")
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["status"], v["reviewed_by"], v["decision_reason"], v["decision_note"]) == (
        "confirmed",
        world.users["off-a"].id,
        None,
        "rõ ràng",
    )
    assert v["plate"]["key"] == "30A12345" and v["plate"]["corrected"] is None
    assert v["penalty_delivery"] is None  # no webhook configured
    again = decide(client, vid, "sup", auth, decision="reject", reason="duplicate")
    assert again.status_code == 409 and "already confirmed" in again.json()["detail"]
    assert [a[:2] for a in audit_rows(session, vid)] == [
        ("violation.received", "device:dev-a"),
        ("violation.confirm", "user:off-a"),
    ]


def test_evidence_deleted_while_deciding_is_409(
    client: TestClient, world: World, auth: Auth, session: Session, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retention job deletes the evidence between the officer's read and write (PostgreSQL, read
    committed; SQLite serialises the two): the confirmation is refused, not stored without evidence."""
    if db.kind == "sqlite":
        pytest.skip("SQLite takes the write lock before the read: the two cannot interleave")
    from api.db import utcnow
    from api.services import review

    vid = ingest(client, world)
    read = review.visible_violation

    def read_then_purge(*args: Any, **kwargs: Any) -> Any:
        v = read(*args, **kwargs)
        session.execute(update(Violation).where(Violation.id == vid).values(evidence_purged_at=utcnow()))
        session.commit()
        return v

    monkeypatch.setattr(review, "visible_violation", read_then_purge)
    r = decide(client, vid, "off-a", auth, decision="confirm")
    assert r.status_code == 409 and "evidence deleted, meanwhile" in r.json()["detail"], r.text
    session.rollback()
    assert session.get(Violation, vid).status == "new"  # type: ignore[union-attr]


def test_reject_with_reason_and_plate_correction(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    vid = ingest(client, world)
    r = decide(
        client, vid, "off-a", auth, decision="reject", reason="other", note="xe cứu hỏa", plate="30A-999.99"
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["decision_reason"] == "other"
    assert r.json()["plate"]["corrected"] == "30A99999" and r.json()["plate"]["key"] == "30A99999"
    assert r.json()["plate"]["compact"] == "30A12345"  # the device's reading is kept
    found = client.get("/api/v1/violations", params={"plate": "30A99999"}, headers=auth("off-a")).json()
    assert [i["id"] for i in found["items"]] == [vid]
    action, _, detail = audit_rows(session, vid)[-1]
    assert action == "violation.reject"
    assert detail == {
        "reason": "other",
        "note": "xe cứu hỏa",
        "plate_read": "30A12345",
        "plate_corrected": "30A99999",
    }


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"decision": "reject"}, 422, "needs a reason"),
        ({"decision": "reject", "reason": "other"}, 422, "needs a note"),
        ({"decision": "reject", "reason": "other", "note": "   "}, 422, "needs a note"),
        ({"decision": "reject", "reason": "because"}, 422, ""),
        ({"decision": "confirm", "reason": "duplicate"}, 422, "takes no reason"),
        ({"decision": "maybe"}, 422, ""),
        ({"decision": "confirm", "plate": "hello"}, 422, "not a valid Vietnamese plate"),
        ({"decision": "confirm", "plate": "3OA12345"}, 422, "did you mean 30A-123.45"),
        ({"decision": "confirm", "note": "a\x00b"}, 422, ""),
        ({"decision": "confirm", "extra": 1}, 422, ""),
    ],
)
def test_bad_decisions_are_422_and_change_nothing(
    body: dict[str, Any],
    status: int,
    detail: str,
    client: TestClient,
    world: World,
    auth: Auth,
    session: Session,
) -> None:
    vid = ingest(client, world)
    r = client.post(f"/api/v1/violations/{vid}/decision", json=body, headers=auth("off-a"))
    assert r.status_code == status, r.text
    assert detail in json.dumps(r.json()["detail"], ensure_ascii=False)
    assert session.get(Violation, vid).status == "new"  # type: ignore[union-attr]


def test_a_violation_without_a_plate_needs_one_to_be_confirmed(
    client: TestClient, world: World, auth: Auth
) -> None:
    vid = ingest(client, world, plate=None)
    r = decide(client, vid, "off-a", auth, decision="confirm")
    assert r.status_code == 422 and "without a plate" in r.json()["detail"]
    r = decide(client, vid, "off-a", auth, decision="confirm", plate="29-B1 999.99")
    assert r.status_code == 200, r.text
    assert r.json()["plate"]["key"] == "29B199999" and r.json()["plate"]["compact"] is None


def test_officers_decide_only_in_their_district(client: TestClient, world: World, auth: Auth) -> None:
    in_b = ingest(client, world, "cam-b1")
    no_district = ingest(client, world, "cam-x")
    for vid in (in_b, no_district):
        r = decide(client, vid, "off-a", auth, decision="confirm")
        assert r.status_code == 404 and r.json()["detail"] == f"violation {vid} not found"
    assert decide(client, 99999, "admin", auth, decision="confirm").status_code == 404
    assert decide(client, in_b, "off-b", auth, decision="confirm").status_code == 200
    assert decide(client, no_district, "sup", auth, decision="reject", reason="duplicate").status_code == 200


def test_reopen_is_for_supervisors_and_audited(
    client: TestClient, world: World, auth: Auth, session: Session
) -> None:
    vid = ingest(client, world)
    note = {"note": "biển số đọc sai"}
    assert client.post(f"/api/v1/violations/{vid}/reopen", json=note, headers=auth("sup")).status_code == 409
    decide(client, vid, "off-a", auth, decision="reject", reason="plate_unreadable", plate="30A-111.11")
    r = client.post(f"/api/v1/violations/{vid}/reopen", json=note, headers=auth("off-a"))
    assert r.status_code == 403
    r = client.post(f"/api/v1/violations/{vid}/reopen", json={"note": ""}, headers=auth("sup"))
    assert r.status_code == 422
    r = client.post(f"/api/v1/violations/{vid}/reopen", json=note, headers=auth("sup"))
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["status"], v["reviewed_by"], v["decision_reason"]) == ("new", None, None)
    assert v["plate"]["key"] == "30A12345" and v["plate"]["corrected"] is None  # back to the reading
    assert decide(client, vid, "off-a", auth, decision="confirm").status_code == 200
    actions = audit_rows(session, vid)
    assert [a[0] for a in actions] == [
        "violation.received",
        "violation.reject",
        "violation.reopen",
        "violation.confirm",
    ]
    reopen_detail = actions[2][2]
    assert reopen_detail["note"] == "biển số đọc sai" and reopen_detail["previous"]["status"] == "rejected"
    assert reopen_detail["previous"]["plate_corrected"] == "30A11111"
    other = ingest(client, world, "cam-b1")
    decide(client, other, "off-b", auth, decision="confirm")
    assert (
        client.post(f"/api/v1/violations/{other}/reopen", json=note, headers=auth("admin")).status_code == 200
    )


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"limit": "abc"}, "query.limit: Input should be a valid integer, unable to parse string"),
        ({"limit": "abc", "fuzzy": "x"}, "(and 1 more)"),
    ],
)
def test_invalid_query_values_get_a_one_line_detail(
    params: dict[str, Any], detail: str, client: TestClient, auth: Auth
) -> None:
    r = client.get("/api/v1/violations", params=params, headers=auth("off-a"))
    assert r.status_code == 422
    body = r.json()
    assert isinstance(body["detail"], str) and "\n" not in body["detail"] and detail in body["detail"]
