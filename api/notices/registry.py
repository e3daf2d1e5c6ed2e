"""The vehicle registry: plate → owner, from a CSV import or a city's own source (`RegistryAdapter`).

Personal data (name, national id, phone, address) lives only in `owners`; `vehicles` maps the canonical
compact plate (`plates.grammar.parse_vn`, pure Python: no OpenCV) to its owner. Every read of personal
data goes through `read_owner`, which writes an `owner.read` audit entry with who read it and why,
whatever the adapter.

CSV format (UTF-8, header row, comma separated), one vehicle a row:

| column | required | notes |
|---|---|---|
| `plate` | yes | any spacing/separators; must be a valid Vietnamese plate without confusion repairs |
| `owner_name` | yes | |
| `phone` | yes | Vietnamese mobile: `0xxxxxxxxx` or `+84xxxxxxxxx` (stored as `+84…`) |
| `national_id` | no | 9 or 12 digits; an owner with the same id is updated, not duplicated |
| `address`, `colour`, `make` | no | |
| `vehicle_class` | no | car, bus, truck, motorcycle or bicycle |

A bad row is reported (line number, plate as written, reason) and skipped; the good rows are imported.
A plate repeated in the file is a bad row after its first occurrence (which is imported). A national id
is one person: a later row giving it another name or phone than its first row in the file is a bad row,
and so is a row giving an id that the registry already holds under another name (a typo in the id would
otherwise hand that person's vehicles' notices to someone else). The same id with the registry's name
and a new phone is an update.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit
from api.db import utcnow
from api.models import Owner, Vehicle
from plates.grammar import parse_vn

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("plate", "owner_name", "phone")
OPTIONAL_COLUMNS = ("national_id", "address", "vehicle_class", "colour", "make")
VEHICLE_CLASSES = ("car", "bus", "truck", "motorcycle", "bicycle")
# Vietnamese mobile numbers: 0 or +84, then a 3/5/7/8/9 network prefix and 8 more digits.
_PHONE = re.compile(r"^(?:\+?84|0)([35789][0-9]{8})$")  # ASCII digits only (\d takes any script)
_NATIONAL_ID = re.compile(r"^(?:[0-9]{9}|[0-9]{12})$")


class RegistryImportError(ValueError):
    """The CSV as a whole is unusable (no header, missing required columns)."""


def canonical_plate(text: str) -> str | None:
    """The compact canonical plate (`51G12345`) of a typed plate, None when it is not a valid plate
    as written (a reading that needs a confusion repair, `S1G…` for `51G…`, is refused: registry data
    is typed, and a repaired typo could point at someone else's vehicle)."""
    parsed = parse_vn(text)
    if not parsed.valid or parsed.corrections or parsed.compact is None:
        return None
    return parsed.compact


def normalise_phone(text: str) -> str | None:
    """`0912 345 678` / `+84-912345678` → `+84912345678`; None when not a Vietnamese mobile number."""
    digits = re.sub(r"[\s.()-]", "", text)
    m = _PHONE.match(digits)
    return None if m is None else f"+84{m.group(1)}"


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One validated CSV row (`plate`: compact canonical; `plate_text`: as written, for the report)."""

    line: int
    plate: str
    plate_text: str
    owner_name: str
    phone: str
    national_id: str | None = None
    address: str | None = None
    vehicle_class: str | None = None
    colour: str | None = None
    make: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A CSV row that was not imported: its line number (1 = header), the plate as written, why."""

    line: int
    plate: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import did: vehicles created and updated, and every rejected row with its reason."""

    created: int = 0
    updated: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    plates: list[str] = field(default_factory=list)  # compact plates written (for `catch_up(plates=...)`)


def parse_registry_csv(text: str) -> tuple[list[RegistryRow], list[RejectedRow]]:
    """Validate a registry CSV: the good rows, and the rejected ones with reasons (pure, no database).

    Raises:
        RegistryImportError: no header, a required column is missing, or the text is not CSV.
    """
    try:
        return _parse(text)
    except csv.Error as e:
        raise RegistryImportError(f"registry CSV: {e}") from e


def _parse(text: str) -> tuple[list[RegistryRow], list[RejectedRow]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RegistryImportError(f"registry CSV: missing column(s) {', '.join(missing)}")
    good: list[RegistryRow] = []
    bad: list[RejectedRow] = []
    first_line: dict[str, int] = {}
    first_id: dict[str, RegistryRow] = {}
    for raw in reader:
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        plate_text = row.get("plate", "")
        reason, parsed = _validate(row, line)
        if parsed is None:
            bad.append(RejectedRow(line, plate_text, reason))
            continue
        if parsed.plate in first_line:
            first = first_line[parsed.plate]
            bad.append(RejectedRow(line, plate_text, f"duplicate plate (first on line {first})"))
            continue
        holder = first_id.get(parsed.national_id) if parsed.national_id is not None else None
        if holder is not None and (
            _same_name(holder.owner_name) != _same_name(parsed.owner_name) or holder.phone != parsed.phone
        ):
            bad.append(
                RejectedRow(
                    line, plate_text, f"national id given another name or phone on line {holder.line}"
                )
            )
            continue
        first_line[parsed.plate] = line
        if parsed.national_id is not None:
            first_id.setdefault(parsed.national_id, parsed)
        good.append(parsed)
    return good, bad


def _same_name(name: str) -> str:
    """A name as compared for one person: NFC, case and runs of spaces ignored."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


# Column widths of `owners`/`vehicles` (PostgreSQL refuses longer strings).
_MAX_CHARS = {"owner_name": 200, "colour": 32, "make": 64, "address": 2000}


def _validate(row: dict[str, str], line: int) -> tuple[str, RegistryRow | None]:
    if any("\x00" in v for v in row.values()):
        return "NUL character in a field", None
    too_long = [k for k, n in _MAX_CHARS.items() if len(row.get(k, "")) > n]
    if too_long:
        return f"{too_long[0]} longer than {_MAX_CHARS[too_long[0]]} characters", None
    if not row.get("plate"):
        return "missing plate", None
    plate = canonical_plate(row["plate"])
    if plate is None:
        return "unknown plate format", None
    if not row.get("owner_name"):
        return "missing owner name", None
    if not row.get("phone"):
        return "missing phone", None
    phone = normalise_phone(row["phone"])
    if phone is None:
        return "invalid phone (not a Vietnamese mobile number)", None
    national_id = row.get("national_id") or None
    if national_id is not None and not _NATIONAL_ID.match(national_id):
        return "invalid national id (9 or 12 digits)", None
    vehicle_class = row.get("vehicle_class") or None
    if vehicle_class is not None and vehicle_class not in VEHICLE_CLASSES:
        return f"unknown vehicle class {vehicle_class!r}", None
    return "", RegistryRow(
        line=line,
        plate=plate,
        plate_text=row["plate"],
        owner_name=row["owner_name"],
        phone=phone,
        national_id=national_id,
        address=row.get("address") or None,
        vehicle_class=vehicle_class,
        colour=row.get("colour") or None,
        make=row.get("make") or None,
    )


def import_rows(
    session: Session, rows: Iterable[RegistryRow], *, actor: str, ip: str | None = None
) -> ImportReport:
    """Create or update the vehicles and owners of validated rows, in the session's transaction.

    A plate already registered gets the row's owner and details (the newest registry data wins); an
    owner with the same national id is reused — unless the registry holds that id under another name:
    the row is then rejected (`ImportReport.rejected`) and nothing of it written. One `registry.import`
    audit entry records the counts (no personal data in the log).
    """
    report = ImportReport()
    now = utcnow()
    for r in rows:
        owner = None
        if r.national_id is not None:
            owner = session.scalars(select(Owner).where(Owner.national_id == r.national_id)).one_or_none()
            if owner is not None and _same_name(owner.full_name) != _same_name(r.owner_name):
                report.rejected.append(
                    RejectedRow(r.line, r.plate_text, "national id registered under another name")
                )
                continue
        vehicle = session.scalars(select(Vehicle).where(Vehicle.plate_compact == r.plate)).one_or_none()
        if owner is None and vehicle is not None and vehicle.owner_id is not None and r.national_id is None:
            current = session.get(Owner, vehicle.owner_id)
            if current is not None and current.national_id is None:
                owner = current  # the same unidentified owner record, updated in place
        if owner is None:
            owner = Owner(full_name=r.owner_name, national_id=r.national_id)
            session.add(owner)
        owner.full_name = r.owner_name
        owner.phone = r.phone
        owner.address = r.address
        owner.updated_at = now
        session.flush()
        if vehicle is None:
            vehicle = Vehicle(plate_compact=r.plate)
            session.add(vehicle)
            report.created += 1
        else:
            report.updated += 1
        vehicle.owner_id = owner.id
        report.plates.append(r.plate)
        vehicle.vehicle_class = r.vehicle_class
        vehicle.colour = r.colour
        vehicle.make = r.make
        vehicle.updated_at = now
    session.flush()
    return report


def import_csv(session: Session, text: str, *, actor: str, ip: str | None = None) -> ImportReport:
    """Validate and import a registry CSV (see the module docstring); the caller commits.

    Raises:
        RegistryImportError: no header or a required column is missing.
    """
    good, bad = parse_registry_csv(text)
    report = import_rows(session, good, actor=actor, ip=ip)
    report.rejected = sorted([*bad, *report.rejected], key=lambda b: b.line)
    audit.record(
        session,
        actor=actor,
        action="registry.import",
        object_type="registry",
        detail={
            "created": report.created,
            "updated": report.updated,
            "rejected": [{"line": b.line, "reason": b.reason} for b in report.rejected],
        },
        ip=ip,
    )
    log.info(
        "registry import: %d created, %d updated, %d rejected",
        report.created,
        report.updated,
        len(report.rejected),
    )
    return report


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """The registry's answer for one plate (personal data: handle through `read_owner` only)."""

    plate: str
    owner_id: int | None
    full_name: str | None
    phone: str | None
    address: str | None
    vehicle_class: str | None
    colour: str | None


class RegistryAdapter(Protocol):
    """Where owners come from: this database (CSV-imported) or a city's own registry service."""

    def lookup(self, plate: str) -> OwnerRecord | None:
        """The owner record of a compact canonical plate, None when the plate is not registered."""
        ...


class DbRegistry:
    """`RegistryAdapter` over the `vehicles`/`owners` tables of this database (filled by `import_csv`)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def lookup(self, plate: str) -> OwnerRecord | None:
        """The vehicle and its owner (if any) for a compact plate; None when not registered."""
        vehicle = self._session.scalars(select(Vehicle).where(Vehicle.plate_compact == plate)).one_or_none()
        if vehicle is None:
            return None
        owner = self._session.get(Owner, vehicle.owner_id) if vehicle.owner_id is not None else None
        return OwnerRecord(
            plate=plate,
            owner_id=None if owner is None else owner.id,
            full_name=None if owner is None else owner.full_name,
            phone=None if owner is None else owner.phone,
            address=None if owner is None else owner.address,
            vehicle_class=vehicle.vehicle_class,
            colour=vehicle.colour,
        )


def read_owner(
    session: Session,
    adapter: RegistryAdapter,
    plate: str,
    *,
    actor: str,
    purpose: str,
    ip: str | None = None,
) -> OwnerRecord | None:
    """Look a plate up in the registry and write an `owner.read` audit entry (found or not).

    Args:
        plate: compact canonical plate.
        actor: "user:<name>" or "system:<job>".
        purpose: why it was read ("notice", "staff view"): kept in the audit entry.
    """
    record = adapter.lookup(plate)
    audit.record(
        session,
        actor=actor,
        action="owner.read",
        object_type="vehicle",
        object_id=plate,
        detail={"purpose": purpose, "found": record is not None and record.owner_id is not None},
        ip=ip,
    )
    return record
