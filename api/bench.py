"""`bench api`: fill a database with synthetic violations, then time the real server on it.

What it measures, through a real uvicorn server process on 127.0.0.1 (one worker) and plain HTTP/1.1
keep-alive connections:
- latency (p50/p95) of the review list as an officer (district-scoped): first page, first page of
  `status=new`, and deep keyset pages (a cursor at a random point of the year);
- latency of plate search as that officer: exact, prefix wildcard (`30A*`), suffix wildcard
  (`*12345`), fuzzy distance 1, fuzzy distance 2 (the bounded scan: one page);
- ingest rate: signed evidence packages of ~`evidence_kb` KB each (3 stills + a plate crop), one
  client sequentially and `ingest_clients` clients at once.
Every list/search request also writes its audit entry, as in production.

The synthetic data (`fill_violations`): ~50 cameras in 10 districts of Hanoi, plates in the
Vietnamese formats (cars `30A-123.45`, motorbikes `29-B1 123.45`, old 4-digit numbers; 60 % Hanoi
codes; repeat offenders), rush-hour peaks over one year, 8 % unread plates, older violations mostly
decided. It is bulk-inserted (COPY on PostgreSQL, executemany on SQLite), then ANALYZEd. A database
that already holds enough rows from an earlier run is not filled again.

Use a scratch database: it is migrated and filled (bench districts, cameras, users and a device are
added beside whatever is there). From Python:

    python -c "import json, api.bench as b; print(json.dumps(b.bench_api('sqlite:///bench.db'), indent=1))"
    python -c "... b.bench_api('postgresql://user:pw@127.0.0.1/bench') ..."

`phatnguoi bench api` calls `bench_api`. Targets (issue 5): list/search p95 <= 50 ms on PostgreSQL,
ingest >= 100 violations/s.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import math
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select, text

from api import admin
from api.db import make_engine
from api.models import User, Violation
from api.pagination import Cursor
from api.security import create_access_token
from api.settings import Settings
from violations.manifest import canonical_bytes, public_key_pem, sign

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

N_DISTRICTS = 10
N_CAMERAS = 50
EVENT_PREFIX = "bench-"
YEAR_END = datetime(2026, 11, 1, tzinfo=UTC)
FILL_CHUNK = 50_000
# Hanoi, roughly: cameras are spread over this box.
_LAT, _LON = (20.95, 21.08), (105.75, 105.90)
_RULES = (
    ("red_light", "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP", 45),
    ("stop_line", "Điểm a khoản 1 Điều 6 Nghị định 168/2024/NĐ-CP", 20),
    ("wrong_lane", "Điểm c khoản 4 Điều 6 Nghị định 168/2024/NĐ-CP", 15),
    ("speeding", "Điểm a khoản 5 Điều 6 Nghị định 168/2024/NĐ-CP", 10),
    ("wrong_way", "Điểm d khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP", 5),
    ("illegal_stop", "Điểm đ khoản 2 Điều 6 Nghị định 168/2024/NĐ-CP", 3),
    ("sidewalk", "Điểm c khoản 3 Điều 7 Nghị định 168/2024/NĐ-CP", 2),
)
_CLASSES = (("motorcycle", 65), ("car", 28), ("truck", 4), ("bus", 3))
# Hour-of-day weights (local time): morning and evening rush hours.
_HOURS = (1, 1, 1, 1, 1, 2, 5, 9, 10, 6, 4, 4, 5, 4, 4, 5, 7, 10, 9, 6, 4, 3, 2, 1)
_HANOI_CODES = ("29", "30", "31", "32", "33", "40")
_SERIES = "ABCDEFGHKLMNPSTUVXYZ"
_COLUMNS = (
    "event_id", "rule", "legal_reference", "camera_id", "district_id", "device_id", "occurred_at",
    "track_id", "frame_index", "vehicle_class", "box_xyxy", "details", "lat", "lon", "scene_version",
    "plate_text", "plate_compact", "plate_formatted", "plate_confidence", "plate_valid", "plate_lines",
    "plate_key", "status", "reviewed_by", "reviewed_at", "decision_reason", "manifest",
    "manifest_sha256", "signature", "received_at",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchDevice:
    """An edge device of the bench: its id, API key and signing key."""

    id: str
    key: str
    private_key: Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class BenchWorld:
    """What the bench registered: cameras by district, one device per district, two users."""

    cameras: dict[str, tuple[str, float, float]]  # camera id -> (district id, lat, lon)
    devices: dict[str, BenchDevice]  # camera id -> its device
    officer_id: int
    officer_district: str
    admin_id: int


def _ensure_user(settings: Settings, username: str, role: str, district: str | None) -> int:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            uid = conn.scalar(select(User.id).where(User.username == username))
    finally:
        engine.dispose()
    if uid is not None:
        return int(uid)
    return admin.add_user(settings, username, secrets.token_urlsafe(24), role, district)


def setup_world(settings: Settings, rng: random.Random) -> BenchWorld:
    """Migrate the database and register the bench's districts, cameras, users and a new device."""
    admin.upgrade_db(settings)
    cameras: dict[str, tuple[str, float, float]] = {}
    for d in range(N_DISTRICTS):
        admin.add_district(settings, f"bench-d{d:02d}", f"Bench district {d}")
    for c in range(N_CAMERAS):
        district = f"bench-d{c % N_DISTRICTS:02d}"
        lat, lon = round(rng.uniform(*_LAT), 5), round(rng.uniform(*_LON), 5)
        cid = f"bench-cam-{c:02d}"
        admin.add_camera(settings, cid, district=district, lat=lat, lon=lon)
        cameras[cid] = (district, lat, lon)
    # One device per district (5 cameras each), as a site with one edge box per few intersections.
    devices: dict[str, BenchDevice] = {}
    run = secrets.token_hex(3)
    for d in range(N_DISTRICTS):
        own = [c for c, (district, _, _) in cameras.items() if district == f"bench-d{d:02d}"]
        key = Ed25519PrivateKey.generate()
        device_id = f"bench-dev-{run}-{d:02d}"
        device = BenchDevice(device_id, admin.add_device(settings, device_id, own, public_key_pem(key)), key)
        devices.update(dict.fromkeys(own, device))
    officer_id = _ensure_user(settings, "bench-officer", "officer", "bench-d00")
    admin_id = _ensure_user(settings, "bench-admin", "admin", None)
    return BenchWorld(cameras, devices, officer_id, "bench-d00", admin_id)


