"""Country-independent machinery of the plate grammars: result type, line templates, template matching.

A plate grammar is a list of *layouts*. A layout is one or two *line templates* (top, bottom) plus what
a plate of that layout means (vehicle, series kind, how to format it). A line template is a sequence
of *slots*; each slot is the set of characters allowed at that position, and a slot belongs to a
*role* (province, series, number, ...). Cross-position rules that a per-slot set cannot express
(two-digit province codes, two-letter series) are *pair constraints* on two adjacent slots.

Matching reads a line as a sequence of *positions*, each a list of ``(char, prob)`` alternatives: the
top-k characters of a CTC decoder, or a single ``(char, 1.0)`` for a plain string. A dynamic
programme aligns positions to slots:

- a position fills the next slot with one of its alternatives that the slot allows, possibly through
  a confusion pair of the grammar (``S`` read where a digit is needed is taken as ``5``): that
  counts as a correction and its probability is multiplied by ``confusion_weight``;
- a position may be skipped when it is a separator or junk (``-``, ``.``, space, ``|`` ...), but only
  where the template allows a separator: between groups (province | series | number), at the dot
  of a five-digit number, and before or after the plate. A dash inside ``X1`` is not a plate;
- an alternative ``""`` stands for "no character here" (a possible CTC insertion) and may be skipped
  anywhere.

The best alignment maximises the product of the chosen probabilities; ties go to fewer corrections,
then to the earlier layout. A plain string is the special case where every alternative has
probability 1, so the best parse is the one with the fewest corrections.

Everything here is pure Python on short strings; no numpy.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, Protocol, TypeAlias

logger = logging.getLogger(__name__)

Vehicle: TypeAlias = Literal["car", "motorbike", "unknown"]
#: Alternatives at one position of a line: ``(char, prob)`` pairs, any order.
Alternatives: TypeAlias = Sequence[tuple[str, float]]
#: One line of a lattice: its positions.
LineLattice: TypeAlias = Sequence[Alternatives]
#: What a reading function says a raw character can stand for: ``(output char, is a correction)``.
Readings: TypeAlias = tuple[tuple[str, bool], ...]

DIGITS = frozenset("0123456789")
#: Separators the grammar understands as "between groups"; any other non-alphanumeric is junk,
#: treated the same way (skippable only at a group boundary or at the ends).
SEPARATOR_CHARS = frozenset("-.·•‧:,_/ \t")
#: Default factor on the probability of a character used through a confusion pair.
DEFAULT_CONFUSION_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class PlateText:
    """A plate reading judged by a grammar.

    Attributes:
        raw: the OCR text as given, lines joined with ``"\\n"``.
        valid: the reading fits a layout of the grammar.
        compact: canonical key, upper case, no separators, top line then bottom line
            (``59X123456``, ``51G12345``); None when invalid.
        formatted: display form (``59-X1 234.56``, ``51G-123.45``); None when invalid.
        lines: rows of the layout matched (a two-line plate typed on one line still counts 2); when
            invalid, the number of non-empty text lines given.
        vehicle: what the layout says about the vehicle; ``"unknown"`` when the series is used on both
            cars and motorbikes, or when invalid.
        series_kind: grammar-specific class of the series (Vietnam: ``civilian``, ``50cc``,
            ``special``, ``foreign``); ``"unknown"`` when invalid.
        corrections: characters changed through a confusion pair to satisfy the grammar (over a
            lattice: characters taken through a confusion pair; choosing a lower-ranked
            alternative is not a correction).
        problem: why the reading is invalid, one short English phrase; None when valid.
        province: the province / registration-office code (Vietnam), else None.
        series: the series (``X1``, ``G``, ``LD``, ``NG``), else None.
        top_length: how many characters of `compact` are on the top line (all of them on a one-line
            plate); None when invalid.
    """

    raw: str
    valid: bool
    compact: str | None
    formatted: str | None
    lines: int
    vehicle: Vehicle
    series_kind: str
    corrections: int
    problem: str | None
    province: str | None = None
    series: str | None = None
    top_length: int | None = None


def invalid(raw: str, lines: int, problem: str) -> PlateText:
    """An invalid `PlateText` carrying the raw reading and why it failed."""
    return PlateText(raw, False, None, None, lines, "unknown", "unknown", 0, problem)


# ----------------------------------------------------------------------------------------------------
# Templates


@dataclass(frozen=True, slots=True)
class Field:
    """A group of slots with one role, used to build a `LineTemplate`.

    Attributes:
        role: what the group is (``province``, ``series``, ``number``, ``country``, ``order``, ...).
        slots: allowed characters per position.
        inner_open: offsets inside the group (1..len-1) before which a separator may stand
            (``3`` for the dot of ``123.45``).
        pair: when set, the first two slots together must spell one of these strings.
        exact: no confusion corrections inside this group (a rare layout's marker letter, which a
            digit must not be bent into).
    """

    role: str
    slots: tuple[frozenset[str], ...]
    inner_open: tuple[int, ...] = ()
    pair: frozenset[str] | None = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class LineTemplate:
    """Per-position character classes of one printed line.

    Attributes:
        name: short identifier, e.g. ``"top:letter+digit"``.
        slots: per position, the characters allowed there (output characters, e.g. ``Đ``).
        roles: per position, the role of the group it belongs to.
        open_at: boundaries (0 = before the first slot, ``len(slots)`` = after the last) where a
            separator or junk may be skipped.
        pairs: ``(i, allowed)``: slots ``i`` and ``i + 1`` together must spell a string in ``allowed``.
        exact_at: slots that take no confusion corrections.
    """

    name: str
    slots: tuple[frozenset[str], ...]
    roles: tuple[str, ...]
    open_at: frozenset[int]
    pairs: tuple[tuple[int, frozenset[str]], ...] = ()
    exact_at: frozenset[int] = frozenset()
    _pair_first: frozenset[int] = field(default=frozenset(), repr=False, compare=False)
    _pair_second: Mapping[int, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, name: str, *fields: Field) -> LineTemplate:
        """Assemble a template from its groups; group boundaries are open to separators.

        Raises:
            ValueError: a pair constraint on a group of fewer than two slots, or overlapping pairs.
        """
        slots: list[frozenset[str]] = []
        roles: list[str] = []
        open_at = {0}
        pairs: list[tuple[int, frozenset[str]]] = []
        exact: set[int] = set()
        for f in fields:
            start = len(slots)
            if f.pair is not None:
                if len(f.slots) < 2:
                    raise ValueError(f"{name}: pair constraint on a {len(f.slots)}-slot group {f.role}")
                pairs.append((start, f.pair))
            if f.exact:
                exact.update(range(start, start + len(f.slots)))
            slots.extend(f.slots)
            roles.extend([f.role] * len(f.slots))
            open_at.update(start + k for k in f.inner_open)
            open_at.add(len(slots))
        return cls.of(name, tuple(slots), tuple(roles), frozenset(open_at), tuple(pairs), frozenset(exact))

    @classmethod
    def of(
        cls,
        name: str,
        slots: tuple[frozenset[str], ...],
        roles: tuple[str, ...],
        open_at: frozenset[int],
        pairs: tuple[tuple[int, frozenset[str]], ...] = (),
        exact_at: frozenset[int] = frozenset(),
    ) -> LineTemplate:
        """Template from its parts, with the pair lookup tables filled in.

        Raises:
            ValueError: lengths disagree or pairs overlap / run past the end.
        """
        if len(slots) != len(roles):
            raise ValueError(f"{name}: {len(slots)} slots but {len(roles)} roles")
        firsts = [i for i, _ in pairs]
        used = [k for i in firsts for k in (i, i + 1)]
        if len(set(used)) != len(used) or any(i + 1 >= len(slots) for i in firsts):
            raise ValueError(f"{name}: overlapping or out-of-range pair constraints {firsts}")
        return cls(
            name,
            slots,
            roles,
            open_at,
            pairs,
            exact_at,
            frozenset(firsts),
            {i + 1: allowed for i, allowed in pairs},
        )

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def pattern(self) -> str:
        """Readable shape, e.g. ``DD-LN``.

        ``D`` digit, ``N`` digit 1-9, ``L`` letter, ``A`` letter or digit, a literal where only one
        character fits, ``[..]`` for a small set, ``-`` where a separator may stand.
        """
        out: list[str] = []
        for i, allowed in enumerate(self.slots):
            if i > 0 and i in self.open_at:
                out.append("-")
            out.append(_class_code(allowed))
        return "".join(out)

    def accepts(self, text: str) -> bool:
        """Whether `text` (output characters, no separators) fits every slot and pair constraint."""
        if len(text) != len(self.slots):
            return False
        if any(c not in allowed for c, allowed in zip(text, self.slots, strict=True)):
            return False
        return all(text[i : i + 2] in allowed for i, allowed in self.pairs)

    def split(self, text: str) -> dict[str, str]:
        """Group the characters of a matched `text` by role (roles repeated are concatenated)."""
        parts: dict[str, str] = {}
        for c, role in zip(text, self.roles, strict=True):
            parts[role] = parts.get(role, "") + c
        return parts


def _class_code(allowed: frozenset[str]) -> str:
    if allowed == DIGITS:
        return "D"
    if allowed == DIGITS - {"0"}:
        return "N"
    if len(allowed) == 1:
        return next(iter(allowed))
    if not allowed & DIGITS and len(allowed) >= 10:
        return "L"
    if len(allowed) >= 30:
        return "A"
    return "[" + "".join(sorted(allowed)) + "]"


def join_templates(name: str, top: LineTemplate, bottom: LineTemplate) -> LineTemplate:
    """The one-line template of a two-line layout typed or read as a single line."""
    n = len(top)
    pairs = top.pairs + tuple((i + n, allowed) for i, allowed in bottom.pairs)
    open_at = top.open_at | {n + k for k in bottom.open_at}
    exact_at = top.exact_at | {n + k for k in bottom.exact_at}
    return LineTemplate.of(name, top.slots + bottom.slots, top.roles + bottom.roles, open_at, pairs, exact_at)


@dataclass(frozen=True, slots=True)
class Layout:
    """A whole plate: its line templates and what a plate of this shape is.

    Attributes:
        name: identifier, e.g. ``"motorbike"``, ``"car-square"``.
        lines: the printed lines, top first (1 or 2 templates).
        vehicle: vehicle class implied by the layout.
        series_kind: grammar-specific class of the series.
        style: how the grammar formats it (grammar-specific key).
        joined: for a two-line layout, its one-line form for text read or typed on one line; None
            when that would duplicate a one-line layout.
    """

    name: str
    lines: tuple[LineTemplate, ...]
    vehicle: Vehicle
    series_kind: str
    style: str
    joined: LineTemplate | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A layout matched on a reading.

    Attributes:
        layout: the layout.
        texts: output characters per template matched (1 for one-line or joined, else 2).
        parts: characters by role (``province``, ``series``, ``number`` ...), lines concatenated.
        prob: product of the chosen characters' probabilities (confusions weighted).
        corrections: characters taken through a confusion pair.
        lines: rows of the layout (2 for a joined match).
    """

    layout: Layout
    texts: tuple[str, ...]
    parts: Mapping[str, str]
    prob: float
    corrections: int
    lines: int

    @property
    def compact(self) -> str:
        """All characters, top line first."""
        return "".join(self.texts)

    @property
    def top_length(self) -> int:
        """Characters of `compact` on the top line (all of them on one line)."""
        return len(self.texts[0])


