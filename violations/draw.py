"""Draw a scene over a camera frame: the picture behind ``phatnguoi scene check --out``.

`draw_scene` returns a new image and never modifies its input. Zones are filled translucently with an
outline and their id; stop lines are thick with an arrow in the governed travel direction and the id
of their light, and their exits (movements) are zones naming the light that governs them (or "free");
light ROIs are boxes with their lamp points; lanes and wrong-way zones show their direction as an
arrow. Colours (BGR) are fixed per element kind so pictures of different cameras read
the same. When the image's size differs from the scene's resolution, coordinates are scaled to it.
Only ids are written (ASCII): OpenCV's fonts cannot render Vietnamese names.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from violations.scene import Scene

Image = npt.NDArray[np.uint8]
Color = tuple[int, int, int]

LANE: Color = (255, 160, 40)
WRONG_WAY: Color = (200, 60, 200)
STOP_ZONE: Color = (40, 40, 230)
SIDEWALK: Color = (0, 160, 255)
STOP_LINE: Color = (255, 255, 255)
STOP_LINE_UNGOVERNED: Color = (160, 160, 160)
LIGHT: Color = (0, 255, 255)
SPEED: Color = (80, 220, 80)
EXIT: Color = (160, 230, 0)
LAMP: dict[str, Color] = {"red": (0, 0, 255), "amber": (0, 170, 255), "green": (0, 200, 0)}


def draw_scene(image: Image, scene: Scene, alpha: float = 0.25) -> Image:
    """A copy of `image` with `scene` drawn over it.

    Args:
        image: (H, W, 3) uint8 BGR frame of the camera (any size; coordinates are scaled to it).
        scene: the scene to draw.
        alpha: opacity of zone fills, 0..1.

    Raises:
        ValueError: `image` is not an (H, W, 3) uint8 array.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    sx, sy = w / scene.resolution[0], h / scene.resolution[1]
    thick = max(1, round(min(w, h) / 360))
    font = 0.4 * thick

    def pts(points: tuple[tuple[float, float], ...] | npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        a = np.asarray(points, dtype=np.float64) * (sx, sy)
        out: npt.NDArray[np.int32] = np.round(a).astype(np.int32).reshape(-1, 1, 2)
        return out

    def label(img: Image, text: str, at: tuple[float, float], color: Color) -> None:
        x, y = round(at[0] * sx), round(at[1] * sy)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        x = min(max(x, 0), max(w - tw - 2, 0))
        y = min(max(y, th + 2), h - base - 1)
        cv2.rectangle(img, (x - 1, y - th - 2), (x + tw + 1, y + base), (0, 0, 0), -1)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font, color, thick, cv2.LINE_AA)

    def arrow(img: Image, at: tuple[float, float], direction: tuple[float, float], color: Color) -> None:
        length = 0.06 * min(w, h)
        x, y = at[0] * sx, at[1] * sy
        tip = (round(x + direction[0] * length), round(y + direction[1] * length))
        cv2.arrowedLine(img, (round(x), round(y)), tip, color, thick + 1, cv2.LINE_AA, tipLength=0.35)

    out = image.copy()
    fill = image.copy()
    zones: list[tuple[str, tuple[tuple[float, float], ...], Color, tuple[float, float] | None]] = []
    zones += [(f"lane {z.id}", z.polygon, LANE, z.direction) for z in scene.lanes]
    zones += [(f"one-way {z.id}", z.polygon, WRONG_WAY, z.direction) for z in scene.wrong_way_zones]
    zones += [(f"{z.kind} {z.id}", z.polygon, STOP_ZONE, None) for z in scene.stop_zones]
    zones += [(f"sidewalk {z.id}", z.polygon, SIDEWALK, None) for z in scene.sidewalks]
    for line in scene.stop_lines:
        for ex in line.exits:
            by = "free" if ex.free else f"<- {ex.light or line.light}"
            zones.append((f"exit {line.id}.{ex.id} {by}", ex.polygon, EXIT, None))
    for _, poly, color, _ in zones:
        cv2.fillPoly(fill, [pts(poly)], color)
    out = np.asarray(cv2.addWeighted(fill, alpha, out, 1 - alpha, 0), dtype=np.uint8)
    for k, (name, poly, color, direction) in enumerate(zones):
        cv2.polylines(out, [pts(poly)], True, color, thick, cv2.LINE_AA)
        centre = np.asarray(poly, dtype=np.float64).mean(axis=0)
        if direction is not None:
            # Offset the arrows of overlapping zones (a lane and a one-way zone often coincide).
            arrow(out, (centre[0] + 12 * (k % 3), centre[1] + 12 * (k % 3)), direction, color)
        label(out, name, (centre[0] - 20, centre[1] - 8 + 14 * (k % 2)), color)
    if scene.speed is not None:
        cv2.polylines(out, [pts(scene.speed.measurement_zone())], True, SPEED, thick, cv2.LINE_AA)
        for j, p in enumerate(scene.speed.image_points):
            c = pts((p,))[0, 0]
            cv2.drawMarker(out, (int(c[0]), int(c[1])), SPEED, cv2.MARKER_CROSS, 10 * thick, thick)
            label(out, str(j), (p[0] + 4, p[1] - 4), SPEED)
    for line in scene.stop_lines:
        color = STOP_LINE if line.light is not None else STOP_LINE_UNGOVERNED
        cv2.polylines(out, [pts(line.points)], False, (0, 0, 0), thick + 4, cv2.LINE_AA)
        cv2.polylines(out, [pts(line.points)], False, color, thick + 2, cv2.LINE_AA)
        mid = np.asarray(line.points, dtype=np.float64).mean(axis=0)
        arrow(out, (mid[0], mid[1]), line.travel, color)
        text = f"stop {line.id}" + (f" <- {line.light}" if line.light else " (no light)")
        if line.lanes:
            text += f" [{','.join(line.lanes)}]"
        first = line.points[0]
        label(out, text, (first[0], first[1] - 8), color)
    for light in scene.lights:
        if light.roi is None:
            continue
        x1, y1, x2, y2 = light.roi
        cv2.rectangle(out, (round(x1 * sx), round(y1 * sy)), (round(x2 * sx), round(y2 * sy)), LIGHT, thick)
        if light.lamps is not None:
            for name in ("red", "amber", "green"):
                p = getattr(light.lamps, name)
                if p is not None:
                    c = pts((p,))[0, 0]
                    cv2.circle(out, (int(c[0]), int(c[1])), 3 * thick, LAMP[name], thick, cv2.LINE_AA)
        label(out, f"light {light.id}", (x1 - 60, y2 + 14), LIGHT)
    return out
