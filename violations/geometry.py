"""Plane geometry for scenes and rules: polygons, stop-line coordinates, directions, homographies.

Pure numpy, vectorised over points (the rules call these once per frame for every live track at
once). Image coordinates are pixels with the origin at the top left and y pointing down.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def as_points(points: npt.ArrayLike) -> F64:
    """(N, 2) float64 view of `points`. Raises ValueError for any other shape."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (2,):
        arr = arr.reshape(1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got {arr.shape}")
    return arr


def polygon_area(polygon: npt.ArrayLike) -> float:
    """Unsigned area of a simple polygon given as (M, 2) vertices (shoelace formula)."""
    p = as_points(polygon)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def points_in_polygon(points: npt.ArrayLike, polygon: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """(N,) bool: which of (N, 2) `points` lie inside the (M, 2) `polygon` (even-odd rule).

    Points exactly on an edge may fall either way; zones are drawn with margins, so that is harmless.
    """
    p = as_points(points)
    poly = as_points(polygon)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    x = p[:, 0:1]
    y = p[:, 1:2]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    # An edge crosses the horizontal ray to the right of the point when it straddles the point's y
    # and its x at that y is right of the point.
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    crossings = straddles & (x < x_at)
    inside: npt.NDArray[np.bool_] = np.count_nonzero(crossings, axis=1) % 2 == 1
    return inside


def distance_to_edges(points: npt.ArrayLike, polygon: npt.ArrayLike) -> F64:
    """(N,) distance from each of (N, 2) `points` to the nearest edge of the (M, 2) `polygon`."""
    p = as_points(points)
    poly = as_points(polygon)
    if len(p) == 0:
        return np.zeros(0)
    a = poly[None, :, :]
    ab = np.roll(poly, -1, axis=0)[None, :, :] - a
    ap = p[:, None, :] - a
    length2 = np.maximum((ab**2).sum(axis=2), 1e-12)
    t = np.clip((ap * ab).sum(axis=2) / length2, 0.0, 1.0)
    nearest = a + t[:, :, None] * ab
    d: F64 = np.sqrt(((p[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)
    return d


def unit(vector: npt.ArrayLike) -> F64:
    """(2,) unit vector. Raises ValueError for a zero or non-finite vector."""
    v = np.asarray(vector, dtype=np.float64).reshape(2)
    n = float(np.hypot(v[0], v[1]))
    if not math.isfinite(n) or n == 0.0:
        raise ValueError(f"direction must be a non-zero vector, got {v.tolist()}")
    out: F64 = v / n
    return out


def angle_deg(vectors: npt.ArrayLike, reference: npt.ArrayLike) -> F64:
    """(N,) angles in degrees (0..180) between each of (N, 2) `vectors` and a (2,) `reference`.

    A zero vector has angle 0 (no motion is never "against" anything).
    """
    v = as_points(vectors)
    r = unit(reference)
    norm = np.hypot(v[:, 0], v[:, 1])
    cos = np.divide(v @ r, norm, out=np.ones(len(v)), where=norm > 0)
    out: F64 = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


class StopLineFrame:
    """Coordinates of points relative to a stop line (a polyline) and the direction that crosses it.

    For every point, `across` is the signed perpendicular distance in pixels to the nearest segment,
    positive on the far side (past the line, in the travel direction) and negative on the approach
    side; `along` is the arc-length position of the point's projection on the polyline (0 at the
    first vertex, `length` at the last), unclamped at both ends so points beside the line's ends
    show as < 0 or > length.
    """

    def __init__(self, polyline: npt.ArrayLike, travel: npt.ArrayLike) -> None:
        """Args:
        polyline: (K, 2) vertices, K >= 2.
        travel: (2,) image vector of the travel direction that crosses the line (e.g. (0, -1) for
            traffic moving up the image). Each segment's far side is the side `travel` points to.

        Raises:
            ValueError: fewer than 2 vertices, a zero-length segment, or a travel direction parallel
                to a segment.
        """
        pts = as_points(polyline)
        if len(pts) < 2:
            raise ValueError("a stop line needs at least 2 points")
        a = pts[:-1]
        d = pts[1:] - a
        seg_len = np.hypot(d[:, 0], d[:, 1])
        if np.any(seg_len <= 0):
            raise ValueError("a stop line has two identical consecutive points")
        t = unit(travel)
        normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / seg_len[:, None]
        facing = normal @ t
        if np.any(np.abs(facing) < 0.2):
            raise ValueError("the travel direction runs along the stop line instead of across it")
        # Flip each segment's normal to point to the far side.
        self.normal: F64 = normal * np.sign(facing)[:, None]
        self.a: F64 = a
        self.d: F64 = d
        self.seg_len: F64 = seg_len
        self.cum: F64 = np.concatenate([[0.0], np.cumsum(seg_len)[:-1]])
        self.length = float(seg_len.sum())
        self.travel: F64 = t

    def coords(self, points: npt.ArrayLike) -> tuple[F64, F64]:
        """(across, along), each (N,), for (N, 2) `points`; see the class docstring."""
        p = as_points(points)
        rel = p[:, None, :] - self.a[None, :, :]  # (N, S, 2)
        t = np.einsum("nsk,sk->ns", rel, self.d) / (self.seg_len**2)[None, :]
        tc = np.clip(t, 0.0, 1.0)
        closest = self.a[None, :, :] + tc[:, :, None] * self.d[None, :, :]
        dist = np.hypot(p[:, None, 0] - closest[:, :, 0], p[:, None, 1] - closest[:, :, 1])
        best = np.argmin(dist, axis=1)
        rows = np.arange(len(p))
        across = np.einsum("nk,nk->n", rel[rows, best], self.normal[best])
        n_seg = len(self.seg_len)
        # Interior segments clamp the projection; the end segments extend past the line's ends.
        lo = np.where(best == 0, -np.inf, 0.0)
        hi = np.where(best == n_seg - 1, np.inf, 1.0)
        t_best = np.clip(t[rows, best], lo, hi)
        along = self.cum[best] + t_best * self.seg_len[best]
        return across, along


def fit_homography(image_points: npt.ArrayLike, ground_points: npt.ArrayLike) -> F64:
    """(3, 3) homography H with ground ~ H @ image, by normalised DLT (least squares for N > 4).

    Args:
        image_points: (N, 2) pixels, N >= 4, no three of the first four collinear.
        ground_points: (N, 2) metres on the road plane, same order.

    Raises:
        ValueError: mismatched or too few points, or a degenerate configuration.
    """
    src = as_points(image_points)
    dst = as_points(ground_points)
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} image points but {len(dst)} ground points")
    if len(src) < 4:
        raise ValueError(f"a homography needs at least 4 point pairs, got {len(src)}")

    def normaliser(p: F64) -> F64:
        c = p.mean(axis=0)
        s = np.sqrt(2.0) / max(float(np.mean(np.hypot(*(p - c).T))), 1e-12)
        return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1.0]])

    ts, td = normaliser(src), normaliser(dst)
    s = apply_homography(ts, src)
    d = apply_homography(td, dst)
    n = len(s)
    a = np.zeros((2 * n, 9))
    a[0::2, 0:2] = s
    a[0::2, 2] = 1
    a[0::2, 6:8] = -d[:, 0:1] * s
    a[0::2, 8] = -d[:, 0]
    a[1::2, 3:5] = s
    a[1::2, 5] = 1
    a[1::2, 6:8] = -d[:, 1:2] * s
    a[1::2, 8] = -d[:, 1]
    _, sv, vt = np.linalg.svd(a)
    # The solution is the null vector; a second (near-)null vector means the points do not pin H down.
    if sv[-2] < 1e-9 * sv[0]:
        raise ValueError("the calibration points are degenerate (collinear or repeated)")
    hn = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ hn @ ts
    if abs(h[2, 2]) < 1e-12:
        raise ValueError("the calibration points are degenerate")
    h = h / h[2, 2]
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-15:
        raise ValueError("the calibration points are degenerate")
    return np.asarray(h, dtype=np.float64)


def apply_homography(h: npt.ArrayLike, points: npt.ArrayLike) -> F64:
    """(N, 2) images of (N, 2) `points` under the (3, 3) homography `h`."""
    m = np.asarray(h, dtype=np.float64)
    p = as_points(points)
    w = p @ m[:2, :2].T + m[:2, 2]
    z = p @ m[2, :2] + m[2, 2]
    return np.asarray(w / z[:, None])


def _homography_singular_values(h: npt.ArrayLike, points: npt.ArrayLike) -> tuple[F64, F64]:
    """(smallest, largest), each (N,): singular values of the 2x2 Jacobian of `h` at (N, 2) `points`."""
    m = np.asarray(h, dtype=np.float64)
    p = as_points(points)
    x, y = p[:, 0], p[:, 1]
    z = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    u = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    v = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    j11 = (m[0, 0] * z - u * m[2, 0]) / z**2
    j12 = (m[0, 1] * z - u * m[2, 1]) / z**2
    j21 = (m[1, 0] * z - v * m[2, 0]) / z**2
    j22 = (m[1, 1] * z - v * m[2, 1]) / z**2
    # Singular values of [[a, b], [c, d]] in closed form: their product is |det|.
    s1 = j11**2 + j12**2 + j21**2 + j22**2
    det = np.abs(j11 * j22 - j12 * j21)
    largest = np.sqrt((s1 + np.sqrt(np.maximum(s1**2 - 4 * det**2, 0.0))) / 2)
    smallest = det / np.maximum(largest, 1e-300)
    return np.asarray(smallest), np.asarray(largest)


def homography_scale(h: npt.ArrayLike, points: npt.ArrayLike) -> F64:
    """(N,) largest local scale (metres per pixel) of `h` at each point.

    The larger singular value of the 2x2 Jacobian of the mapping: a position error of k pixels in any
    direction moves the ground point by at most about k times this.
    """
    return _homography_singular_values(h, points)[1]


def homography_min_scale(h: npt.ArrayLike, points: npt.ArrayLike) -> F64:
    """(N,) smallest local scale (metres per pixel) of `h` at each point.

    The smaller singular value of the 2x2 Jacobian: the scale along the road direction that is not
    foreshortened, parallel to the image plane (across the road for a camera looking along it). On an
    oblique view it grows in proportion to the distance from the camera, as the pixel size of an
    upright object shrinks in inverse proportion, so pixels times this scale measure an upright object
    in metres wherever it stands; the largest scale grows with the square of the distance instead.
    """
    return _homography_singular_values(h, points)[0]


def convex_hull(points: npt.ArrayLike) -> F64:
    """(M, 2) convex hull of (N, 2) points, counter-clockwise in image coordinates (monotone chain)."""
    p = sorted({(float(x), float(y)) for x, y in as_points(points)})
    if len(p) <= 2:
        return as_points(p) if p else np.zeros((0, 2))

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list[tuple[float, float]] = []
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return as_points(lower[:-1] + upper[:-1])
