"""Scene configuration: what a camera sees and what is enforced where (YAML → strict pydantic trees).

A scene file describes one fixed camera view in the camera's own pixel coordinates (origin top left,
y down): stop lines, the lights that govern them and the movements out of them (exits), lanes with
their travel direction and allowed vehicle classes, wrong-way zones, no-stopping/no-parking zones,
sidewalks, an optional speed calibration (image ↔ ground points) and the rules' tolerances. Every
model is frozen, forbids unknown keys and bounds every number, so a typo is an error naming the field
and the file.

Directions are image vectors ``[dx, dy]`` or the names ``up`` / ``down`` / ``left`` / ``right``
(``up`` is ``[0, -1]``: away from a camera that looks along the road). A stop line says from which
side the vehicles it governs come (``approach: below`` — they come from the bottom of the image and
cross it moving up).

`load_scene` parses a file (errors list every bad field with the file name; a polygon whose edges
cross, its corners clicked out of order, is one); `check_scene` returns warnings about a valid scene
(unused lights, queue areas inside no-stopping zones, a wrong-way zone against the lane it covers, a
speed zone reaching beyond the calibration points, stop-line exits that cannot decide a movement, a
frame of another size...). Drawing lives in
`violations.draw`. No OpenCV here: the server may import this module.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from violations import geometry
from violations.types import RULE_IDS, RuleId

logger = logging.getLogger(__name__)

VehicleClass = Literal["motorcycle", "car", "bus", "truck", "bicycle"]
#: The classes the rules treat as vehicles (detector class names); "person" is not one.
VEHICLE_CLASSES: tuple[VehicleClass, ...] = get_args(VehicleClass)
TWO_WHEELERS: tuple[VehicleClass, ...] = ("motorcycle", "bicycle")

Approach = Literal["below", "above", "left", "right"]
StopZoneKind = Literal["no_stopping", "no_parking", "junction", "crosswalk"]

_DIRECTION_NAMES: dict[str, tuple[float, float]] = {
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
}
#: Travel direction of the vehicles a stop line governs, by the side they approach from.
_TRAVEL_OF_APPROACH: dict[str, tuple[float, float]] = {
    "below": (0.0, -1.0),
    "above": (0.0, 1.0),
    "left": (1.0, 0.0),
    "right": (-1.0, 0.0),
}


class SceneError(ValueError):
    """A scene file is unreadable or invalid. The message names the file and every bad field."""


# --- field types -------------------------------------------------------------------------------


def _frame_of(info: ValidationInfo) -> tuple[int, int] | None:
    """The (width, height) passed by `load_scene` in the validation context, if any."""
    ctx = info.context
    if isinstance(ctx, dict):
        res = ctx.get("resolution")
        if isinstance(res, tuple) and len(res) == 2:
            return int(res[0]), int(res[1])
    return None


def _fmt(v: float) -> str:
    return f"{v:g}"


def _point_problem(x: float, y: float, frame: tuple[int, int]) -> str | None:
    w, h = frame
    if not (0 <= x <= w and 0 <= y <= h):
        return f"point ({_fmt(x)}, {_fmt(y)}) is outside the {w}x{h} frame"
    return None


def _roi_problem(roi: tuple[int, int, int, int], frame: tuple[int, int]) -> str | None:
    w, h = frame
    x1, y1, x2, y2 = roi
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        return f"roi ({x1}, {y1}, {x2}, {y2}) extends outside the {w}x{h} frame"
    return None


def _check_point(v: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
    x, y = v
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"point ({x}, {y}) is not finite")
    frame = _frame_of(info)
    problem = _point_problem(x, y, frame) if frame else None
    if problem:
        raise ValueError(problem)
    return v


def _check_roi(v: tuple[int, int, int, int], info: ValidationInfo) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = v
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"roi must be x1, y1, x2, y2 with x2 > x1 and y2 > y1, got ({x1}, {y1}, {x2}, {y2})")
    frame = _frame_of(info)
    problem = _roi_problem(v, frame) if frame else None
    if problem:
        raise ValueError(problem)
    return v


def _check_polygon(v: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    crossing = _crossing_edges(v)
    if crossing is not None:
        # Typically a quadrilateral clicked in "Z" order (top-left, top-right, bottom-left, bottom-right).
        a, b = crossing
        n = len(v)
        first, second = f"{a + 1}→{(a + 1) % n + 1}", f"{b + 1}→{(b + 1) % n + 1}"
        raise ValueError(
            f"polygon edges cross (corner {first} crosses corner {second}): "
            "list the corners in order around the shape (clockwise or counter-clockwise)"
        )
    if geometry.polygon_area(v) < 4.0:
        raise ValueError("polygon has (almost) no area: its corners are on one line or repeated")
    return v


def _crossing_edges(polygon: tuple[tuple[float, float], ...]) -> tuple[int, int] | None:
    """The first two edges (indices; edge k joins corners k and k + 1) of a closed polygon that cross each
    other, None when none do. Edges that only touch or overlap along a line are not crossing (the area
    check catches a polygon whose corners are all on one line)."""

    def side(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    n = len(polygon)
    edges = [(polygon[k], polygon[(k + 1) % n]) for k in range(n)]
    for a in range(n):
        p1, p2 = edges[a]
        for b in range(a + 2, n - 1 if a == 0 else n):  # not a's neighbours (they share a corner)
            q1, q2 = edges[b]
            if side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0:
                return a, b
    return None


def _parse_direction(v: Any) -> Any:
    if isinstance(v, str):
        key = v.strip().lower()
        if key not in _DIRECTION_NAMES:
            raise ValueError(f"direction must be [dx, dy] or one of {', '.join(_DIRECTION_NAMES)}, got {v!r}")
        return _DIRECTION_NAMES[key]
    return v


def _unit_direction(v: tuple[float, float]) -> tuple[float, float]:
    u = geometry.unit(v)  # raises ValueError for a zero vector
    return float(u[0]), float(u[1])


Id = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
Point = Annotated[tuple[float, float], AfterValidator(_check_point)]
Roi = Annotated[tuple[int, int, int, int], AfterValidator(_check_roi)]
Polygon = Annotated[tuple[Point, ...], Field(min_length=3, max_length=64), AfterValidator(_check_polygon)]
Direction = Annotated[tuple[float, float], BeforeValidator(_parse_direction), AfterValidator(_unit_direction)]
Classes = Annotated[tuple[VehicleClass, ...], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- scene parts -------------------------------------------------------------------------------


class Location(_Strict):
    """Where the camera is (WGS 84)."""

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees.")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees.")


class Exit(_Strict):
    """One movement out of a stop line (straight, a turn): where the vehicles making it go, and what lets
    them make it while the line's own light is red."""

    id: Id = Field(
        description="Name of the movement, unique on its line (straight, right, left...); events give it in "
        "details.movement."
    )
    polygon: Polygon = Field(
        description="Where the vehicles making this movement go, past the line, frame pixels. A vehicle's "
        "movement is the first exit its bottom-centre enters after it crossed the line."
    )
    light: Id | None = Field(
        None,
        description="Light (in `lights`) that permits this movement while it is green, e.g. a head with only "
        "a green right-turn arrow; none (and not free): the movement is governed by the line's own light.",
    )
    free: bool = Field(
        False, description="A sign permits this movement at any time (e.g. a right turn on red): never fined."
    )

    @model_validator(mode="after")
    def _one_permission(self) -> Exit:
        if self.light is not None and self.free:
            raise ValueError("give light or free, not both")
        return self

    @property
    def governed_by_line(self) -> bool:
        """Whether the line's own light governs this movement (no light or sign of its own)."""
        return self.light is None and not self.free