# ----------------------------------------------------------------------------------------------------
# Characters


@lru_cache(maxsize=4096)
def fold_char(c: str) -> str:
    """One character folded to what a plate can show: upper case, accents dropped, ``Đ`` kept.

    Returns ``""`` for a character that is no letter or digit (a separator or junk). Full-width and
    other compatibility forms fold to ASCII; ``đ`` / ``Ð`` / ``ð`` fold to ``Đ``.
    """
    if c in "đĐÐð":
        return "Đ"
    base = "".join(ch for ch in unicodedata.normalize("NFKD", c) if not unicodedata.combining(ch))
    base = base.upper()
    if len(base) == 1 and (base.isascii() and base.isalnum()):
        return base
    return ""


def compact(text: str, *, fold_d: bool = False) -> str:
    """Canonical compact form of any plate text: upper case, letters and digits only.

    ``"59-x1 234.56"`` becomes ``"59X123456"``. ``Đ`` is kept unless `fold_d` (then ``D``), for
    comparison with ASCII-only labels. No grammar is applied: confusions are not corrected.
    """
    out = "".join(fold_char(c) for c in text)
    return out.replace("Đ", "D") if fold_d else out


@dataclass(frozen=True, slots=True)
class _Pos:
    """A position ready for matching: skip probabilities and (output, prob, correction) readings."""

    blank: float  # probability that nothing is here: skippable anywhere
    sep: float  # probability of a separator / junk: skippable at open boundaries
    readings: tuple[tuple[str, float, int], ...]