def synthetic_plate(rng: random.Random) -> str:
    """A compact Vietnamese plate: `30A12345` (car), `29B112345` (motorbike), old 4-digit numbers."""
    code = rng.choice(_HANOI_CODES) if rng.random() < 0.6 else f"{rng.choice(range(11, 100)):02d}"
    if code in ("13", "42", "44", "45", "46", "87", "91", "96"):
        code = "30"
    digits = 5 if rng.random() < 0.85 else 4
    number = f"{rng.randrange(10**digits):0{digits}d}"
    series = rng.choice(_SERIES)
    if rng.random() < 0.65:  # motorbike: letter + digit 1-9
        series += str(rng.randrange(1, 10))
    return code + series + number


def _weighted(pairs: tuple[tuple[Any, ...], ...]) -> tuple[list[Any], list[int]]:
    return [p[:-1] if len(p) > 2 else p[0] for p in pairs], [int(p[-1]) for p in pairs]


def synthetic_rows(
    world: BenchWorld, start: int, n: int, rng: random.Random, plate_pool: list[str]
) -> Iterator[tuple[Any, ...]]:
    """`n` violation rows (values in `_COLUMNS` order), numbered from `start`."""
    rules, rule_w = _weighted(_RULES)
    classes, class_w = _weighted(_CLASSES)
    camera_ids = sorted(world.cameras)
    # Busy intersections see more violations (Zipf-like weights).
    camera_w = [1.0 / (1 + i) ** 0.7 for i in range(len(camera_ids))]
    hours = list(range(24))
    recent = YEAR_END - timedelta(days=30)
    for i in range(start, start + n):
        day = rng.randrange(365)
        local_hour = rng.choices(hours, _HOURS)[0]
        occurred = (
            YEAR_END
            - timedelta(days=365 - day)
            + timedelta(hours=local_hour - 7, seconds=rng.randrange(3600), microseconds=rng.randrange(10**6))
        )
        cam = rng.choices(camera_ids, camera_w)[0]
        district, lat, lon = world.cameras[cam]
        rule, legal = rng.choices(rules, rule_w)[0]
        vclass = rng.choices(classes, class_w)[0]
        plate: str | None = None
        if rng.random() >= 0.08:
            # Repeat offenders: a fifth of the violations come from 5 % of the plates (about 12 each
            # at a million rows; the others about 2 each).
            frequent = rng.random() < 0.2
            plate = plate_pool[rng.randrange(len(plate_pool) // 20 if frequent else len(plate_pool))]
        r = rng.random()
        if occurred < recent:
            status = "confirmed" if r < 0.7 else "rejected" if r < 0.9 else "new"
        else:
            status = "new" if r < 0.7 else "confirmed" if r < 0.92 else "rejected"
        decided = status != "new"
        event_id = f"{EVENT_PREFIX}{i:010d}"
        yield (
            event_id, rule, legal, cam, district, world.devices[cam].id, occurred,
            rng.randrange(1, 10**6), rng.randrange(10**7), vclass, "[100.0,200.0,300.0,400.0]", "{}",
            lat, lon, "0" * 64,
            plate, plate, plate, round(rng.uniform(0.5, 0.99), 3) if plate else None,
            plate is not None, 1 if plate and len(plate) == 8 else 2 if plate else None, plate,
            status, world.admin_id if decided else None,
            occurred + timedelta(hours=rng.uniform(1, 72)) if decided else None,
            ("duplicate" if status == "rejected" else None), '{"synthetic":true}',
            hashlib.sha256(event_id.encode()).hexdigest(), "synthetic", occurred + timedelta(seconds=5),
        )  # fmt: skip


def _bench_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        n = conn.scalar(
            select(func.count()).select_from(Violation).where(Violation.event_id.like(f"{EVENT_PREFIX}%"))
        )
    return int(n or 0)


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        # The storage format of SQLAlchemy's SQLite DateTime (naive UTC), so comparisons match.
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def fill_violations(
    engine: Engine, world: BenchWorld, rows: int, *, seed: int = 0, progress: Progress | None = None
) -> float:
    """Bulk-insert synthetic violations until the database holds `rows` of them; returns seconds spent.

    PostgreSQL: COPY. SQLite: executemany in one transaction per chunk of 50,000 rows.
    """
    have = _bench_rows(engine)
    if have >= rows:
        return 0.0
    rng = random.Random(seed * 7919 + have)
    pool = [synthetic_plate(rng) for _ in range(max(rows // 3, 100))]
    t0 = time.perf_counter()
    postgresql = engine.dialect.name == "postgresql"
    cols = ", ".join(_COLUMNS)
    raw = engine.raw_connection()
    try:
        dbapi: Any = raw.driver_connection
        for start in range(have, rows, FILL_CHUNK):
            n = min(FILL_CHUNK, rows - start)
            chunk = synthetic_rows(world, start, n, rng, pool)
            if postgresql:
                with dbapi.cursor() as cur, cur.copy(f"COPY violations ({cols}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
                dbapi.commit()
            else:
                marks = ", ".join("?" * len(_COLUMNS))
                dbapi.execute("BEGIN IMMEDIATE")
                dbapi.executemany(
                    f"INSERT INTO violations ({cols}) VALUES ({marks})",
                    (tuple(_sqlite_value(v) for v in row) for row in chunk),
                )
                dbapi.execute("COMMIT")
            if progress:
                progress(f"filled {start + n:,}/{rows:,} violations")
    finally:
        raw.close()
    with engine.connect() as conn:
        if postgresql:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE violations")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------------
# Server and HTTP
# ---------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def live_server(settings: Settings, log_path: Path, workers: int = 1) -> Iterator[int]:
    """uvicorn (`workers` processes) in a subprocess on a free loopback port; yields the port.

    Raises:
        RuntimeError: the server did not answer /healthz within 60 s (its log is in the message).
    """
    port = _free_port()
    env = {
        **os.environ,
        "PHATNGUOI_DATABASE_URL": settings.database_url,
        "PHATNGUOI_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "PHATNGUOI_EVIDENCE_DIR": str(settings.evidence_dir),
    }
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        conn.close()
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"bench server did not start: {log_path.read_text(errors='replace')[-2000:]}"
                    )
                time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Client:
    """One keep-alive HTTP/1.1 connection (the standard library's; no third-party client needed)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = headers

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request; returns (status, body)."""
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)

    def q(p: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))]

    return {
        "p50": round(q(0.50), 2),
        "p95": round(q(0.95), 2),
        "mean": round(statistics.fmean(s), 2),
        "max": round(s[-1], 2),
        "n": len(s),
    }


def _time_queries(client: Client, paths: list[str], warmup: int = 3) -> dict[str, float]:
    for path in paths[:warmup]:
        client.request("GET", path)
    timings = []
    for path in paths:
        t0 = time.perf_counter()
        status, body = client.request("GET", path)
        timings.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status}: {body[:300]!r}")
    return _percentiles(timings)


def _mutate(plate: str, rng: random.Random) -> str:
    i = rng.randrange(len(plate))
    c = rng.choice([ch for ch in "0123456789ABCDEFGHKLMNPSTUVXYZ" if ch != plate[i]])
    return plate[:i] + c + plate[i + 1 :]


def _sample_plates(engine: Engine, district: str, n: int, rng: random.Random) -> list[str]:
    with engine.connect() as conn:
        max_id = int(conn.scalar(select(func.max(Violation.id))) or 0)
        plates: list[str] = []
        while len(plates) < n and max_id:
            ids = [rng.randrange(1, max_id + 1) for _ in range(4 * n)]
            plates += [
                str(p)
                for (p,) in conn.execute(
                    select(Violation.plate_key).where(
                        Violation.id.in_(ids),
                        Violation.district_id == district,
                        Violation.plate_key.is_not(None),
                    )
                )
            ]
    return plates[:n]


# ---------------------------------------------------------------------------------------------------
# Ingest
# ---------------------------------------------------------------------------------------------------


def _fake_jpeg(n_bytes: int) -> bytes:
    """Incompressible bytes that start like a JPEG (the server checks the signature bytes only)."""
    return b"\xff\xd8\xff\xe0" + os.urandom(max(n_bytes - 4, 0))


def _package(world: BenchWorld, evidence_kb: int, rng: random.Random) -> tuple[bytes, str, str]:
    """One signed package as a multipart body; returns (body, boundary, the device's API key)."""
    still = evidence_kb * 1024 * 3 // 10
    files = {
        "still_before.jpg": ("still_before", _fake_jpeg(still)),
        "still_at.jpg": ("still_at", _fake_jpeg(still)),
        "still_after.jpg": ("still_after", _fake_jpeg(still)),
        "plate.jpg": ("plate", _fake_jpeg(evidence_kb * 1024 - 3 * still)),
    }
    camera = rng.choice(sorted(world.cameras))
    device = world.devices[camera]
    plate = synthetic_plate(rng)
    now = datetime.now(UTC)
    manifest = {
        "format": "phatnguoi-evidence/1",
        "event_id": str(uuid.uuid4()),  # never the same twice, whatever the seed: ids are unique
        "rule": "red_light",
        "legal_reference": _RULES[0][1],
        "camera_id": camera,
        "track_id": rng.randrange(10**6),
        "frame_index": rng.randrange(10**7),
        "ts": 12.5,
        "vehicle_class": "motorcycle",
        "box_xyxy": [10.0, 20.0, 110.0, 90.0],
        "details": {"line_id": "sl1"},
        "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "device_id": device.id,
        "location": {"lat": world.cameras[camera][1], "lon": world.cameras[camera][2]},
        "district": None,
        "scene_version": "0" * 64,
        "plate": {
            "text": plate,
            "formatted": plate,
            "valid": True,
            "confidence": 0.9,
            "lines": 1,
            "colour": "white",
            "raw": plate,
            "alternatives": [],
        },
        "signal": {"state": "red", "red_for_s": 3.0},
        "models": [],
        "files": [
            {
                "name": name,
                "kind": kind,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "media_type": "image/jpeg",
            }
            for name, (kind, data) in files.items()
        ],
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    manifest_bytes = canonical_bytes(manifest)
    boundary = secrets.token_hex(16)
    parts = [
        (b'name="manifest"; filename="manifest.json"', b"application/json", manifest_bytes),
        (b'name="signature"', None, sign(manifest_bytes, device.private_key).encode()),
    ]
    parts += [
        (f'name="files"; filename="{name}"'.encode(), b"image/jpeg", data)
        for name, (_, data) in files.items()
    ]
    body = b""
    for disposition, ctype, data in parts:
        body += b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; " + disposition + b"\r\n"
        if ctype:
            body += b"Content-Type: " + ctype + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, boundary, device.key


def _ingest(port: int, packages: list[tuple[bytes, str, str]], clients: int) -> float:
    """Post every package (from `clients` connections at once); returns packages per second."""
    chunks = [packages[i::clients] for i in range(clients)]

    def run(chunk: list[tuple[bytes, str, str]]) -> None:
        client = Client(port, {})
        try:
            for body, boundary, key in chunk:
                status, answer = client.request(
                    "POST",
                    "/api/v1/violations",
                    body,
                    {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Device-Key": key},
                )
                if status != 201:
                    raise RuntimeError(f"ingest -> {status}: {answer[:300]!r}")
        finally:
            client.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, chunks))
    return len(packages) / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------


def bench_api(
    database_url: str,
    rows: int = 1_000_000,
    *,
    evidence_dir: Path | None = None,
    samples: int = 200,
    ingest_count: int = 200,
    ingest_clients: int = 4,
    evidence_kb: int = 300,
    workers: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fill `database_url` with `rows` synthetic violations and time the server on it.

    Args:
        database_url: a scratch SQLite or PostgreSQL database (migrated and filled here).
        rows: synthetic violations to have in the database (kept from an earlier run when present).
        evidence_dir: where the server stores ingested evidence (default: a temporary folder, removed).
        samples: timed requests per query kind (after 3 warm-up requests).
        ingest_count: packages posted sequentially, and again with `ingest_clients` clients.
        ingest_clients: concurrent clients of the second ingest run.
        evidence_kb: evidence size per package (3 stills and a plate crop).
        workers: uvicorn worker processes of the server.
        seed: random seed of the synthetic data and queries.
        progress: called with a one-line message at each step.

    Returns:
        JSON-ready dict: database kind, rows, fill time, `latency_ms` per query kind (p50, p95, mean,
        max, n), `ingest` rates (violations/s), the targets and whether they are met.

    Raises:
        RuntimeError: the server did not start or answered a request with an unexpected status.
    """
    say = progress or (lambda _m: None)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="phatnguoi-bench-"))
    settings = Settings(
        database_url=database_url,
        evidence_dir=evidence_dir or tmp / "evidence",
        jwt_secret=secrets.token_urlsafe(48),
    )
    engine = make_engine(database_url)
    kind = engine.dialect.name
    try:
        say("registering bench districts, cameras, users, device")
        world = setup_world(settings, rng)
        say(f"filling {rows:,} violations ({kind})")
        fill_s = fill_violations(engine, world, rows, seed=seed, progress=say)
        total = _bench_rows(engine)
        plates = _sample_plates(engine, world.officer_district, samples, rng)
        if not plates:
            raise RuntimeError("no plates to search: fill the database with more rows")
        plates = [plates[i % len(plates)] for i in range(samples)]
        officer_token, _ = create_access_token(
            user_id=world.officer_id,
            username="bench-officer",
            role="officer",
            secret=settings.jwt_secret.get_secret_value(),
            minutes=120,
        )
        deep = [
            Cursor(YEAR_END - timedelta(seconds=rng.uniform(0, 365 * 86400)), 2**62).encode()
            for _ in range(samples)
        ]
        queries: dict[str, list[str]] = {
            "list_first_page": ["/api/v1/violations?limit=50"] * samples,
            "list_first_page_new": ["/api/v1/violations?limit=50&status=new"] * samples,
            "list_deep_page": [f"/api/v1/violations?limit=50&cursor={c}" for c in deep],
            "search_exact": [f"/api/v1/violations?plate={p}" for p in plates],
            "search_prefix": [f"/api/v1/violations?plate={p[:3]}*" for p in plates],
            "search_suffix": [f"/api/v1/violations?plate=*{p[-5:]}" for p in plates],
            "search_fuzzy1": [f"/api/v1/violations?plate={_mutate(p, rng)}&fuzzy=1" for p in plates],
            "search_fuzzy2": [f"/api/v1/violations?plate={_mutate(p, rng)}&fuzzy=2" for p in plates],
            # the map layer an officer opens: one day of their district's violations, up to 1,000 points
            "map_day": [
                "/api/v1/map/violations.geojson?from={}&to={}&limit=1000".format(
                    (d := YEAR_END - timedelta(days=rng.randint(1, 364))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    (d + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                for _ in range(samples)
            ],
        }
        latency: dict[str, dict[str, float]] = {}
        ingest: dict[str, Any] = {}
        with live_server(settings, tmp / "server.log", workers) as port:
            client = Client(port, {"Authorization": f"Bearer {officer_token}"})
            try:
                for name, paths in queries.items():
                    say(f"timing {name}")
                    latency[name] = _time_queries(client, paths)
            finally:
                client.close()
            say(f"ingest: {ingest_count} packages of {evidence_kb} KB, sequential")
            packages = [_package(world, evidence_kb, rng) for _ in range(2 * ingest_count)]
            ingest["sequential_per_s"] = round(_ingest(port, packages[:ingest_count], 1), 1)
            say(f"ingest: {ingest_count} packages, {ingest_clients} clients")
            ingest["concurrent_per_s"] = round(_ingest(port, packages[ingest_count:], ingest_clients), 1)
            ingest.update(count=ingest_count, clients=ingest_clients, evidence_kb=evidence_kb)
        search_list = [v["p95"] for k, v in latency.items() if k not in ("search_fuzzy2", "map_day")]
        return {
            "database": kind,
            "rows": total,
            "fill_s": round(fill_s, 1),
            "server": f"uvicorn, {workers} worker(s), HTTP/1.1 keep-alive on 127.0.0.1",
            "cpu_count": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "officer_district_rows": _district_rows(engine, world.officer_district),
            "latency_ms": latency,
            "ingest": ingest,
            "targets": {"list_search_p95_ms": 50, "map_p95_ms": 100, "ingest_per_s": 100},
            "meets_targets": {
                "list_search_p95": max(search_list) <= 50,
                "map_p95": latency["map_day"]["p95"] <= 100,
                "ingest": min(ingest["sequential_per_s"], ingest["concurrent_per_s"]) >= 100,
            },
        }
    finally:
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def _district_rows(engine: Engine, district: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(text("SELECT count(*) FROM violations WHERE district_id = :d"), {"d": district}) or 0
        )
