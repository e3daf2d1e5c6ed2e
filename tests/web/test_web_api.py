"""The web app's server side through HTTP (TestClient, SQLite and PostgreSQL): pages and their security
headers, web settings, the public lookup, the evidence check, the plate check, the district list, and
the label table."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.db import make_engine, make_sessionmaker
from api.errors import SettingsError
from api.models import STATUSES, AuditEntry, Notice, Owner, Vehicle, Violation
from api.schemas import DECISION_REASONS
from api.web import i18n
from api.web.lookup import lookup_code_hash, normalise_code
from api.web.pages import STATIC_DIR, TEMPLATES_DIR
from api.web.settings import load_web_settings, tile_origin
from plates.grammar.vn import parse_vn
from tests.api.conftest import Db, World, stored_blobs
from tests.api.evidence import build_package, post_package
from violations.types import RuleId

Auth = Callable[[str], dict[str, str]]
PAGES = ("/login", "/map", "/review", "/stats", "/lookup")


# ---------------------------------------------------------------------------------------------------
# Pages, static files, settings
# ---------------------------------------------------------------------------------------------------


def test_pages_are_served_in_vietnamese_with_a_strict_csp(client: TestClient) -> None:
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
        assert "img-src 'self' data: blob:;" in csp  # no tile server configured: nothing else
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
        assert '<html lang="vi">' in r.text
        assert "<script>" not in r.text  # no inline script (the CSP would refuse it)
    assert client.get("/", follow_redirects=False).headers["location"] == "/map"
    client.cookies.set("pn_lang", "en")
    english = client.get("/map")
    assert '<html lang="en">' in english.text and "Violation map" in english.text
    client.cookies.set("pn_lang", "fr")
    assert "Bản đồ vi phạm" in client.get("/map").text


def test_every_referenced_asset_is_served_by_the_app(client: TestClient) -> None:
    referenced: set[str] = set()
    for path in PAGES:
        html = client.get(path).text
        referenced |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), path
    assert {"/static/vendor/leaflet/leaflet.js", "/static/vendor/chart.js/chart.umd.min.js"} <= referenced
    for url in referenced:
        assert client.get(url).status_code == 200, url
    # ES modules import each other by relative path; the CSS points at images of the app.
    for js in (STATIC_DIR / "js").glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', js.read_text(encoding="utf-8")):
            assert client.get(f"/static/js/{imported}").status_code == 200
    for css in STATIC_DIR.rglob("*.css"):
        for ref in re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8")):
            ref = ref.strip("'\"")
            assert not ref.startswith(("http:", "https:", "//")), (css, ref)
    assert client.get("/static/../settings.py").status_code == 404


@pytest.mark.parametrize(
    ("url", "origin", "error"),
    [
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org", None),
        ("http://10.1.2.3:8080/osm/{z}/{x}/{y}.png", "http://10.1.2.3:8080", None),
        ("/tiles/{z}/{x}/{y}.png", None, None),
        ("ftp://tiles.example.org/{z}/{x}/{y}.png", None, "http(s) URL"),
        ("//tiles.example.org/{z}/{x}/{y}.png", None, "http(s) URL"),
        ("https://{z}.example.org/{z}/{x}/{y}.png", None, "leading {s}."),
        ("https://user@tiles.example.org/{z}/{x}/{y}.png", None, "leading {s}."),
    ],
)
def test_tile_origin(url: str, origin: str | None, error: str | None) -> None:
    if error:
        with pytest.raises(ValueError, match=re.escape(error)):
            tile_origin(url)
    else:
        assert tile_origin(url) == origin


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"PHATNGUOI_MAP_TILE_URL": "https://tiles.example.org/{z}/{x}/{y}.png"}, None),
        ({"PHATNGUOI_MAP_TILE_URL": ""}, None),
        ({"PHATNGUOI_MAP_TILE_URL": "https://tiles.example.org/tile.png"}, "must contain {z}, {x} and {y}"),
        ({"PHATNGUOI_MAP_TILE_URL": "https://x.org/{z}/{x}/{y}.png; script-src *"}, "may not contain"),
        ({"PHATNGUOI_MAP_TILE_URL": "javascript:alert(1)//{z}{x}{y}"}, "PHATNGUOI_MAP_TILE_URL"),
        ({"PHATNGUOI_LOOKUP_MAX_REQUESTS": "0"}, "PHATNGUOI_LOOKUP_MAX_REQUESTS"),
        ({"PHATNGUOI_MAP_ZOOM": "40"}, "PHATNGUOI_MAP_ZOOM"),
    ],
)
def test_web_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], error: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if error:
        with pytest.raises(SettingsError, match=re.escape(error)):
            load_web_settings()
    else:
        web = load_web_settings()
        assert web.map_tile_url == env.get("PHATNGUOI_MAP_TILE_URL", "")


def test_a_configured_tile_server_is_allowed_by_the_csp_and_given_to_the_map(
    monkeypatch: pytest.MonkeyPatch, make_client: Callable[..., TestClient]
) -> None:
    monkeypatch.setenv("PHATNGUOI_MAP_TILE_URL", "https://{s}.tiles.city.example/{z}/{x}/{y}.png")
    monkeypatch.setenv("PHATNGUOI_MAP_TILE_ATTRIBUTION", "© Sở GTVT")
    r = make_client().get("/map")
    assert "img-src 'self' data: blob: https://*.tiles.city.example;" in r.headers["content-security-policy"]
    assert '"tileUrl": "https://{s}.tiles.city.example/{z}/{x}/{y}.png"' in r.text
    assert "\\u00a9 S\\u1edf GTVT" in r.text  # JSON inside the page, escaped


# ---------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------


def test_the_label_table_covers_rules_statuses_reasons_in_both_languages() -> None:
    assert set(i18n.RULES) == set(get_args(RuleId))
    assert i18n.STATUSES == STATUSES and i18n.REASONS == DECISION_REASONS
    vi, en = i18n.labels("vi"), i18n.labels("en")
    assert vi.keys() == en.keys()
    assert all(vi[k].strip() and en[k].strip() for k in vi)
    for prefix, values in (("rule", i18n.RULES), ("status", i18n.STATUSES), ("reason", i18n.REASONS)):
        assert all(f"{prefix}.{v}" in vi for v in values)


def test_every_label_key_used_by_the_pages_exists() -> None:
    used: set[str] = set()
    for template in TEMPLATES_DIR.glob("*.html"):
        used |= set(
            re.findall(r"""\bt\(\s*["']([a-z0-9_]+\.[a-z0-9_]+)["']""", template.read_text(encoding="utf-8"))
        )
    for js in (STATIC_DIR / "js").glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*"([a-z0-9_]+\.[a-z0-9_]+)\"""", js.read_text(encoding="utf-8")))
    assert len(used) > 100
    assert sorted(used - i18n.labels("vi").keys()) == []