def _make_pos(alts: Alternatives, reads: Callable[[str], Readings], weight: float) -> _Pos:
    blank = 0.0
    sep = 0.0
    best: dict[str, tuple[float, int]] = {}
    for ch, p in alts:
        if p <= 0.0:
            continue
        if ch == "":
            blank += p
            continue
        if len(ch) != 1 or not fold_char(ch):
            sep += p
            continue
        for out, corr in reads(ch):
            q = p * weight if corr else p
            if q <= 0.0:
                continue
            old = best.get(out)
            if old is None or q > old[0] or (q == old[0] and int(corr) < old[1]):
                best[out] = (q, int(corr))
    return _Pos(min(blank, 1.0), min(sep, 1.0), tuple((o, q, c) for o, (q, c) in best.items()))


# ----------------------------------------------------------------------------------------------------
# Matching

# A hypothesis: (probability, corrections, text so far).
_Hyp: TypeAlias = tuple[float, int, str]


def _rank(h: _Hyp) -> tuple[float, int]:
    return (-h[0], h[1])


def _push(bucket: dict[tuple[int, str], list[_Hyp]], key: tuple[int, str], hyp: _Hyp, k: int) -> None:
    lst = bucket.get(key)
    if lst is None:
        bucket[key] = [hyp]
        return
    if k == 1:
        if _rank(hyp) < _rank(lst[0]):
            lst[0] = hyp
        return
    lst.append(hyp)
    if len(lst) > 2 * k:
        lst.sort(key=_rank)
        del lst[k:]