class StopLine(_Strict):
    """A painted stop line and the signal that governs it."""

    id: Id = Field(description="Unique id, used in events (details.line_id).")
    points: tuple[Point, ...] = Field(
        min_length=2, max_length=16, description="Polyline along the line's paint, frame pixels."
    )
    approach: Approach = Field(
        description="Side the governed traffic comes from: below (it moves up the image), above, left "
        "or right. Crossing the line away from this side is what the signal rules look at."
    )
    light: Id | None = Field(
        None, description="Id of the light (in `lights`) that governs this line; none → not enforced."
    )
    lanes: tuple[Id, ...] = Field(
        (),
        description="Ids of the lanes this line governs (e.g. leave out a free right-turn lane); empty → "
        "every vehicle crossing the line.",
    )
    exits: tuple[Exit, ...] = Field(
        (),
        max_length=8,
        description="The movements out of this line, when a turn from a shared lane has a light or sign of "
        "its own (a green arrow, 'right turn on red permitted'): draw every movement (straight, right, "
        "left). A vehicle that crosses on red while such a turn is permitted is a red-light (or stop-line) "
        "case only once it enters an exit whose movement is not permitted; one whose movement is not seen "
        "(its track ends, or it enters no exit within tolerances.movement_window_s) is not fined. Empty: "
        "every crossing on red is judged by the line's light alone.",
    )

    @property
    def travel(self) -> tuple[float, float]:
        """Unit image vector of the governed travel direction."""
        return _TRAVEL_OF_APPROACH[self.approach]

    @model_validator(mode="after")
    def _crossable(self) -> StopLine:
        try:
            geometry.StopLineFrame(self.points, self.travel)
        except ValueError as e:
            raise ValueError(f"{e} (approach: {self.approach})") from None
        return self


class LampSpec(_Strict):
    """Frame-pixel centres of the lamps of a signal head; give the lamps you can see."""

    red: Point | None = Field(None, description="Centre of the red lamp, x, y.")
    amber: Point | None = Field(None, description="Centre of the amber lamp, x, y.")
    green: Point | None = Field(None, description="Centre of the green lamp, x, y.")


class LightConfig(_Strict):
    """One traffic-light head: where the camera sees it, or that a controller feed reports it."""

    id: Id = Field(
        description="Unique id; stop lines and stop zones refer to it; the signal reader keys on it."
    )
    roi: Roi | None = Field(
        None, description="Signal head region x1, y1, x2, y2 (x2, y2 exclusive), frame pixels."
    )
    lamps: LampSpec | None = Field(
        None, description="Lamp centres; with them the reader samples discs and colours by position."
    )
    reader: dict[str, Any] = Field(
        default_factory=dict,
        description="Further settings of the camera light reader (`violations.signal.LightReaderConfig`: "
        "red_hues, amber_hues, green_hues, min_value, hold_s, ...); defaults otherwise.",
    )
    feed_only: bool = Field(
        False, description="The state comes only from a controller feed (edge config); no roi needed."
    )

    @model_validator(mode="after")
    def _reader(self) -> LightConfig:
        if self.roi is None:
            if not self.feed_only:
                raise ValueError("roi is required unless feed_only is true")
            if self.lamps is not None or self.reader:
                raise ValueError("lamps and reader need a roi")
            return self
        self.reader_config()  # validates the reader settings against the signal reader's model
        return self

    def reader_config(self) -> Any:
        """The `violations.signal.LightReaderConfig` for this head, None when `feed_only` without roi.

        Raises:
            pydantic.ValidationError: invalid reader settings, located under ``reader`` (or
                ``roi`` / ``lamps``).
        """
        if self.roi is None:
            return None
        from violations.signal import LightReaderConfig

        data: dict[str, Any] = {"roi": self.roi, **self.reader}
        if self.lamps is not None:
            data["lamps"] = {
                name: (round(p[0]), round(p[1]))
                for name, p in (
                    ("red", self.lamps.red),
                    ("amber", self.lamps.amber),
                    ("green", self.lamps.green),
                )
                if p is not None
            }
        try:
            return LightReaderConfig.model_validate(data)
        except ValidationError as e:
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError("light_reader", "{msg}", {"msg": _message(err)}),
                    loc=_reader_loc(tuple(err["loc"]), _message(err)),
                    input=err.get("input"),
                )
                for err in e.errors()
            ]
            raise ValidationError.from_exception_data("LightConfig", errors) from None