def test_the_reasons_a_plate_is_refused_are_shown_in_vietnamese() -> None:
    """Every reason the plate grammar gives for 20,000 random readings has a Vietnamese text, and the
    API's refusal of a correction is translated with its reason inside."""
    rng = random.Random(7)
    alphabet = "0123456789ABCDEFGHKLMNPRSTUVWXYZĐ-. "
    reasons = set()
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 11)))
        problem = parse_vn(text).problem
        if problem is not None:
            reasons.add(problem)
    assert len(reasons) > 30
    untranslated = sorted(r for r in reasons if i18n.translate_error(r, "vi") == r)
    assert untranslated == []
    message = "plate '30E-456.789' is not a valid Vietnamese plate: expected 4 or 5 digits, got 6"
    assert i18n.translate_error(message, "vi") == (
        "Biển số 30E-456.789 không hợp lệ: phần số cần 4 hoặc 5 chữ số, ở đây có 6"
    )
    assert i18n.translate_error(message, "en") == message
    assert i18n.translate_error("something new", "vi") == "something new"


def test_every_reason_the_registry_import_gives_is_shown_in_vietnamese(
    client: TestClient, auth: Auth
) -> None:
    """A CSV with one row for each way a row can be refused, imported through the API (the last reason
    needs the registry: an id it already holds under another name); the page's table has every reason."""
    first = "plate,owner_name,phone,national_id\n30A-123.45,Nguyễn Văn An,0912345678,001090000001\n"
    r = client.post("/api/v1/registry/import", json={"csv": first}, headers=auth("admin"))
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    bad = (
        "plate,owner_name,phone,national_id,vehicle_class,make\n"
        "30A-222.01,Trần Thị Bình,0912345679,001090000002,car,\n"  # line 2: good
        "30A-222.02,Lê\x00Cường,0912345670,,,\n"
        f"30A-222.03,Lê Văn Cường,0912345670,,,{'x' * 65}\n"
        ",Lê Văn Cường,0912345670,,,\n"
        "ABC-XYZ,Lê Văn Cường,0912345670,,,\n"
        "30A-222.04,,0912345670,,,\n"
        "30A-222.05,Lê Văn Cường,,,,\n"
        "30A-222.06,Lê Văn Cường,12345,,,\n"
        "30A-222.07,Lê Văn Cường,0912345670,12345,,\n"
        "30A-222.08,Lê Văn Cường,0912345670,,tank,\n"
        "30A 22201,Lê Văn Cường,0912345670,,,\n"
        "30A-222.09,Trần Văn Bình,0912345679,001090000002,,\n"
        "30A-222.10,Phạm Văn An,0912345671,001090000001,,\n"
    )
    r = client.post("/api/v1/registry/import", json={"csv": bad}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    reasons = [x["reason"] for x in r.json()["rejected"]]
    assert len(reasons) == len(set(reasons)) == bad.count("\n") - 2  # every row but the header and line 2
    untranslated = [x for x in reasons if i18n.translate_error(x, "vi") == x]
    assert untranslated == []
    assert [i18n.translate_error(x, "vi") for x in reasons[1:2] + reasons[-3:]] == [
        "Cột make dài quá 64 ký tự",
        "Biển số trùng với dòng 2",
        "Số định danh đã có ở dòng 2 với họ tên hoặc số điện thoại khác",
        "Số định danh đã được đăng ký cho người có họ tên khác",
    ]


def test_translator_fills_parameters_and_shows_unknown_keys() -> None:
    t = i18n.Translator("vi")
    assert t("map.count", n=3) == "3 vi phạm trên bản đồ"
    assert t("no.such_key") == "no.such_key"
    assert i18n.pick_lang("en") == "en" and i18n.pick_lang(None) == "vi" and i18n.pick_lang("xx") == "vi"


# ---------------------------------------------------------------------------------------------------
# Public lookup
# ---------------------------------------------------------------------------------------------------

CODE = "AB12-CD34"


def _ingest(client: TestClient, world: World, device: str, camera: str, plate: str | None, seed: int) -> int:
    dev = world.devices[device]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id=camera, seed=seed, plate=plate)
    r = post_package(client, pkg, dev.key)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _notice(db: Db, violation_id: int, code: str, plate: str) -> None:
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine)() as s:
            owner = Owner(full_name="Trần Thị Chủ", national_id="079188000111", phone="0987654321")
            s.add(owner)
            s.flush()
            s.add(Vehicle(plate_compact=plate, owner_id=owner.id))
            # The confirmation made the notice already: give it this owner and a known code.
            notice = s.scalars(select(Notice).where(Notice.violation_id == violation_id)).one_or_none()
            if notice is None:
                notice = Notice(violation_id=violation_id)
                s.add(notice)
            notice.owner_id, notice.lookup_code_hash = owner.id, lookup_code_hash(code)
            s.commit()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("code", "normalised"), [("ab12-cd34", "AB12CD34"), (" AB12 CD34 ", "AB12CD34"), ("A-B-1", "AB1")]
)
def test_normalise_code(code: str, normalised: str) -> None:
    assert normalise_code(code) == normalised