def match_line(positions: Sequence[_Pos], tpl: LineTemplate, k: int = 1) -> list[_Hyp]:
    """The `k` best fillings of `tpl` from `positions`, best first (empty when none fits).

    State of the programme: (slots filled, first character of an open pair constraint).
    """
    n = len(positions)
    m = len(tpl.slots)
    if n < m:
        return []
    states: dict[tuple[int, str], list[_Hyp]] = {(0, ""): [(1.0, 0, "")]}
    for i, pos in enumerate(positions):
        remaining = n - i - 1
        new: dict[tuple[int, str], list[_Hyp]] = {}
        for (j, tag), hyps in states.items():
            skip = pos.blank + (pos.sep if j in tpl.open_at else 0.0)
            if skip > 0.0 and m - j <= remaining:
                for p, c, t in hyps:
                    _push(new, (j, tag), (p * skip, c, t), k)
            if j >= m or m - j - 1 > remaining:
                continue
            allowed = tpl.slots[j]
            pair = tpl._pair_second.get(j)
            first = j in tpl._pair_first
            exact = j in tpl.exact_at
            for out, q, corr in pos.readings:
                if out not in allowed or (corr and exact):
                    continue
                if pair is not None and tag + out not in pair:
                    continue
                key = (j + 1, out if first else "")
                for p, c, t in hyps:
                    _push(new, key, (p * q, c + corr, t + out), k)
        if not new:
            return []
        states = new
    final = states.get((m, ""), [])
    final.sort(key=_rank)
    return final[:k]


def _must_fill(positions: Sequence[_Pos]) -> int:
    return sum(1 for p in positions if p.blank <= 0.0 and p.sep <= 0.0)


class Grammar(Protocol):
    """A country's plate grammar."""

    @property
    def name(self) -> str:
        """Short key, e.g. ``"vn"``."""
        ...

    def parse(self, lines: str | Sequence[str]) -> PlateText:
        """Judge OCR text lines (top to bottom); never raises on bad text."""
        ...

    def best_valid(
        self, lines_candidates: Sequence[LineLattice], *, confusion_weight: float = ...
    ) -> tuple[PlateText, float] | None:
        """Most probable valid plate over per-position alternatives, with its probability."""
        ...

    def n_best_valid(
        self, lines_candidates: Sequence[LineLattice], n: int = ..., *, confusion_weight: float = ...
    ) -> list[tuple[PlateText, float]]:
        """Up to `n` distinct valid plates, most probable first."""
        ...


