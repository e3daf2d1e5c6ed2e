"""The legal catalogue: violation types with their legal point and fine range, valid over a date range.

Fines are data, never constants (Decree 238/2026 amends Decree 168/2024 from 2026-08-15): the shipped
catalogue is `api/data/decree_168_2024.yaml` (sources cited there) and an amendment is a new entry
for the same `offence` with a later `effective_from`. `Catalogue.entry_for` answers with the entry in
force at the violation's time, judged on the Vietnam calendar date (UTC+7), since a decree takes
effect at the start of a day in Vietnam.

The catalogue, not the citation a device wrote into its evidence, is what the owner and the penalty
system are told: `Catalogue.basis_for` (`legal_basis` of a violation) is the one look-up behind the
notice, its PDF, the public lookup, the penalty webhook and the CSV export, so the five never disagree.
Ingest checks a device's citation with `Catalogue.citation_problem` and flags one the catalogue does
not have (it stays stored as signed).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.errors import ServerError

log = logging.getLogger(__name__)


class CatalogueError(ServerError, ValueError):
    """The catalogue data is unreadable or invalid."""


VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "decree_168_2024.yaml"

#: Detector class → the regime (article) that sanctions its driver (as in `violations.legal`).
REGIME_OF_CLASS: dict[str, str] = {
    "car": "car",
    "bus": "car",
    "truck": "car",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
}

_CITATION = re.compile(r"Điểm\s+(\S+)\s+khoản\s+(\d+)\s+Điều\s+(\d+)", re.IGNORECASE)


class Entry(BaseModel):
    """One offence of the catalogue over one period (a row of the data file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offence: str = Field(min_length=1, description="Stable id, e.g. 'red_light/car'; shared by versions.")
    rules: tuple[str, ...] = Field(min_length=1, description="Rule ids of the edge rules it sanctions.")
    regime: str = Field(pattern=r"^(car|motorcycle|bicycle)$")
    article: int = Field(ge=1)
    clause: int = Field(ge=1)
    point: str = Field(min_length=1, max_length=2)
    summary: str = Field(min_length=1)
    fine_min_vnd: int = Field(ge=0)
    fine_max_vnd: int = Field(ge=0)
    licence_points: int = Field(ge=0, le=12)
    effective_from: date
    effective_to: date | None = Field(None, description="Exclusive; None while in force.")
    decree: str | None = Field(None, description="Decree of this version when not the file's own.")
    excess_from_kmh: float | None = Field(
        None, ge=0, description="A speeding band: it starts at this excess over the limit, km/h ('từ')."
    )
    excess_over_kmh: float | None = Field(
        None, ge=0, description="A speeding band: it starts above this excess over the limit, km/h ('trên')."
    )

    @model_validator(mode="after")
    def _ranges(self) -> Entry:
        if self.fine_max_vnd < self.fine_min_vnd:
            raise ValueError(f"{self.offence}: fine_max_vnd < fine_min_vnd")
        if self.excess_from_kmh is not None and self.excess_over_kmh is not None:
            raise ValueError(f"{self.offence}: a band has excess_from_kmh or excess_over_kmh, not both")
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError(f"{self.offence}: effective_to must be after effective_from")
        return self

    def in_force(self, day: date) -> bool:
        """Whether this version applies on Vietnam calendar day `day`."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def citation(self, decree: str) -> str:
        """'Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP'."""
        return f"Điểm {self.point} khoản {self.clause} Điều {self.article} Nghị định {self.decree or decree}"

    def band_start(self, excess_kmh: float) -> float | None:
        """Where this speeding band starts when it covers `excess_kmh` (km/h over the limit), else None
        (not a band, or the excess is below it)."""
        if self.excess_from_kmh is not None and excess_kmh >= self.excess_from_kmh:
            return self.excess_from_kmh
        if self.excess_over_kmh is not None and excess_kmh > self.excess_over_kmh:
            return self.excess_over_kmh
        return None


class CatalogueFile(BaseModel):
    """The data file: the decree and its entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decree: str = Field(min_length=1)
    entries: tuple[Entry, ...] = Field(min_length=1)


class Catalogue:
    """Look-ups over a validated catalogue; versions of one offence never overlap in time."""

    def __init__(self, data: CatalogueFile) -> None:
        """Raises:
        CatalogueError: two versions of one offence overlap in time.
        """
        self.decree = data.decree
        self.entries = data.entries
        by_offence: dict[str, list[Entry]] = {}
        for e in data.entries:
            by_offence.setdefault(e.offence, []).append(e)
        for offence, versions in by_offence.items():
            versions.sort(key=lambda e: e.effective_from)
            for a, b in itertools.pairwise(versions):
                if a.effective_to is None or a.effective_to > b.effective_from:
                    raise CatalogueError(
                        f"catalogue: versions of {offence!r} overlap ({a.effective_from}, {b.effective_from})"
                    )
        self._by_offence = by_offence

    def versions(self, offence: str) -> Sequence[Entry]:
        """Every version of `offence`, oldest first (empty when unknown)."""
        return tuple(self._by_offence.get(offence, ()))

    def entry_for(
        self,
        rule: str,
        vehicle_class: str,
        occurred_at: datetime,
        citation: str | None = None,
        excess_kmh: float | None = None,
    ) -> Entry | None:
        """The entry in force at `occurred_at` for a violation of `rule` by `vehicle_class`.

        `citation` (the violation's stored legal reference, "Điểm b khoản 9 Điều 6 …") picks the offence
        when a rule has several (speeding bands, kinds of stopping zone): the offence whose version at
        the edge's time had that point. The answer is then that offence's version in force at
        `occurred_at` — possibly an amended one with another point and range. When the citation leaves
        several offences whose versions in force agree on the point, fine range and licence points
        (stopping-zone kinds that share a point), the one with the smallest offence id is returned, its
        `summary` naming every behaviour of that point. Offences that disagree: None.

        `excess_kmh` (a speeding violation's excess over the limit, from the lower bound of the measured
        speed: the details' `excess_kmh`) picks the band in force at `occurred_at` when the citation
        picks no offence of this vehicle class — it is another class's (the class was corrected on
        review, or the device's table is wrong).

        Raises:
            ValueError: `occurred_at` is naive.
        """
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        day = occurred_at.astimezone(VIETNAM_TZ).date()
        regime = REGIME_OF_CLASS.get(vehicle_class)
        if regime is None:
            return None
        candidates = [e for e in self.entries if rule in e.rules and e.regime == regime]
        offences = sorted({e.offence for e in candidates})
        if len(offences) > 1:
            cited = _cited(candidates, citation) if citation else []
            if cited:
                offences = cited
            elif excess_kmh is not None:
                offences = self._band(offences, day, excess_kmh) or offences
        if not offences:
            return None
        in_force = [next((e for e in self.versions(o) if e.in_force(day)), None) for o in offences]
        if len(in_force) == 1:
            return in_force[0]
        # Several offences left (the citation did not pick one): acceptable only when they are one legal
        # point with one sanction — several stopping-zone kinds share a point (Art. 7.2.e for every
        # motorcycle zone). Then the first offence id answers, so the result does not depend on order.
        if any(e is None for e in in_force):
            return None
        found = [e for e in in_force if e is not None]
        if len({_sanction(e) for e in found}) != 1:
            return None
        found.sort(key=lambda e: e.offence)
        summaries = list(dict.fromkeys(e.summary for e in found))
        # The point covers every one of these behaviours; a notice must not name one the violation
        # may not be (a crosswalk for a no-parking zone), so it names them all, as the decree does.
        return found[0].model_copy(update={"summary": "; ".join(summaries)})

    def _band(self, offences: Sequence[str], day: date, excess_kmh: float) -> list[str]:
        """The speeding band among `offences` (as in force on `day`) that covers `excess_kmh`: the one
        that starts highest; [] when none does."""
        starts: list[tuple[float, str]] = []
        for o in offences:
            e = next((v for v in self.versions(o) if v.in_force(day)), None)
            start = None if e is None else e.band_start(excess_kmh)
            if start is not None:
                starts.append((start, o))
        return [max(starts)[1]] if starts else []

    def basis_for(
        self,
        rule: str,
        vehicle_class: str,
        occurred_at: datetime,
        stored_citation: str,
        excess_kmh: float | None = None,
    ) -> LegalBasis:
        """The legal basis every owner- and penalty-facing channel states for a violation (the notice
        and its PDF, the public lookup, the penalty webhook, the CSV export): the citation of
        `entry_for(rule, vehicle_class, occurred_at, stored_citation, excess_kmh)`, with that entry's
        fine range.
        The device's `stored_citation` is said only when the catalogue has no entry for it (a class it
        does not sanction, a citation that picks no single offence); `LegalBasis.entry` is then None.

        Raises:
            ValueError: `occurred_at` is naive.
        """
        entry = self.entry_for(rule, vehicle_class, occurred_at, stored_citation, excess_kmh)
        return LegalBasis(stored_citation if entry is None else entry.citation(self.decree), entry)

    def citation_problem(self, rule: str, vehicle_class: str, citation: str) -> str | None:
        """Why `citation` (a device's legal reference) is not one the catalogue has for `rule` by
        `vehicle_class`, in any version; None when it is. One line, for the log and the audit log.

        Any version counts, not only the one in force: a device with the table of before an amendment
        cites the point of its time, and `entry_for` maps that point to the version in force.
        """
        regime = REGIME_OF_CLASS.get(vehicle_class)
        known = sorted(
            {e.citation(self.decree) for e in self.entries if rule in e.rules and e.regime == regime}
        )
        if not known:
            return f"the catalogue has no offence of rule {rule} by a {vehicle_class}"
        if citation in known:
            return None
        expected = "; ".join(known)
        return f"{citation!r} is not the catalogue's citation of {rule} by a {vehicle_class} ({expected})"


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """A violation's legal basis as stated to its owner and the penalty system (`Catalogue.basis_for`):
    the citation, and the catalogue entry it comes from (fine range, licence points, the behaviour in
    the decree's words) — None when the catalogue has none and the citation is the device's."""

    citation: str
    entry: Entry | None


class ViolationFacts(Protocol):
    """What `legal_basis` reads of a violation (a `Violation` row, or a row of its columns)."""

    @property
    def rule(self) -> str: ...
    @property
    def vehicle_class(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def legal_reference(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...


def legal_basis(v: ViolationFacts, catalogue: Catalogue | None = None) -> LegalBasis:
    """`Catalogue.basis_for` of violation `v` in `catalogue` (default: the shipped one), with the
    speeding excess of its details."""
    c = catalogue or default_catalogue()
    excess = (v.details or {}).get("excess_kmh")
    if not isinstance(excess, int | float) or isinstance(excess, bool):
        excess = None
    return c.basis_for(v.rule, v.vehicle_class, v.occurred_at, v.legal_reference, excess)


def _cited(candidates: Sequence[Entry], citation: str) -> list[str]:
    """The offences among `candidates` with a version at the point `citation` names (sorted)."""
    m = _CITATION.search(citation)
    if m is None:
        return []
    point, clause, article = m.group(1), int(m.group(2)), int(m.group(3))
    return sorted(
        {e.offence for e in candidates if (e.article, e.clause, e.point) == (article, clause, point)}
    )


def _sanction(e: Entry) -> tuple[int, int, str, int, int, int, str | None]:
    """What a notice says about an offence besides its wording: the point, the fine range, the points."""
    return (e.article, e.clause, e.point, e.fine_min_vnd, e.fine_max_vnd, e.licence_points, e.decree)


def parse_catalogue(raw: Any, source: str = "<data>") -> Catalogue:
    """A catalogue from parsed YAML.

    Raises:
        CatalogueError: the data does not validate (the message names the source and the field).
    """
    try:
        return Catalogue(CatalogueFile.model_validate(raw))
    except ValidationError as e:
        raise CatalogueError(f"{source}: {e}") from e


def load_catalogue(path: Path = DEFAULT_PATH) -> Catalogue:
    """Read and validate a catalogue file.

    Raises:
        CatalogueError: unreadable, not YAML, or invalid.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise CatalogueError(f"{path}: {e}") from e
    return parse_catalogue(raw, str(path))


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The shipped catalogue, read once."""
    return load_catalogue(DEFAULT_PATH)