def _reader_loc(loc: tuple[int | str, ...], msg: str) -> tuple[int | str, ...]:
    """Where a reader-config error belongs in the scene file."""
    if loc and loc[0] in ("roi", "lamps"):
        return loc
    if not loc:
        # Whole-model checks of the reader config are about the lamps or the roi.
        return ("lamps",) if msg.startswith("lamps") else ("roi",) if msg.startswith("roi") else ("reader",)
    return ("reader", *loc)


class Lane(_Strict):
    """A lane: the area vehicles travel in one direction, and which vehicle classes may use it."""

    id: Id = Field(description="Unique id.")
    polygon: Polygon = Field(description="Lane area, frame pixels.")
    direction: Direction = Field(description="Travel direction in the image: [dx, dy] or up/down/left/right.")
    classes: Classes = Field(VEHICLE_CLASSES, description="Vehicle classes allowed in this lane.")
    max_angle_deg: float = Field(
        60.0,
        ge=10,
        le=90,
        description="A vehicle moving within this angle of `direction` travels in the lane (one crossing it "
        "to turn does not).",
    )
    edge_margin_px: float = Field(
        8.0,
        ge=0,
        le=200,
        description="Wrong lane: the wheels (box bottom-centre) must be this far inside the lane's edges to "
        "count as in the lane: a box's bottom wobbles a few pixels, and a rider along the divider is in "
        "the lane beside it.",
    )


class WrongWayZone(_Strict):
    """An area where traffic may move one way only."""

    id: Id = Field(description="Unique id.")
    polygon: Polygon = Field(description="Zone area, frame pixels.")
    direction: Direction = Field(description="Allowed travel direction: [dx, dy] or up/down/left/right.")
    max_angle_deg: float = Field(
        120.0, ge=90, le=180, description="Motion more than this many degrees off `direction` is against it."
    )
    min_duration_s: float = Field(
        1.5,
        ge=0.2,
        le=30,
        description="Time seen moving against the direction needed for a violation (pauses under 1 s count; "
        "a longer standstill starts over).",
    )
    min_travel_px: float = Field(
        25.0, ge=2, le=2000, description="Distance moved against the direction needed for a violation."
    )
    classes: Classes = Field(VEHICLE_CLASSES, description="Vehicle classes checked.")


class StopZone(_Strict):
    """An area where stopping or parking is forbidden (sign, junction box, pedestrian crossing)."""

    id: Id = Field(description="Unique id.")
    kind: StopZoneKind = Field(
        description="no_stopping (sign 'Cấm dừng xe và đỗ xe'), no_parking ('Cấm đỗ xe'), junction or "
        "crosswalk; chooses the legal reference."
    )
    polygon: Polygon = Field(description="Zone area, frame pixels.")
    max_dwell_s: float = Field(
        ge=1, le=86400, description="Stationary time inside the zone (queueing excluded) before a violation."
    )
    classes: Classes = Field(VEHICLE_CLASSES, description="Vehicle classes checked.")
    light: Id | None = Field(
        None,
        description="Light whose red/amber (or unknown) state means vehicles here are queueing: that time "
        "does not count as dwell.",
    )
    queue_release_s: float = Field(
        8.0, ge=0, le=300, description="After that light turns green, queued vehicles get this long to clear."
    )
    max_queue_s: float = Field(
        180.0,
        ge=0,
        le=3600,
        description="Stopped traffic (a jam): while a vehicle stands in a column of stationary vehicles and "
        "no traffic of its kind drives past it, that time does not count as dwell, for at most this long "
        "per stop. A row of cars parked on an empty street looks like such a queue: it is fined after "
        "max_dwell_s + max_queue_s at the latest. 0 turns this excuse off.",
    )


class SidewalkZone(_Strict):
    """A sidewalk (vỉa hè): riding along it is a violation, crossing it to reach a gate is not."""

    id: Id = Field(description="Unique id.")
    polygon: Polygon = Field(description="Sidewalk area, frame pixels.")
    classes: Classes = Field(TWO_WHEELERS, description="Vehicle classes checked.")
    min_duration_s: float = Field(
        2.0, ge=0.2, le=60, description="Time moving inside the zone needed for a violation."
    )
    min_travel_px: float = Field(30.0, ge=2, le=2000, description="Distance ridden inside the zone needed.")
    edge_margin_px: float = Field(
        8.0,
        ge=0,
        le=200,
        description="The wheels (box bottom-centre) must be this far inside the edge to count: a box's "
        "bottom wobbles a few pixels, and a rider along the curb is on the road.",
    )