def test_lookup_finds_one_violation_by_plate_and_code(
    client: TestClient, world: World, db: Db, auth: Auth, session: Session
) -> None:
    vid = _ingest(client, world, "dev-a", "cam-a1", "30A12345", 1)
    _ingest(client, world, "dev-a", "cam-a1", "30A12345", 2)  # the same plate again: not shown
    assert client.post(
        f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("sup")
    ).is_success
    assert client.get("/api/v1/lookup", params={"plate": "30A-123.45", "code": CODE}).status_code == 404
    _notice(db, vid, CODE, "30A12345")

    r = client.get("/api/v1/lookup", params={"plate": "30a-123.45", "code": "ab12 cd34"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "plate",
        "occurred_at",
        "place",
        "district",
        "rule",
        "legal_reference",
        "status",
        "notice_status",
        "corrected_from",
        "stills",
    }
    assert (body["plate"], body["place"], body["district"], body["rule"], body["status"]) == (
        "30A-123.45",
        "Giảng Võ - Láng Hạ",
        "Ba Đình",
        "red_light",
        "confirmed",
    )
    assert body["notice_status"] == "awaiting_owner"  # the registry was empty at the confirmation
    assert [s["kind"] for s in body["stills"]] == ["still_before", "still_at", "still_after"]
    assert all(s["data_url"].startswith("data:image/jpeg;base64,/9j/") for s in body["stills"])
    assert "Trần Thị Chủ" not in r.text and "0987654321" not in r.text and "079188000111" not in r.text
    assert r.headers["cache-control"] == "private, no-store"
    for plate, code in (("30A-123.46", CODE), ("30A-123.45", "AB12-CD35")):
        assert client.get("/api/v1/lookup", params={"plate": plate, "code": code}).status_code == 404
    views = session.scalars(select(AuditEntry).where(AuditEntry.action == "lookup.view")).all()
    assert [(a.actor, a.object_id, a.ip) for a in views] == [("public", str(vid), "testclient")]


def test_lookup_is_rate_limited_per_client(
    monkeypatch: pytest.MonkeyPatch, make_client: Callable[..., TestClient]
) -> None:
    monkeypatch.setenv("PHATNGUOI_LOOKUP_MAX_REQUESTS", "3")
    client = make_client()
    codes = [
        client.get("/api/v1/lookup", params={"plate": "30A12345", "code": f"GUESS{i}"}).status_code
        for i in range(5)
    ]
    assert codes == [404, 404, 404, 429, 429]
    r = client.get("/api/v1/lookup", params={"plate": "30A12345", "code": "GUESS9"})
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 300


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"plate": "30A12345"}, 422),
        ({"plate": "30A12345", "code": "ab"}, 422),
        ({"plate": "30A12345", "code": "x" * 65}, 422),
        ({"plate": "30A<script>", "code": "ABCD1234"}, 422),
        ({"plate": "30A12345", "code": "ABCD;1234"}, 422),
        ({"plate": "30A12345", "code": "ABCD1234"}, 404),
    ],
)
def test_lookup_refuses_malformed_input(client: TestClient, params: dict[str, str], status: int) -> None:
    assert client.get("/api/v1/lookup", params=params).status_code == status


