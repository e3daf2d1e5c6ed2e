"""Legal references of the rules: which point of Decree 168/2024/NĐ-CP applies to which vehicle.

Source: Nghị định 168/2024/NĐ-CP of 26 December 2024 (in force 1 January 2025), "Quy định xử phạt
vi phạm hành chính về trật tự, an toàn giao thông trong lĩnh vực giao thông đường bộ; trừ điểm, phục
hồi điểm giấy phép lái xe", Chapter II, Section 1 (rules of the road):

- Điều 6: xe ô tô and vehicles similar to cars (our car, bus, truck),
- Điều 7: xe mô tô, xe gắn máy and similar (our motorcycle),
- Điều 9: xe đạp, xe đạp máy and other non-motorised vehicles (our bicycle).

Points were read from the decree's text (Công báo số 75+76, 16-01-2025); fines are the ranges of the
clause and licence points the deduction of khoản 16 Điều 6 / khoản 13 Điều 7. Pedestrians (Điều 10)
are not enforced by the camera rules: `reference` returns None for "person".

Choices a reviewer should know:

- Stopping past the stop line on red without driving on is "không chấp hành hiệu lệnh, chỉ dẫn của
  vạch kẻ đường" (point a clause 1 of Điều 6 / Điều 7, point c clause 1 of Điều 9), the usual
  reading in enforcement practice; driving on through the junction is the red-light point.
- Riding on the sidewalk has its own words for cars (point d clause 6 Điều 6) and motorbikes (point a
  clause 7 Điều 7); bicycles fall under "đi không đúng phần đường quy định" (point a clause 1 Điều 9).
- Speeding bands use the LOWER bound of the measured speed, so the band is never above what the
  measurement supports; an excess under 5 km/h is not sanctioned by the decree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from violations.types import RuleId

DECREE = "168/2024/NĐ-CP"

StopZoneKind = Literal["no_stopping", "no_parking", "junction", "crosswalk"]
Regime = Literal["car", "motorcycle", "bicycle"]

#: Detector class → the article regime that sanctions its driver; other classes have none.
REGIME_OF_CLASS: dict[str, Regime] = {
    "car": "car",
    "bus": "car",
    "truck": "car",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
}


@dataclass(frozen=True, slots=True)
class LegalReference:
    """One point of one clause of one article of the decree.

    Attributes:
        article: Điều.
        clause: khoản.
        point: điểm (Vietnamese letter, e.g. "đ").
        summary: the offence in the decree's words (shortened).
        fine_min_vnd / fine_max_vnd: the clause's fine range for an individual, VND.
        licence_points: points deducted from the driving licence (0 when none).
    """

    article: int
    clause: int
    point: str
    summary: str
    fine_min_vnd: int
    fine_max_vnd: int
    licence_points: int = 0

    @property
    def citation(self) -> str:
        """'Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP'."""
        return f"Điểm {self.point} khoản {self.clause} Điều {self.article} Nghị định {DECREE}"


def _ref(
    article: int, clause: int, point: str, summary: str, lo: int, hi: int, pts: int = 0
) -> LegalReference:
    return LegalReference(article, clause, point, summary, lo, hi, pts)


_SIGNAL = "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông"
_MARKING = "Không chấp hành hiệu lệnh, chỉ dẫn của biển báo hiệu, vạch kẻ đường"
_WRONG_WAY = "Đi ngược chiều của đường một chiều, đi ngược chiều trên đường có biển “Cấm đi ngược chiều”"
_LANE = "Đi không đúng phần đường hoặc làn đường quy định"

_TABLE: dict[tuple[RuleId, Regime], LegalReference] = {
    ("red_light", "car"): _ref(6, 9, "b", _SIGNAL, 18_000_000, 20_000_000, 4),
    ("red_light", "motorcycle"): _ref(7, 7, "c", _SIGNAL, 4_000_000, 6_000_000, 4),
    ("red_light", "bicycle"): _ref(9, 2, "đ", _SIGNAL, 150_000, 250_000),
    ("stop_line", "car"): _ref(6, 1, "a", _MARKING, 400_000, 600_000),
    ("stop_line", "motorcycle"): _ref(7, 1, "a", _MARKING, 200_000, 400_000),
    ("stop_line", "bicycle"): _ref(9, 1, "c", _MARKING, 100_000, 200_000),
    ("wrong_way", "car"): _ref(6, 9, "d", _WRONG_WAY, 18_000_000, 20_000_000, 4),
    ("wrong_way", "motorcycle"): _ref(7, 7, "a", _WRONG_WAY, 4_000_000, 6_000_000, 2),
    ("wrong_way", "bicycle"): _ref(9, 3, "c", _WRONG_WAY, 300_000, 400_000),
    ("wrong_lane", "car"): _ref(6, 5, "b", _LANE, 4_000_000, 6_000_000, 2),
    ("wrong_lane", "motorcycle"): _ref(7, 3, "d", _LANE, 600_000, 800_000),
    ("wrong_lane", "bicycle"): _ref(9, 1, "a", "Đi không đúng phần đường quy định", 100_000, 200_000),
    ("sidewalk", "car"): _ref(6, 6, "d", "Điều khiển xe đi trên vỉa hè", 6_000_000, 8_000_000, 4),
    ("sidewalk", "motorcycle"): _ref(7, 7, "a", "Điều khiển xe đi trên vỉa hè", 4_000_000, 6_000_000, 2),
    ("sidewalk", "bicycle"): _ref(9, 1, "a", "Đi không đúng phần đường quy định", 100_000, 200_000),
}

_STOP: dict[tuple[StopZoneKind, Regime], LegalReference] = {
    ("no_stopping", "car"): _ref(6, 2, "đ", "Dừng xe nơi có biển “Cấm dừng xe và đỗ xe”", 600_000, 800_000),
    ("no_parking", "car"): _ref(
        6, 3, "e", "Đỗ xe nơi có biển “Cấm đỗ xe” hoặc biển “Cấm dừng xe và đỗ xe”", 800_000, 1_000_000
    ),
    ("junction", "car"): _ref(
        6, 3, "đ", "Dừng xe, đỗ xe tại nơi đường bộ giao nhau hoặc trong phạm vi 05 mét", 800_000, 1_000_000
    ),
    ("crosswalk", "car"): _ref(
        6, 2, "đ", "Dừng xe, đỗ xe trên phần đường dành cho người đi bộ qua đường", 600_000, 800_000
    ),
    ("no_stopping", "motorcycle"): _ref(
        7, 2, "e", "Dừng xe nơi có biển “Cấm dừng xe và đỗ xe”", 400_000, 600_000
    ),
    ("no_parking", "motorcycle"): _ref(
        7, 2, "e", "Đỗ xe tại nơi có biển “Cấm đỗ xe” hoặc biển “Cấm dừng xe và đỗ xe”", 400_000, 600_000
    ),
    ("junction", "motorcycle"): _ref(7, 2, "e", "Dừng xe, đỗ xe nơi đường bộ giao nhau", 400_000, 600_000),
    ("crosswalk", "motorcycle"): _ref(
        7, 2, "e", "Dừng xe, đỗ xe trên phần đường dành cho người đi bộ qua đường", 400_000, 600_000
    ),
    # Bicycles: the decree has no stopping point of their own; stopping against a sign is
    # "không chấp hành ... biển báo hiệu, vạch kẻ đường".
    ("no_stopping", "bicycle"): _ref(9, 1, "c", _MARKING, 100_000, 200_000),
    ("no_parking", "bicycle"): _ref(9, 1, "c", _MARKING, 100_000, 200_000),
    ("junction", "bicycle"): _ref(9, 1, "c", _MARKING, 100_000, 200_000),
    ("crosswalk", "bicycle"): _ref(9, 1, "c", _MARKING, 100_000, 200_000),
}

# Speeding: (lowest excess in km/h that the band starts at, reference), highest band first.
_SPEED: dict[Regime, tuple[tuple[float, LegalReference], ...]] = {
    "car": (
        (35.0 + 1e-9, _ref(6, 7, "a", "Chạy quá tốc độ quy định trên 35 km/h", 12_000_000, 14_000_000, 6)),
        (
            20.0 + 1e-9,
            _ref(6, 6, "a", "Chạy quá tốc độ quy định trên 20 km/h đến 35 km/h", 6_000_000, 8_000_000, 4),
        ),
        (10.0, _ref(6, 5, "đ", "Chạy quá tốc độ quy định từ 10 km/h đến 20 km/h", 4_000_000, 6_000_000, 2)),
        (5.0, _ref(6, 3, "a", "Chạy quá tốc độ quy định từ 05 km/h đến dưới 10 km/h", 800_000, 1_000_000)),
    ),
    "motorcycle": (
        (20.0 + 1e-9, _ref(7, 8, "a", "Chạy quá tốc độ quy định trên 20 km/h", 6_000_000, 8_000_000, 4)),
        (10.0, _ref(7, 4, "a", "Chạy quá tốc độ quy định từ 10 km/h đến 20 km/h", 800_000, 1_000_000)),
        (5.0, _ref(7, 2, "b", "Chạy quá tốc độ quy định từ 05 km/h đến dưới 10 km/h", 400_000, 600_000)),
    ),
}

#: Smallest excess over the limit that the decree sanctions (km/h).
MIN_SPEED_EXCESS_KMH = 5.0


def regime(vehicle_class: str) -> Regime | None:
    """The article regime of a detector class ("bus" → "car"), None for classes not enforced."""
    return REGIME_OF_CLASS.get(vehicle_class)


def reference(rule: RuleId, vehicle_class: str) -> LegalReference | None:
    """The point that sanctions `rule` for `vehicle_class`; None when the decree has none.

    For "illegal_stop" use `stop_reference`, for "speeding" `speeding_reference` (they need more
    than the class).
    """
    reg = regime(vehicle_class)
    return None if reg is None else _TABLE.get((rule, reg))


def stop_reference(kind: StopZoneKind, vehicle_class: str) -> LegalReference | None:
    """The point for stopping or parking in a zone of `kind`; None for classes not enforced."""
    reg = regime(vehicle_class)
    return None if reg is None else _STOP.get((kind, reg))


def speeding_reference(vehicle_class: str, excess_kmh: float) -> LegalReference | None:
    """The band for driving `excess_kmh` over the limit; None under 5 km/h or for bicycles/people."""
    reg = regime(vehicle_class)
    if reg is None:
        return None
    for start, ref in _SPEED.get(reg, ()):
        if excess_kmh >= start:
            return ref
    return None