class SpeedCalibration(_Strict):
    """Image ↔ road-plane correspondences for speed measurement, and the limits per class."""

    image_points: tuple[Point, ...] = Field(
        min_length=4, max_length=64, description="Road-surface points in frame pixels (>= 4, not collinear)."
    )
    ground_points_m: tuple[tuple[float, float], ...] = Field(
        min_length=4, max_length=64, description="The same points on the road plane, metres, same order."
    )
    limits_kmh: dict[VehicleClass, Annotated[float, Field(ge=5, le=200)]] = Field(
        min_length=1, description="Speed limit per vehicle class, km/h; classes not listed are not checked."
    )
    zone: Polygon | None = Field(
        None,
        description="Where speed is measured; default: the convex hull of image_points. Speed is measured "
        "only inside that hull (where the calibration holds) even where the zone reaches further.",
    )
    position_noise_px: float = Field(
        3.0, ge=0, le=50, description="Assumed jitter of a vehicle's bottom-centre, pixels (1 sigma)."
    )
    scale_error: float = Field(
        0.03, ge=0, le=0.5, description="Relative uncertainty of the calibration's scale (0.03 = 3 %)."
    )
    window_s: float = Field(1.0, ge=0.3, le=10, description="Time window of the speed fit.")
    min_points: int = Field(5, ge=3, le=300, description="Observed positions needed in the window.")
    confidence_z: float = Field(
        1.645, ge=0, le=5, description="One-sided z of the lower bound (1.645 → 95 %)."
    )
    min_excess_kmh: float = Field(
        5.0, ge=0, le=100, description="The lower bound must exceed the limit by this much (decree: 5)."
    )

    _h: npt.NDArray[np.float64] = PrivateAttr()

    @model_validator(mode="after")
    def _fit(self) -> SpeedCalibration:
        if len(self.image_points) != len(self.ground_points_m):
            raise ValueError(
                f"image_points has {len(self.image_points)} points but ground_points_m has "
                f"{len(self.ground_points_m)}"
            )
        if not all(math.isfinite(c) and abs(c) <= 1e5 for p in self.ground_points_m for c in p):
            raise ValueError("ground_points_m must be finite metres within ±100 km")
        self._h = geometry.fit_homography(self.image_points, self.ground_points_m)
        return self

    @property
    def homography(self) -> npt.NDArray[np.float64]:
        """(3, 3) image → ground (metres) homography."""
        return self._h

    def measurement_zone(self) -> npt.NDArray[np.float64]:
        """(M, 2) polygon where speeds are measured (the speeding rule also keeps to
        `calibrated_area`)."""
        if self.zone is not None:
            return geometry.as_points(self.zone)
        return self.calibrated_area()

    def calibrated_area(self) -> npt.NDArray[np.float64]:
        """(M, 2) convex hull of `image_points`: where the homography interpolates between its points.

        Beyond it, it extrapolates: the points' click errors tilt the fitted plane, and the error of a
        distance grows with how far from the points it is measured (a 6 m patch clicked with 2 px
        errors measures 30-45 m away with a 34 % scale error in 1 install of 20), which no
        `scale_error` covers.
        """
        return geometry.convex_hull(self.image_points)

    def reprojection_error_m(self) -> float:
        """Largest distance (metres) between a ground point and its image point mapped by the fit."""
        mapped = geometry.apply_homography(self._h, self.image_points)
        diff = mapped - np.asarray(self.ground_points_m, dtype=np.float64)
        return float(np.max(np.hypot(diff[:, 0], diff[:, 1])))


class Tolerances(_Strict):
    """Margins of the rules: what a reviewing officer would accept as clear evidence."""

    min_signal_confidence: float = Field(
        0.6, ge=0, le=1, description="Signal readings less confident than this count as unknown."
    )
    amber_grace_s: float = Field(
        0.5, ge=0, le=5, description="Crossing within this long after red began is not a red-light violation."
    )
    signal_settle_s: float = Field(
        1.0,
        ge=0,
        le=10,
        description="The light's state at a crossing is read again this long after it before a violation is "
        "established: a camera's light reader confirms a change after a moment and dates it back.",
    )
    crossing_hysteresis_px: float = Field(
        3.0, ge=0, le=50, description="A vehicle must be this far behind a line before a crossing counts."
    )
    line_end_margin_px: float = Field(
        10.0, ge=0, le=200, description="Crossings this far beyond a stop line's ends still count."
    )
    min_travel_past_line_px: float = Field(
        8.0, ge=0, le=200, description="Stop line: the bottom-centre must stop at least this far past it."
    )
    red_light_min_travel_px: float = Field(
        60.0, ge=5, le=2000, description="Red light: travel past the line that proves it continued through."
    )
    stop_line_confirm_s: float = Field(
        2.0, ge=0, le=60, description="Stop line: how long it must stay stopped past the line on red."
    )
    movement_window_s: float = Field(
        5.0,
        ge=0.5,
        le=60,
        description="Stop lines with exits: how long after crossing (or after its last stop past the line) "
        "a vehicle has to enter an exit before its movement counts as not seen (not fined).",
    )
    motion_window_s: float = Field(
        1.0, ge=0.2, le=10, description="Window over which motion (speed, direction) is measured."
    )
    stationary_speed_px_s: float = Field(
        10.0, ge=0.5, le=200, description="Slower than this over the motion window is stationary."
    )
    min_motion_px: float = Field(
        12.0, ge=1, le=500, description="Displacement over the window needed for a reliable direction."
    )
    jump_px: float = Field(
        20.0,
        ge=1,
        le=1000,
        description="A change of velocity moving a vehicle more than this (and than jump_height_ratio of "
        "its box) in one step is a tracker swap or box flicker, not motion.",
    )
    jump_height_ratio: float = Field(
        0.6, ge=0.05, le=5, description="...as a fraction of the box height (see jump_px)."
    )
    wrong_lane_min_s: float = Field(
        2.0,
        ge=0.2,
        le=60,
        description="Time a forbidden class must travel in a lane for a violation (leaving the lane, or "
        "riding on its edge, starts over: see lanes[].edge_margin_px).",
    )
    max_gap_s: float = Field(
        1.0,
        ge=0.05,
        le=30,
        description="Gaps between observations longer than this break dwell and duration.",
    )
    stitch_gap_s: float = Field(
        1.0, ge=0, le=10, description="A new track id starting this soon after another ended may continue it."
    )
    stitch_radius_px: float = Field(
        40.0,
        ge=0,
        le=500,
        description="...if it starts within this distance of the old one's predicted spot.",
    )
    dedup_window_s: float = Field(
        3.0, ge=0, le=60, description="Same rule, same line/zone, nearby and within this long: one event."
    )
    dedup_radius_px: float = Field(40.0, ge=0, le=500, description="Distance for that duplicate check.")