# ---------------------------------------------------------------------------------------------------
# Evidence check, plate check, districts
# ---------------------------------------------------------------------------------------------------


def test_evidence_check_passes_then_sees_a_swapped_file_and_an_edited_manifest(
    client: TestClient, world: World, db: Db, auth: Auth, settings: object, tmp_path: Path, session: Session
) -> None:
    vid = _ingest(client, world, "dev-a", "cam-a1", "30A12345", 3)
    r = client.get(f"/web/api/violations/{vid}/evidence", headers=auth("off-a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["check"]["ok"] and body["check"]["signature_ok"] and body["check"]["manifest_ok"]
    assert {f["name"]: f["ok"] for f in body["check"]["files"]} == {
        "still_before.jpg": True,
        "still_at.jpg": True,
        "still_after.jpg": True,
        "plate.jpg": True,
    }
    assert body["plate_alternatives"] == [["30A-123.45", 0.93]]
    assert (body["camera_name"], body["district_name"], body["box_xyxy"]) == (
        "Giảng Võ - Láng Hạ",
        "Ba Đình",
        [10.0, 20.0, 110.0, 90.5],
    )
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "evidence.check")).all() == [
        "evidence.check"
    ]

    # Someone swaps a blob in the store: the check names the file.
    plate_sha = next(
        f["sha256"]
        for f in client.get(f"/api/v1/violations/{vid}", headers=auth("off-a")).json()["files"]
        if f["name"] == "plate.jpg"
    )
    blob = next(p for p in stored_blobs(tmp_path / "evidence") if p.name == plate_sha)
    blob.write_bytes(b"\xff\xd8\xff not the plate")
    check = client.get(f"/web/api/violations/{vid}/evidence", headers=auth("off-a")).json()["check"]
    assert (check["ok"], check["signature_ok"], check["problem"]) == (
        False,
        True,
        "plate.jpg: content changed",
    )

    # Someone edits the stored manifest (the plate the device read): the hash and signature fail.
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine)() as s:
            v = s.get(Violation, vid)
            assert v is not None
            manifest = dict(v.manifest)
            manifest["plate"] = {**manifest["plate"], "text": "30A99999"}
            s.execute(update(Violation).where(Violation.id == vid).values(manifest=manifest))
            s.commit()
    finally:
        engine.dispose()
    check = client.get(f"/web/api/violations/{vid}/evidence", headers=auth("admin")).json()["check"]
    assert (check["ok"], check["manifest_ok"], check["signature_ok"]) == (False, False, False)
    assert check["problem"] == "the stored manifest no longer matches its hash recorded at ingest"


