"""Vehicle registry: CSV validation with a report of rejected rows, import on both databases, personal
data readable only by supervisors/admins with every read audited, no OpenCV on the server path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from api.models import AuditEntry, Owner, Vehicle
from api.notices.registry import (
    DbRegistry,
    RegistryImportError,
    canonical_plate,
    import_csv,
    normalise_phone,
    parse_registry_csv,
    read_owner,
)
from tests.notices.conftest import REGISTRY_CSV

BAD_CSV = (
    "plate,owner_name,phone,vehicle_class\n"
    "51G-123.45,Lê Văn Cường,0901234567,car\n"  # line 2: good
    "ABC-XYZ,Phạm Thị Dung,0901234568,car\n"  # line 3: not a plate
    "30E-111.22,Hoàng Văn Em,,car\n"  # line 4: no phone
    "51G 12345,Vũ Thị Giang,0901234569,car\n"  # line 5: same plate as line 2
    "S1G-999.99,Đỗ Văn Hải,0901234570,car\n"  # line 6: needs a confusion repair (S for 5)
    "43A-555.66,Bùi Thị Khánh,12345,car\n"  # line 7: not a mobile number
    "43A-555.67,Ngô Văn Long,0901234571,tank\n"  # line 8: unknown class
    "29-X1 234.56,Trịnh Thị Mai,0901234572,motorcycle\n"  # line 9: good
)


def test_bad_rows_are_reported_by_line_and_reason_and_good_rows_kept() -> None:
    good, bad = parse_registry_csv(BAD_CSV)
    assert [(r.line, r.plate) for r in good] == [(2, "51G12345"), (9, "29X123456")]
    assert [(b.line, b.plate, b.reason) for b in bad] == [
        (3, "ABC-XYZ", "unknown plate format"),
        (4, "30E-111.22", "missing phone"),
        (5, "51G 12345", "duplicate plate (first on line 2)"),
        (6, "S1G-999.99", "unknown plate format"),
        (7, "43A-555.66", "invalid phone (not a Vietnamese mobile number)"),
        (8, "43A-555.67", "unknown vehicle class 'tank'"),
    ]
    assert good[0].phone == "+84901234567"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30A-123.45", "30A12345"),
        ("29-X1 234.56", "29X123456"),
        ("51g12345", "51G12345"),
        ("S1G-123.45", None),
        ("hello", None),
    ],
)
def test_canonical_plate(text: str, expected: str | None) -> None:
    assert canonical_plate(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0912 345 678", "+84912345678"),
        ("+84-987.654.321", "+84987654321"),
        ("84987654321", "+84987654321"),
        ("0212345678", None),  # a landline prefix
        ("091234567", None),  # one digit short
        ("09\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", None),  # Arabic-Indic digits
        ("", None),
    ],
)
def test_normalise_phone(text: str, expected: str | None) -> None:
    assert normalise_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("plate,phone\n30A12345,0912345678\n", "owner_name"),
        ("", "plate"),
        ("plate,owner_name,phone\n" + "a" * 200_000 + "\n", "field larger than field limit"),
    ],
)
def test_unusable_csv_is_refused(text: str, error: str) -> None:
    with pytest.raises(RegistryImportError, match=error):
        parse_registry_csv(text)


def test_import_creates_then_updates_and_reads_are_audited(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        report = import_csv(s, BAD_CSV, actor="user:admin")
        s.commit()
    assert (report.created, report.updated, len(report.rejected)) == (2, 0, 6)
    with sessions() as s:
        again = import_csv(s, REGISTRY_CSV, actor="user:admin")
        s.commit()
        # 29X123456 existed (imported above), 30A12345 is new.
        assert (again.created, again.updated, again.rejected) == (1, 1, [])
        vehicle = s.scalars(select(Vehicle).where(Vehicle.plate_compact == "29X123456")).one()
        owner = s.get(Owner, vehicle.owner_id)
        assert owner is not None and owner.full_name == "Trần Thị Bình"
        assert vehicle.colour == "đỏ"
        record = read_owner(s, DbRegistry(s), "29X123456", actor="user:sup", purpose="test")
        missing = read_owner(s, DbRegistry(s), "99A99999", actor="user:sup", purpose="test")
        s.commit()
        assert record is not None and record.phone == "+84987654321"
        assert missing is None
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("owner.read", "registry.import")))
        ).all()
        assert [(e.action, e.object_id) for e in entries][-2:] == [
            ("owner.read", "29X123456"),
            ("owner.read", "99A99999"),
        ]
        # The import's audit entry names rejected rows, never personal data.
        imports = [e.detail for e in entries if e.action == "registry.import"]
        assert len(imports) == 2 and "Lê Văn Cường" not in imports[0] and "missing phone" in imports[0]


def test_registry_routes_roles_and_audit(
    client: TestClient, auth: Callable[[str], dict[str, str]], sessions: sessionmaker[Session]
) -> None:
    r = client.post("/api/v1/registry/import", json={"csv": BAD_CSV}, headers=auth("sup"))
    assert r.status_code == 403
    r = client.post("/api/v1/registry/import", json={"csv": BAD_CSV}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2
    assert {x["line"]: x["reason"] for x in body["rejected"]}[4] == "missing phone"
    r = client.post("/api/v1/registry/import", json={"csv": "nothing"}, headers=auth("admin"))
    assert r.status_code == 422

    assert (
        client.get("/api/v1/registry", params={"plate": "51G-123.45"}, headers=auth("off-a")).status_code
        == 403
    )
    r = client.get("/api/v1/registry", params={"plate": "51G-123.45"}, headers=auth("sup"))
    assert r.status_code == 200
    assert r.json()["full_name"] == "Lê Văn Cường" and r.json()["phone"] == "+84901234567"
    with sessions() as s:
        reads = s.scalars(select(AuditEntry).where(AuditEntry.action == "owner.read")).all()
        assert [(e.actor, e.object_id) for e in reads] == [("user:sup", "51G12345")]


def test_registry_and_notices_do_not_load_opencv() -> None:
    code = (
        "import sys; import api.notices.registry, api.notices.workflow, api.notices.sms, api.routes.notices; "
        "print(sorted(m for m in ('cv2', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_national_id_given_to_another_person_later_in_the_file_is_rejected() -> None:
    good, bad = parse_registry_csv(
        "plate,owner_name,phone,national_id\n"
        "30A-123.45,Nguyễn Văn An,0912345678,001090000009\n"  # line 2: first holder of the id
        "30A-123.46,nguyễn  văn an,0912 345 678,001090000009\n"  # line 3: the same person, written loosely
        "29-X1 234.56,Trần Thị Bình,0912345679,001090000009\n"  # line 4: another name
        "30A-123.47,Nguyễn Văn An,0987654321,001090000009\n"  # line 5: another phone
    )
    assert [r.line for r in good] == [2, 3]
    assert [(b.line, b.plate, b.reason) for b in bad] == [
        (4, "29-X1 234.56", "national id given another name or phone on line 2"),
        (5, "30A-123.47", "national id given another name or phone on line 2"),
    ]


def test_a_national_id_registered_under_another_name_is_not_taken_over(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        import_csv(s, REGISTRY_CSV, actor="user:admin")  # 001090000001 is Nguyễn Văn An
        s.commit()
    with sessions() as s:
        report = import_csv(
            s,
            "plate,owner_name,phone,national_id\n"
            "51G-123.45,Lê Văn Cường,0901234567,001090000001\n"  # line 2: another name, same id
            "51G-123.46,Lê Văn Cường,0901234567,001090000002\n",  # line 3: a new person
            actor="user:admin",
        )
        s.commit()
        assert [(b.line, b.plate, b.reason) for b in report.rejected] == [
            (2, "51G-123.45", "national id registered under another name")  # the plate as written
        ]
        assert (report.created, report.updated) == (1, 0)
        # The same person (name written loosely) with a new phone: an update.
        update = import_csv(
            s,
            "plate,owner_name,phone,national_id\n30A-123.46,NGUYỄN VĂN AN,0901234568,001090000001\n",
            actor="user:admin",
        )
        s.commit()
        assert (update.created, update.rejected) == (1, [])
        assert s.scalars(select(Vehicle).where(Vehicle.plate_compact == "51G12345")).one_or_none() is None
        owner = s.scalars(select(Owner).where(Owner.national_id == "001090000001")).one()
        assert (owner.full_name, owner.phone) == ("NGUYỄN VĂN AN", "+84901234568")
        detail = s.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "registry.import").order_by(AuditEntry.seq)
        ).all()[-2]
        assert "national id registered under another name" in detail and "Lê Văn Cường" not in detail