class Scene(_Strict):
    """Everything the rules need to know about one camera view."""

    camera_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Camera id (events, evidence)."
    )
    name: str = Field("", max_length=200, description="Human-readable name of the view.")
    resolution: tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]] = Field(
        description="Frame width, height in pixels; every coordinate is in this resolution."
    )
    location: Location | None = Field(None, description="Camera position (lat, lon).")
    district: str | None = Field(
        None, max_length=100, description="District (quận/huyện) for review scoping."
    )
    stop_lines: tuple[StopLine, ...] = Field((), max_length=32, description="Stop lines.")
    lights: tuple[LightConfig, ...] = Field((), max_length=32, description="Traffic-light heads.")
    lanes: tuple[Lane, ...] = Field((), max_length=64, description="Lanes.")
    wrong_way_zones: tuple[WrongWayZone, ...] = Field((), max_length=64, description="One-way zones.")
    stop_zones: tuple[StopZone, ...] = Field((), max_length=64, description="No-stopping / no-parking zones.")
    sidewalks: tuple[SidewalkZone, ...] = Field((), max_length=64, description="Sidewalks.")
    speed: SpeedCalibration | None = Field(None, description="Speed calibration and limits.")
    tolerances: Tolerances = Field(default_factory=Tolerances, description="Rule tolerances.")
    disabled_rules: tuple[RuleId, ...] = Field((), description="Rules switched off for this camera.")

    _version: str | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _all_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Scene]) -> Scene:
        # Cross-references are checked on the raw mapping, so that they are reported together with
        # field errors instead of only after every field is valid.
        problems = _reference_problems(data) if isinstance(data, dict) else []
        try:
            scene = handler(data)
        except ValidationError as e:
            if not problems:
                raise
            errors = [_as_init_error(err) for err in e.errors()]
            seen = {tuple(err["loc"]) for err in e.errors()}
            errors += [_init_error(loc, msg, value) for loc, msg, value in problems if loc not in seen]
            raise ValidationError.from_exception_data("Scene", errors) from None
        if problems:
            raise ValidationError.from_exception_data(
                "Scene", [_init_error(loc, msg, value) for loc, msg, value in problems]
            )
        return scene

    @model_validator(mode="after")
    def _in_frame(self, info: ValidationInfo) -> Scene:
        if _frame_of(info) is None:
            # Built without `load_scene`'s context: the per-field frame checks did not run.
            problems = _frame_problems(self)
            if problems:
                raise ValidationError.from_exception_data(
                    "Scene", [_init_error(loc, msg, value) for loc, msg, value in problems]
                )
        return self

    # --- queries ---------------------------------------------------------------------------------

    @property
    def scene_version(self) -> str:
        """sha256 (hex) of the scene file's bytes; for a scene not loaded from a file, of its JSON."""
        if self._version is None:
            self._version = hashlib.sha256(self.model_dump_json().encode()).hexdigest()
        return self._version

    def light(self, light_id: str) -> LightConfig:
        """The light with this id. Raises KeyError."""
        for light in self.lights:
            if light.id == light_id:
                return light
        raise KeyError(light_id)

    def lane(self, lane_id: str) -> Lane:
        """The lane with this id. Raises KeyError."""
        for lane in self.lanes:
            if lane.id == lane_id:
                return lane
        raise KeyError(lane_id)

    def signal_lines(self) -> tuple[StopLine, ...]:
        """Stop lines governed by a light (the ones the signal rules enforce)."""
        return tuple(line for line in self.stop_lines if line.light is not None)

    def rule_status(self) -> dict[RuleId, str | None]:
        """For every rule: None when enabled, else why not (one line)."""
        status: dict[RuleId, str | None] = {}
        restricted = [lane for lane in self.lanes if set(lane.classes) != set(VEHICLE_CLASSES)]
        for rule in RULE_IDS:
            reason: str | None = None
            if rule in self.disabled_rules:
                reason = "disabled in the scene (disabled_rules)"
            elif rule in ("red_light", "stop_line"):
                if not self.stop_lines:
                    reason = "no stop lines"
                elif not self.signal_lines():
                    reason = (
                        "stop lines have no traffic light (add a light with a roi and set stop_lines[].light)"
                    )
            elif rule == "wrong_way" and not self.wrong_way_zones:
                reason = "no wrong-way zones"
            elif rule == "wrong_lane" and not restricted:
                reason = "no lane restricts vehicle classes"
            elif rule == "illegal_stop" and not self.stop_zones:
                reason = "no stop zones"
            elif rule == "sidewalk" and not self.sidewalks:
                reason = "no sidewalks"
            elif rule == "speeding" and self.speed is None:
                reason = "no speed calibration"
            status[rule] = reason
        return status

    def enabled_rules(self) -> tuple[RuleId, ...]:
        """The rules this scene can enforce, in `RULE_IDS` order."""
        return tuple(rule for rule, reason in self.rule_status().items() if reason is None)


Problem = tuple[tuple[int | str, ...], str, Any]