def test_evidence_check_follows_district_scoping(client: TestClient, world: World, auth: Auth) -> None:
    vid = _ingest(client, world, "dev-b", "cam-b1", "51G12345", 4)
    assert client.get(f"/web/api/violations/{vid}/evidence", headers=auth("off-a")).status_code == 404
    assert client.get(f"/web/api/violations/{vid}/evidence", headers=auth("off-b")).status_code == 200
    assert client.get(f"/web/api/violations/{vid}/evidence").status_code == 401
    assert client.get("/web/api/violations/0/evidence", headers=auth("admin")).status_code == 422


@pytest.mark.parametrize(
    ("text", "valid", "formatted", "problem"),
    [
        ("30A-123.45", True, "30A-123.45", None),
        ("30a12345", True, "30A-123.45", None),
        ("59-X1 234.56", True, "59-X1 234.56", None),
        ("3OA12345", False, "30A-123.45", "did you mean 30A-123.45?"),
        ("30E-456.789", False, None, "expected 4 or 5 digits, got 6"),
        ("xyz", False, None, "too short"),
    ],
)
def test_plate_check(
    client: TestClient, auth: Auth, text: str, valid: bool, formatted: str | None, problem: str | None
) -> None:
    r = client.get("/web/api/plate-check", params={"text": text}, headers=auth("off-a"))
    assert r.status_code == 200
    body = r.json()
    assert (body["valid"], body["formatted"]) == (valid, formatted)
    assert (body["problem"] is None) if problem is None else (problem in body["problem"])


def test_districts_list_is_scoped(client: TestClient, auth: Auth) -> None:
    assert client.get("/web/api/districts", headers=auth("off-a")).json() == [
        {"id": "ba-dinh", "name": "Ba Đình"}
    ]
    assert [d["id"] for d in client.get("/web/api/districts", headers=auth("sup")).json()] == [
        "ba-dinh",
        "hoan-kiem",
    ]
    assert client.get("/web/api/districts").status_code == 401
