"""The legal basis owners and the penalty system are told (`Catalogue.basis_for`, `legal_basis`), and the
check of a device's citation at ingest (`Catalogue.citation_problem`): every citation the edge's own
decree table writes passes; another class's citation is flagged, and the catalogue's is stated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from api.notices.catalogue import default_catalogue, legal_basis, parse_catalogue
from violations import legal

AT = datetime(2026, 11, 23, 5, 16, tzinfo=UTC)
CAR_RED = "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"
MOTO_RED = "Điểm c khoản 7 Điều 7 Nghị định 168/2024/NĐ-CP"
_CLASSES = ("car", "bus", "truck", "motorcycle", "bicycle")


@dataclass
class Facts:
    """A violation's columns as `legal_basis` reads them."""

    rule: str
    vehicle_class: str
    legal_reference: str
    occurred_at: datetime = AT
    details: dict[str, Any] = field(default_factory=dict)


def _edge_citations() -> list[tuple[str, str, str]]:
    """(rule, class, citation) for everything the edge's table (`violations.legal`) can write."""
    out = []
    for cls in _CLASSES:
        for rule in ("red_light", "stop_line", "wrong_way", "wrong_lane", "sidewalk"):
            ref = legal.reference(rule, cls)
            assert ref is not None
            out.append((rule, cls, ref.citation))
        for kind in ("no_stopping", "no_parking", "junction", "crosswalk"):
            ref = legal.stop_reference(kind, cls)
            assert ref is not None
            out.append(("illegal_stop", cls, ref.citation))
        for excess in (5.0, 9.99, 10.0, 20.0, 20.01, 35.0, 35.01, 80.0):
            ref = legal.speeding_reference(cls, excess)
            if ref is not None:  # bicycles: none
                out.append(("speeding", cls, ref.citation))
    return out


@pytest.mark.parametrize(("rule", "vehicle_class", "citation"), _edge_citations())
def test_every_citation_the_edge_writes_passes_the_ingest_check(
    rule: str, vehicle_class: str, citation: str
) -> None:
    cat = default_catalogue()
    assert cat.citation_problem(rule, vehicle_class, citation) is None
    assert legal_basis(Facts(rule, vehicle_class, citation)).citation == citation


@pytest.mark.parametrize(
    ("rule", "vehicle_class", "citation", "problem"),
    [
        (
            "red_light",
            "motorcycle",
            CAR_RED,
            f"'{CAR_RED}' is not the catalogue's citation of red_light by a motorcycle ({MOTO_RED})",
        ),
        (
            "red_light",
            "car",
            "khoản 7 Điều 6",
            f"'khoản 7 Điều 6' is not the catalogue's citation of red_light by a car ({CAR_RED})",
        ),
        ("red_light", "person", CAR_RED, "the catalogue has no offence of rule red_light by a person"),
        ("tailgating", "car", CAR_RED, "the catalogue has no offence of rule tailgating by a car"),
    ],
)
def test_a_citation_the_catalogue_does_not_have_is_named(
    rule: str, vehicle_class: str, citation: str, problem: str
) -> None:
    assert default_catalogue().citation_problem(rule, vehicle_class, citation) == problem


def test_the_catalogues_citation_and_fine_are_stated_not_the_devices() -> None:
    """The reviewer's case: a motorbike through a red light, uploaded with the car's point."""
    basis = legal_basis(Facts("red_light", "motorcycle", CAR_RED))
    assert basis.citation == MOTO_RED
    assert basis.entry is not None
    assert (basis.entry.fine_min_vnd, basis.entry.fine_max_vnd, basis.entry.licence_points) == (
        4_000_000,
        6_000_000,
        4,
    )
    # Nothing in the catalogue for the class: the device's citation is all there is.
    unknown = legal_basis(Facts("red_light", "person", CAR_RED))
    assert (unknown.citation, unknown.entry) == (CAR_RED, None)


@pytest.mark.parametrize(
    ("excess", "expected"),
    [
        (5.0, legal.speeding_reference("motorcycle", 5.0)),
        (9.99, legal.speeding_reference("motorcycle", 9.99)),
        (10.0, legal.speeding_reference("motorcycle", 10.0)),
        (20.0, legal.speeding_reference("motorcycle", 20.0)),
        (20.01, legal.speeding_reference("motorcycle", 20.01)),
        (48.0, legal.speeding_reference("motorcycle", 48.0)),
    ],
)
def test_a_speeding_citation_of_another_class_gives_the_band_of_the_measured_excess(
    excess: float, expected: legal.LegalReference | None
) -> None:
    """A car's speeding point on a violation fined as a motorcycle (class corrected on review): the
    motorcycle band the excess falls in, as the edge's table bands it (`violations.legal`)."""
    assert expected is not None
    car = legal.speeding_reference("car", excess)
    assert car is not None
    basis = legal_basis(Facts("speeding", "motorcycle", car.citation, details={"excess_kmh": excess}))
    assert basis.citation == expected.citation
    assert basis.entry is not None and basis.entry.fine_min_vnd == expected.fine_min_vnd
    # The device's own point still decides when it is one of the class's bands.
    assert legal_basis(Facts("speeding", "car", car.citation, details={"excess_kmh": 3.0})).citation == (
        car.citation
    )


def test_an_amended_band_is_judged_by_the_version_in_force() -> None:
    """Bands are data with dates too: from a (hypothetical) amendment day the band starts elsewhere."""
    band = {
        "rules": ["speeding"],
        "regime": "motorcycle",
        "article": 7,
        "summary": "Chạy quá tốc độ",
        "licence_points": 0,
    }
    data = {
        "decree": "168/2024/NĐ-CP",
        "entries": [
            {
                **band,
                "offence": "s.lo/m",
                "clause": 2,
                "point": "b",
                "fine_min_vnd": 1,
                "fine_max_vnd": 2,
                "effective_from": "2025-01-01",
                "excess_from_kmh": 5,
            },
            {
                **band,
                "offence": "s.hi/m",
                "clause": 4,
                "point": "a",
                "fine_min_vnd": 3,
                "fine_max_vnd": 4,
                "effective_from": "2025-01-01",
                "effective_to": "2026-08-15",
                "excess_from_kmh": 10,
            },
            {
                **band,
                "offence": "s.hi/m",
                "clause": 4,
                "point": "a",
                "fine_min_vnd": 5,
                "fine_max_vnd": 6,
                "effective_from": "2026-08-15",
                "excess_from_kmh": 15,
            },
        ],
    }
    cat = parse_catalogue(data)
    car = "Điểm a khoản 6 Điều 6 Nghị định 168/2024/NĐ-CP"
    before = cat.entry_for("speeding", "motorcycle", datetime(2026, 8, 1, tzinfo=UTC), car, 12.0)
    after = cat.entry_for("speeding", "motorcycle", datetime(2026, 9, 1, tzinfo=UTC), car, 12.0)
    assert before is not None and before.fine_min_vnd == 3
    assert after is not None and after.fine_min_vnd == 1


def test_a_band_has_one_start() -> None:
    from api.notices.catalogue import CatalogueError

    entry = {
        "offence": "s/m",
        "rules": ["speeding"],
        "regime": "motorcycle",
        "article": 7,
        "clause": 2,
        "point": "b",
        "summary": "x",
        "fine_min_vnd": 1,
        "fine_max_vnd": 2,
        "licence_points": 0,
        "effective_from": "2025-01-01",
        "excess_from_kmh": 5,
        "excess_over_kmh": 5,
    }
    with pytest.raises(CatalogueError, match="not both"):
        parse_catalogue({"decree": "168/2024/NĐ-CP", "entries": [entry]})