def _frame_problems(scene: Scene) -> list[Problem]:
    """Every point or roi of `scene` outside its frame, as (loc, message, value)."""
    frame = (scene.resolution[0], scene.resolution[1])
    out: list[Problem] = []

    def points(loc: tuple[int | str, ...], pts: tuple[tuple[float, float], ...] | None) -> None:
        for j, (x, y) in enumerate(pts or ()):
            problem = _point_problem(x, y, frame)
            if problem:
                out.append(((*loc, j), problem, (x, y)))

    for k, line in enumerate(scene.stop_lines):
        points(("stop_lines", k, "points"), line.points)
        for j, ex in enumerate(line.exits):
            points(("stop_lines", k, "exits", j, "polygon"), ex.polygon)
    for k, light in enumerate(scene.lights):
        if light.roi is not None:
            problem = _roi_problem(light.roi, frame)
            if problem:
                out.append((("lights", k, "roi"), problem, light.roi))
        if light.lamps is not None:
            for name in ("red", "amber", "green"):
                p = getattr(light.lamps, name)
                if p is not None and (problem := _point_problem(p[0], p[1], frame)):
                    out.append((("lights", k, "lamps", name), problem, p))
    zones: list[tuple[str, tuple[Lane | WrongWayZone | StopZone | SidewalkZone, ...]]] = [
        ("lanes", scene.lanes),
        ("wrong_way_zones", scene.wrong_way_zones),
        ("stop_zones", scene.stop_zones),
        ("sidewalks", scene.sidewalks),
    ]
    for group, items in zones:
        for k, zone in enumerate(items):
            points((group, k, "polygon"), zone.polygon)
    if scene.speed is not None:
        points(("speed", "image_points"), scene.speed.image_points)
        points(("speed", "zone"), scene.speed.zone)
    return out


def _init_error(loc: tuple[int | str, ...], msg: str, value: Any, kind: str = "scene") -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, "{msg}", {"msg": msg}), loc=loc, input=value)


def _as_init_error(err: Any) -> InitErrorDetails:
    """A reported error again, keeping its type (the formatter filters on it)."""
    return _init_error(tuple(err["loc"]), _message(err), err.get("input"), str(err["type"]))


def _reference_problems(raw: dict[str, Any]) -> list[Problem]:
    """Duplicate ids and references to unknown lights or lanes, read from the raw mapping."""
    out: list[Problem] = []

    def items(name: str) -> list[tuple[int, dict[str, Any]]]:
        value = raw.get(name)
        if not isinstance(value, list | tuple):
            return []
        return [(k, item) for k, item in enumerate(value) if isinstance(item, dict)]

    ids: dict[str, set[str]] = {}
    for name in ("stop_lines", "lights", "lanes", "wrong_way_zones", "stop_zones", "sidewalks"):
        seen: set[str] = set()
        for k, item in items(name):
            ident = item.get("id")
            if isinstance(ident, str):
                if ident in seen:
                    out.append(((name, k, "id"), f"duplicate id {ident!r}", ident))
                seen.add(ident)
        ids[name] = seen
    for k, line in items("stop_lines"):
        light = line.get("light")
        if isinstance(light, str) and light not in ids["lights"]:
            out.append((("stop_lines", k, "light"), f"unknown light {light!r}", light))
        lanes = line.get("lanes")
        for j, lane in enumerate(lanes if isinstance(lanes, list | tuple) else ()):
            if isinstance(lane, str) and lane not in ids["lanes"]:
                out.append((("stop_lines", k, "lanes", j), f"unknown lane {lane!r}", lane))
        exits = line.get("exits")
        seen_exits: set[str] = set()
        for j, ex in enumerate(exits if isinstance(exits, list | tuple) else ()):
            if not isinstance(ex, dict):
                continue
            ident, light = ex.get("id"), ex.get("light")
            if isinstance(ident, str):
                if ident in seen_exits:
                    out.append((("stop_lines", k, "exits", j, "id"), f"duplicate exit id {ident!r}", ident))
                seen_exits.add(ident)
            if isinstance(light, str) and light not in ids["lights"]:
                out.append((("stop_lines", k, "exits", j, "light"), f"unknown light {light!r}", light))
    for k, zone in items("stop_zones"):
        light = zone.get("light")
        if isinstance(light, str) and light not in ids["lights"]:
            out.append((("stop_zones", k, "light"), f"unknown light {light!r}", light))
    return out


# --- loading -----------------------------------------------------------------------------------


def _message(err: Any) -> str:
    """An error's message without pydantic's 'Value error, ' prefix."""
    if err.get("type") == "value_error" and "error" in (err.get("ctx") or {}):
        return str(err["ctx"]["error"])
    return str(err["msg"])


def format_scene_error(e: ValidationError, origin: str) -> str:
    """'<origin>: <field>: <problem>; <field>: <problem>; ...', one entry per bad field.

    A list's "too short" complaint caused only by an invalid element is left out: the element's own
    error says what is wrong.
    """
    errors = e.errors()
    locs = [tuple(err["loc"]) for err in errors]
    parts = []
    for err, loc in zip(errors, locs, strict=True):
        if err["type"] == "too_short" and any(other[: len(loc)] == loc and other != loc for other in locs):
            continue
        where = ".".join(str(p) for p in loc) or "(top level)"
        parts.append(f"{where}: {_message(err)}")
    return f"{origin}: " + "; ".join(parts)


def _resolution_hint(raw: dict[str, Any]) -> tuple[int, int] | None:
    res = raw.get("resolution")
    if (
        isinstance(res, list | tuple)
        and len(res) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 8192 for v in res)
    ):
        return int(res[0]), int(res[1])
    return None


