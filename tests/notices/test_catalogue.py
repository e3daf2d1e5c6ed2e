"""Legal catalogue: fines as versioned data; the fine of a violation is the one in force at its time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from api.notices.catalogue import (
    DEFAULT_PATH,
    CatalogueError,
    default_catalogue,
    parse_catalogue,
)
from violations import legal

_RED_CAR_2024 = {
    "offence": "red_light/car",
    "rules": ["red_light"],
    "regime": "car",
    "article": 6,
    "clause": 9,
    "point": "b",
    "summary": "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông",
    "fine_min_vnd": 18_000_000,
    "fine_max_vnd": 20_000_000,
    "licence_points": 4,
    "effective_from": "2025-01-01",
}
# A HYPOTHETICAL amendment (numbers invented for the test, not Decree 238/2026's text) from 2026-08-15.
_RED_CAR_AMENDED = {
    **_RED_CAR_2024,
    "clause": 10,
    "point": "a",
    "fine_min_vnd": 20_000_000,
    "fine_max_vnd": 22_000_000,
    "effective_from": "2026-08-15",
    "decree": "238/2026/NĐ-CP",
}


def _amended() -> dict[str, Any]:
    return {
        "decree": "168/2024/NĐ-CP",
        "entries": [{**_RED_CAR_2024, "effective_to": "2026-08-15"}, _RED_CAR_AMENDED],
    }


@pytest.mark.parametrize(
    ("occurred_at", "fine_min", "citation"),
    [
        (
            datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
            18_000_000,
            "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP",
        ),
        (
            datetime(2026, 8, 14, 16, 59, tzinfo=UTC),
            18_000_000,
            "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP",
        ),
        # 17:00 UTC on the 14th is 00:00 on 15 August in Vietnam: the amendment is in force.
        (
            datetime(2026, 8, 14, 17, 0, tzinfo=UTC),
            20_000_000,
            "Điểm a khoản 10 Điều 6 Nghị định 238/2026/NĐ-CP",
        ),
        (
            datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
            20_000_000,
            "Điểm a khoản 10 Điều 6 Nghị định 238/2026/NĐ-CP",
        ),
    ],
)
def test_the_fine_is_the_one_in_force_at_the_violation_time(
    occurred_at: datetime, fine_min: int, citation: str
) -> None:
    cat = parse_catalogue(_amended())
    entry = cat.entry_for("red_light", "bus", occurred_at, "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP")
    assert entry is not None
    assert entry.fine_min_vnd == fine_min
    assert entry.citation(cat.decree) == citation


def test_before_the_decree_there_is_no_fine() -> None:
    cat = parse_catalogue(_amended())
    assert cat.entry_for("red_light", "car", datetime(2024, 12, 31, 16, 0, tzinfo=UTC)) is None
    assert cat.entry_for("red_light", "person", datetime(2026, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match="timezone"):
        cat.entry_for("red_light", "car", datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"effective_to": None}, "overlap"),
        ({"effective_to": "2026-09-01"}, "overlap"),
        ({"fine_max_vnd": 1}, "fine_max_vnd < fine_min_vnd"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_catalogues_are_refused(change: dict[str, Any], message: str) -> None:
    data = _amended()
    data["entries"][0] = {**data["entries"][0], **change}
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(data)


def test_shipped_catalogue_agrees_with_the_rules_legal_references() -> None:
    cat = default_catalogue()
    assert cat.decree == "168/2024/NĐ-CP"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for rule in ("red_light", "stop_line", "wrong_way", "wrong_lane", "sidewalk"):
        for cls in ("car", "motorcycle", "bicycle"):
            ref = legal.reference(rule, cls)  # type: ignore[arg-type]
            assert ref is not None
            entry = cat.entry_for(rule, cls, at, ref.citation)
            assert entry is not None, (rule, cls)
            assert (entry.fine_min_vnd, entry.fine_max_vnd, entry.licence_points) == (
                ref.fine_min_vnd,
                ref.fine_max_vnd,
                ref.licence_points,
            )
            assert entry.citation(cat.decree) == ref.citation


@pytest.mark.parametrize(("excess", "fine_min"), [(7.0, 800_000), (15.0, 4_000_000), (40.0, 12_000_000)])
def test_a_rule_with_several_points_is_resolved_by_the_stored_citation(excess: float, fine_min: int) -> None:
    ref = legal.speeding_reference("car", excess)
    assert ref is not None
    entry = default_catalogue().entry_for("speeding", "car", datetime(2026, 1, 1, tzinfo=UTC), ref.citation)
    assert entry is not None and entry.fine_min_vnd == fine_min


def test_shipped_file_is_plain_yaml_with_dates() -> None:
    raw = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert all(str(e["effective_from"]) == "2025-01-01" for e in raw["entries"])


_STOP_KINDS = ("no_stopping", "no_parking", "junction", "crosswalk")
_CLASSES = ("car", "bus", "truck", "motorcycle", "bicycle")


@pytest.mark.parametrize("vehicle_class", _CLASSES)
@pytest.mark.parametrize("kind", _STOP_KINDS)
def test_every_stop_zone_kind_has_its_fine_even_when_kinds_share_a_point(
    kind: str, vehicle_class: str
) -> None:
    # Every motorcycle zone is Art. 7.2.e, every bicycle zone Art. 9.1.c, car no-stopping and crosswalk
    # Art. 6.2.đ: the citation alone cannot tell those offences apart, but they carry one sanction.
    ref = legal.stop_reference(kind, vehicle_class)  # type: ignore[arg-type]
    assert ref is not None
    at = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
    entry = default_catalogue().entry_for("illegal_stop", vehicle_class, at, ref.citation)
    assert entry is not None, (kind, vehicle_class)
    assert (entry.fine_min_vnd, entry.fine_max_vnd, entry.licence_points) == (
        ref.fine_min_vnd,
        ref.fine_max_vnd,
        ref.licence_points,
    )
    assert entry.citation(default_catalogue().decree) == ref.citation
    # Deterministic: the same answer every time, whatever the order of the data.
    assert default_catalogue().entry_for("illegal_stop", vehicle_class, at, ref.citation) == entry


def test_offences_that_share_a_point_but_not_a_fine_give_no_entry() -> None:
    base = {**_RED_CAR_2024, "rules": ["illegal_stop"], "offence": "illegal_stop.a/car"}
    other = {**base, "offence": "illegal_stop.b/car", "summary": "khác"}
    citation = "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    same = parse_catalogue({"decree": "168/2024/NĐ-CP", "entries": [other, base]})
    entry = same.entry_for("illegal_stop", "car", at, citation)
    assert entry is not None and entry.offence == "illegal_stop.a/car"
    # The notice names every behaviour of the shared point, not one the violation may not be.
    assert entry.summary == f"{base['summary']}; khác"
    differ = parse_catalogue(
        {"decree": "168/2024/NĐ-CP", "entries": [base, {**other, "fine_max_vnd": 25_000_000}]}
    )
    assert differ.entry_for("illegal_stop", "car", at, citation) is None