class TemplateGrammar:
    """A `Grammar` defined by layouts, a confusion table and two country-specific functions.

    Args:
        name: short key (``"vn"``).
        layouts: every layout, in order of preference for ties.
        reads: for one raw character, what it may stand for: ``((output, is_correction), ...)``.
        build: turns a `Match` and the raw text into a valid `PlateText`.
        diagnose: for cleaned lines (`compact` of each non-empty line) and the raw lines, the
            one-phrase reason why nothing matched.
        join_lines: match several lines as one (for grammars without two-line layouts of their own).
        reject: for a match the templates allow, the one-phrase reason it is still no plate (a
            number that is never issued), or None.
    """

    def __init__(
        self,
        name: str,
        layouts: Sequence[Layout],
        reads: Callable[[str], Readings],
        build: Callable[[Match, str], PlateText],
        diagnose: Callable[[list[str], list[str]], str],
        *,
        join_lines: bool = False,
        reject: Callable[[Match], str | None] | None = None,
    ) -> None:
        self._name = name
        self._reject = reject
        self.layouts = tuple(layouts)
        self._reads = reads
        self._build = build
        self._diagnose = diagnose
        self._join_lines = join_lines

    @property
    def name(self) -> str:
        """Short key of the grammar."""
        return self._name

    # -- public API ---------------------------------------------------------------------------------

    def parse(self, lines: str | Sequence[str]) -> PlateText:
        """Judge OCR text lines, top to bottom.

        Separators and junk (``-``, ``.``, space, ``·``, ``:``, ``|`` ...) are tolerated between
        groups and at the ends; case and accents are ignored; confusable characters are corrected
        only where a layout needs the other class. A bare string is taken as one line; empty lines
        are dropped. Never raises on bad text: an invalid plate says why in `PlateText.problem`.
        """
        given = [lines] if isinstance(lines, str) else list(lines)
        raw = "\n".join(given)
        texts = [t for t in given if compact(t)]
        if not texts:
            return invalid(raw, 0, "empty reading")
        if len(texts) > 2 and not self._join_lines:
            return invalid(raw, len(texts), f"expected 1 or 2 text lines, got {len(texts)}")
        lattice = [[((c, 1.0),) for c in t] for t in texts]
        found = self._search(lattice, 1, DEFAULT_CONFUSION_WEIGHT)
        kept = self._plates(found)
        if kept:
            return self._build(kept[0], raw)
        if found:
            return invalid(raw, len(texts), str(self._rejected(found[0])))
        cleaned = [compact(t) for t in texts]
        return invalid(raw, len(texts), self._diagnose(cleaned, texts))

    def best_valid(
        self,
        lines_candidates: Sequence[LineLattice],
        *,
        confusion_weight: float = DEFAULT_CONFUSION_WEIGHT,
    ) -> tuple[PlateText, float] | None:
        """Most probable grammar-valid plate over a lattice of alternatives.

        Args:
            lines_candidates: per line (top first), per position, ``(char, prob)`` alternatives
                (the top-k of a CTC decoder). ``""`` means "no character"; a separator character
                (``-``, ``.``, space) may be skipped at a group boundary.
            confusion_weight: factor on the probability of a character used through a confusion
                pair (``S`` where a digit must be is taken as ``5``); 0 forbids corrections.

        Returns:
            (plate, probability) where probability is the product of the chosen characters'
            probabilities (times `confusion_weight` per correction, times the skip probability of
            skipped positions); None when no layout fits.
        """
        found = self.n_best_valid(lines_candidates, 1, confusion_weight=confusion_weight)
        return found[0] if found else None

    def n_best_valid(
        self,
        lines_candidates: Sequence[LineLattice],
        n: int = 5,
        *,
        confusion_weight: float = DEFAULT_CONFUSION_WEIGHT,
    ) -> list[tuple[PlateText, float]]:
        """Up to `n` distinct valid plates (by compact text), most probable first.

        Same arguments as `best_valid`. Each layout contributes its `n` best fillings.

        Raises:
            ValueError: `n` < 1 or `confusion_weight` outside [0, 1].
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not 0.0 <= confusion_weight <= 1.0:
            raise ValueError(f"confusion_weight must be in [0, 1], got {confusion_weight}")
        lattice = [list(line) for line in lines_candidates if any(alts for alts in line)]
        if not lattice:
            return []
        raw = "\n".join(_top_text(line) for line in lattice)
        out: list[tuple[PlateText, float]] = []
        seen: set[str] = set()
        found = self._search(lattice, n, confusion_weight)
        kept = self._plates(found)
        if len(kept) < len(found):
            # A layout's best filling that is no plate (30A-000.00) hides its next one: look deeper.
            kept = self._plates(self._search(lattice, n + 1, confusion_weight))
        for m in kept:
            if m.compact in seen:
                continue
            seen.add(m.compact)
            out.append((self._build(m, raw), m.prob))
            if len(out) == n:
                break
        return out

    def _rejected(self, m: Match) -> str | None:
        return self._reject(m) if self._reject is not None else None

    def _plates(self, found: list[Match]) -> list[Match]:
        """The matches that are plates (not rejected), in order."""
        return [m for m in found if self._rejected(m) is None]

    # -- search -------------------------------------------------------------------------------------

    def _search(self, lattice: Sequence[LineLattice], k: int, weight: float) -> list[Match]:
        """Every layout's `k` best matches, best first (probability, fewer corrections, layout order)."""
        if self._join_lines and len(lattice) > 1:
            lattice = [[alt for line in lattice for alt in line]]
        if len(lattice) > 2:
            return []
        reads = self._reads
        lines = [[_make_pos(alts, reads, weight) for alts in line] for line in lattice]
        must = [_must_fill(line) for line in lines]
        cache: dict[tuple[int, LineTemplate], list[_Hyp]] = {}

        def run(li: int, tpl: LineTemplate) -> list[_Hyp]:
            if not must[li] <= len(tpl) <= len(lines[li]):
                return []
            key = (li, tpl)
            if key not in cache:
                cache[key] = match_line(lines[li], tpl, k)
            return cache[key]

        scored: list[tuple[float, int, int, Match]] = []
        for order, layout in enumerate(self.layouts):
            for hyps, tpls, rows in self._candidates(layout, len(lines), run, k):
                for prob, corr, texts in hyps:
                    parts: dict[str, str] = {}
                    for tpl, text in zip(tpls, texts, strict=True):
                        for role, chars in tpl.split(text).items():
                            parts[role] = parts.get(role, "") + chars
                    m = Match(layout, texts, parts, prob, corr, rows)
                    scored.append((-prob, corr, order, m))
        scored.sort(key=lambda s: s[:3])
        return [s[3] for s in scored]

    @staticmethod
    def _candidates(
        layout: Layout,
        n_lines: int,
        run: Callable[[int, LineTemplate], list[_Hyp]],
        k: int,
    ) -> Iterable[tuple[list[tuple[float, int, tuple[str, ...]]], tuple[LineTemplate, ...], int]]:
        """Matches of one layout on 1 or 2 lines: (hypotheses, templates matched, layout rows)."""
        if n_lines == 1:
            if len(layout.lines) == 1:
                tpl = layout.lines[0]
                yield [(p, c, (t,)) for p, c, t in run(0, tpl)], layout.lines, 1
            elif layout.joined is not None:
                tpl = layout.joined
                hyps = run(0, tpl)
                # Report the two printed lines, split where the top template ends.
                cut = len(layout.lines[0])
                yield [(p, c, (t[:cut], t[cut:])) for p, c, t in hyps], layout.lines, 2
        elif n_lines == 2 and len(layout.lines) == 2:
            top, bottom = layout.lines
            tops = run(0, top)
            bottoms = run(1, bottom) if tops else []
            combos: list[tuple[float, int, tuple[str, ...]]] = [
                (pt * pb, ct + cb, (tt, tb)) for pt, ct, tt in tops for pb, cb, tb in bottoms
            ]
            combos.sort(key=lambda h: (-h[0], h[1]))
            yield combos[:k], layout.lines, 2


def _top_text(line: LineLattice) -> str:
    """Best-first character of every position (the raw reading of a lattice line)."""
    out: list[str] = []
    for alts in line:
        if alts:
            out.append(max(alts, key=lambda a: a[1])[0])
    return "".join(out)