def parse_scene(text: str | bytes, origin: str = "scene") -> Scene:
    """Parse scene YAML. `origin` names the source in error messages.

    Raises:
        SceneError: invalid YAML or any invalid field (all of them listed).
    """
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SceneError(f"{origin}:{where} is not valid YAML") from e
    if not isinstance(raw, dict):
        raise SceneError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
    context = {"resolution": _resolution_hint(raw)}
    try:
        scene = Scene.model_validate(raw, context=context)
    except ValidationError as e:
        raise SceneError(format_scene_error(e, origin)) from None
    scene._version = hashlib.sha256(data).hexdigest()
    return scene


def load_scene(path: Path | str) -> Scene:
    """Load and validate a scene file; `Scene.scene_version` is the sha256 of its bytes.

    Logs a warning for each rule the file configures but cannot enforce (e.g. stop lines without a
    traffic light: red_light and stop_line are disabled).

    Raises:
        SceneError: unreadable file, invalid YAML, or invalid fields (each listed with the file name).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SceneError(f"scene file not found: {p}") from None
    except OSError as e:
        raise SceneError(f"cannot read scene file {p}: {e}") from e
    scene = parse_scene(data, str(p))
    for rule, reason in scene.rule_status().items():
        if reason is not None and _configured(scene, rule):
            logger.warning("%s: rule %s disabled: %s", p, rule, reason)
    return scene


def _configured(scene: Scene, rule: RuleId) -> bool:
    """Whether the scene has elements meant for `rule` (so a disabled rule deserves a warning)."""
    if rule in scene.disabled_rules:
        return False
    if rule in ("red_light", "stop_line"):
        return bool(scene.stop_lines)
    return False


# --- checks ------------------------------------------------------------------------------------


def check_scene(scene: Scene, frame: npt.NDArray[np.uint8] | None = None) -> list[str]:
    """Warnings about a valid scene, one line each (empty list: nothing to say).

    Args:
        scene: the scene.
        frame: optional (H, W, 3) BGR frame of the camera, to compare sizes and look at light ROIs.
    """
    out: list[str] = []
    w, h = scene.resolution
    if frame is not None:
        fh, fw = frame.shape[:2]
        if (fw, fh) != (w, h):
            out.append(
                f"the frame is {fw}x{fh} but the scene is drawn for {w}x{h}: coordinates will not match"
            )
    for rule, reason in scene.rule_status().items():
        if reason is not None:
            out.append(f"rule {rule} disabled: {reason}")
    used = {line.light for line in scene.stop_lines} | {zone.light for zone in scene.stop_zones}
    used |= {ex.light for line in scene.stop_lines for ex in line.exits}
    for light in scene.lights:
        if light.id not in used:
            out.append(f"light {light.id} governs no stop line or stop zone")
        if light.roi is not None:
            x1, y1, x2, y2 = light.roi
            if min(x2 - x1, y2 - y1) < 6:
                out.append(f"light {light.id}: roi is only {x2 - x1}x{y2 - y1} px; lamps may not be readable")
            if frame is not None and frame.shape[:2] == (h, w):
                crop = frame[y1:y2, x1:x2]
                if crop.size and float(crop.std()) < 4.0:
                    out.append(f"light {light.id}: roi looks empty (flat pixels) in this frame")
        if light.roi is not None and light.lamps is None:
            out.append(f"light {light.id}: no lamp points; colours will be read by hue over the whole roi")
    for line in scene.stop_lines:
        lf = geometry.StopLineFrame(line.points, line.travel)
        if lf.length < 30:
            out.append(f"stop line {line.id} is only {lf.length:.0f} px long")
        if line.light is None:
            out.append(f"stop line {line.id} has no light: not enforced")
        out.extend(_queue_overlaps(scene, line))
        out.extend(_exit_problems(line, lf))
    if scene.speed is not None:
        err = scene.speed.reprojection_error_m()
        if err > 0.5:
            out.append(
                f"speed calibration: a point maps {err:.2f} m from its ground position; check the pairs"
            )
        # Bicycles have no speeding offence in the decree: no limit needed.
        missing = [c for c in VEHICLE_CLASSES if c not in scene.speed.limits_kmh and c != "bicycle"]
        if missing:
            out.append(f"speed: no limit for {', '.join(missing)}; those classes are not checked")
        out.extend(_speed_coverage(scene.speed))
    for i, lane in enumerate(scene.lanes):
        for other in scene.lanes[i + 1 :]:
            if _overlap(lane.polygon, other.polygon) > 0.3:
                out.append(f"lanes {lane.id} and {other.id} overlap by more than 30 %")
    out.extend(_contrary_zones(scene))
    return out


#: A speed zone corner this close outside the calibration points' hull (pixels) is on it (clicked on the
#: same marks), not beyond it.
ZONE_BEYOND_TOLERANCE_PX = 2.0
#: The calibrated stretch must let a vehicle this far over the highest limit be measured (the decree's
#: top band starts 35 km/h over; plus the 5 km/h margin of the lower bound).
MEASURABLE_OVER_LIMIT_KMH = 40.0
#: Seconds between two evaluations of one vehicle's speed by the speeding rule.
SPEED_EVAL_EVERY_S = 0.2


def _speed_coverage(speed: SpeedCalibration) -> list[str]:
    """Warn about a speed zone that reaches beyond the calibration points (nothing is measured there),
    and about calibration points too close together for a vehicle well over the limit to stay among
    them long enough to be measured."""
    out = []
    hull = speed.calibrated_area()
    if speed.zone is not None:
        zone = geometry.as_points(speed.zone)
        beyond = ~geometry.points_in_polygon(zone, hull)
        far = geometry.distance_to_edges(zone[beyond], hull)
        if (far > ZONE_BEYOND_TOLERANCE_PX).any():
            x0, y0 = zone.min(axis=0)
            x1, y1 = zone.max(axis=0)
            gx, gy = np.meshgrid(np.linspace(x0, x1, 60), np.linspace(y0, y1, 60))
            grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
            grid = grid[geometry.points_in_polygon(grid, zone)]
            share = 1.0 - float(geometry.points_in_polygon(grid, hull).mean()) if len(grid) else 1.0
            out.append(
                f"speed zone reaches up to {float(far.max()):.0f} px beyond the calibration points (about "
                f"{share:.0%} of it): speed is not measured there, where the calibration would be "
                "extrapolated; place ground points over the whole stretch where speed is to be measured"
            )
    ground = np.asarray(speed.ground_points_m, dtype=np.float64)
    diff = ground[:, None, :] - ground[None, :, :]
    span_m = float(np.hypot(diff[..., 0], diff[..., 1]).max())  # the longest straight path among them
    # A fit needs half a window, and the rule looks at a vehicle's window only every SPEED_EVAL_EVERY_S.
    need_s = 0.5 * speed.window_s + SPEED_EVAL_EVERY_S
    reach_kmh = 3.6 * span_m / need_s
    if reach_kmh < max(speed.limits_kmh.values()) + MEASURABLE_OVER_LIMIT_KMH:
        out.append(
            f"speed calibration points span at most {span_m:.1f} m: a vehicle faster than {reach_kmh:.0f} "
            f"km/h is among them for less than the {need_s:.1f} s a measurement needs and is not measured; "
            "place ground points over a longer stretch of the road"
        )
    return out


def _contrary_zones(scene: Scene) -> list[str]:
    """Warn about wrong-way zones whose allowed direction is more than 90° from a lane they cover: every
    vehicle following that lane would be fined for driving the wrong way (usually one of the two
    directions was given the wrong way round)."""
    out = []
    for zone in scene.wrong_way_zones:
        for lane in scene.lanes:
            (zx, zy), (lx, ly) = zone.direction, lane.direction
            angle = math.degrees(math.acos(max(-1.0, min(1.0, zx * lx + zy * ly))))
            if angle > 90.0 and _overlap(zone.polygon, lane.polygon) > 0.2:
                out.append(
                    f"wrong-way zone {zone.id} allows {_direction_text(zone.direction)} but lane {lane.id} "
                    f"under it runs {_direction_text(lane.direction)} ({angle:.0f}° apart): every vehicle "
                    "following the lane would be fined for wrong way; check both directions"
                )
    return out


def _direction_text(direction: tuple[float, float]) -> str:
    """'up', 'down', 'left', 'right' or '[dx, dy]' of a unit direction."""
    for name, (nx, ny) in _DIRECTION_NAMES.items():
        if math.isclose(direction[0], nx, abs_tol=1e-6) and math.isclose(direction[1], ny, abs_tol=1e-6):
            return name
    return f"[{direction[0]:.2f}, {direction[1]:.2f}]"


def _queue_overlaps(scene: Scene, line: StopLine) -> list[str]:
    """Warn about stop zones covering the queue behind `line` without a light to excuse queueing."""
    out = []
    pts = np.asarray(line.points, dtype=np.float64)
    samples = np.concatenate([np.linspace(a, b, 6) for a, b in itertools.pairwise(pts)])
    behind = samples - 25.0 * np.asarray(line.travel)
    for zone in scene.stop_zones:
        if zone.light is None and geometry.points_in_polygon(behind, zone.polygon).any():
            out.append(
                f"stop zone {zone.id} covers the queue behind stop line {line.id} but has no light: "
                "vehicles waiting at red would be reported as stopped"
            )
    return out


def _exit_problems(line: StopLine, frame: geometry.StopLineFrame) -> list[str]:
    """Warn about exits that cannot decide a movement the way the installer meant."""
    out: list[str] = []
    if not line.exits:
        return out
    permitting = [ex.id for ex in line.exits if not ex.governed_by_line]
    if not permitting:
        out.append(
            f"stop line {line.id}: no exit has a light or free: every crossing on red is judged as without "
            "exits (they only name the movement)"
        )
    elif len(permitting) == len(line.exits):
        out.append(
            f"stop line {line.id}: every exit has a light or free: while one is permitted, a vehicle "
            "crossing on red into no exit (e.g. straight on) is not fined; draw the other movements as exits "
            "without a light"
        )
    for ex in line.exits:
        across, _ = frame.coords(np.asarray(ex.polygon, dtype=np.float64))
        if float(across.max()) <= 0.0:
            out.append(
                f"exit {ex.id} of stop line {line.id} lies behind the line: vehicles are looked for in exits "
                "only after they crossed"
            )
    for i, ex in enumerate(line.exits):
        for other in line.exits[i + 1 :]:
            if _overlap(ex.polygon, other.polygon) > 0.3:
                out.append(
                    f"exits {ex.id} and {other.id} of stop line {line.id} overlap by more than 30 %: the "
                    "first one a vehicle enters decides its movement"
                )
    return out


def _overlap(a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]) -> float:
    """Share of the smaller polygon's bounding-box samples inside the other (rough, for warnings)."""
    pa, pb = np.asarray(a), np.asarray(b)
    small, big = (pa, pb) if geometry.polygon_area(pa) <= geometry.polygon_area(pb) else (pb, pa)
    x0, y0 = small.min(axis=0)
    x1, y1 = small.max(axis=0)
    gx, gy = np.meshgrid(np.linspace(x0, x1, 12), np.linspace(y0, y1, 12))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    inside = geometry.points_in_polygon(grid, small)
    if not inside.any():
        return 0.0
    return float(geometry.points_in_polygon(grid[inside], big).mean())
