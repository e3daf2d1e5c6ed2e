"""The `phatnguoi` command (Typer). Thin: parse options, call one library function, map our errors to
one line on stderr and a non-zero exit code (STYLE.md §11)."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from phatnguoi.config import CameraConfig, ConfigError, format_validation_error

app = typer.Typer(
    name="phatnguoi",
    help="Camera traffic enforcement (phạt nguội): edge detection, plates, violations, review server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(
    help="Model files: where they are and whether they are intact.", no_args_is_help=True
)
bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)
plates_app = typer.Typer(
    help="Licence plates: read images or crops, evaluate on a labelled set.", no_args_is_help=True
)
db_app = typer.Typer(help="The server's database.", no_args_is_help=True)
users_app = typer.Typer(help="Server users (police officers, supervisors, admins).", no_args_is_help=True)
devices_app = typer.Typer(help="Edge devices allowed to upload evidence.", no_args_is_help=True)
districts_app = typer.Typer(help="Districts: officers see their district's violations.", no_args_is_help=True)
cameras_app = typer.Typer(help="Cameras: name, district, place on the map.", no_args_is_help=True)
keys_app = typer.Typer(help="An edge device's Ed25519 signing key.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence packages.", no_args_is_help=True)
scene_app = typer.Typer(help="Camera scenes: stop lines, lights, lanes, zones.", no_args_is_help=True)
train_app = typer.Typer(help="Train models (needs the optional 'train' extra).", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models on labelled data, as JSON.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(scene_app, name="scene")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(devices_app, name="devices")
app.add_typer(districts_app, name="districts")
app.add_typer(cameras_app, name="cameras")
app.add_typer(keys_app, name="keys")
app.add_typer(evidence_app, name="evidence")
app.add_typer(models_app, name="models")
app.add_typer(plates_app, name="plates")
app.add_typer(bench_app, name="bench")
outbox_app = typer.Typer(help="An edge box's durable outbox (what waits for upload).", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")

err = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 160, markup=False)  # paths may hold "[...]"
out_console = out  # for commands with an --out option
T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _known_errors() -> tuple[type[BaseException], ...]:
    from api.errors import ServerError
    from models.registry import ModelError
    from models.runtime import InferenceError
    from streams.errors import StreamError
    from violations.manifest import EvidenceError
    from violations.scene import SceneError

    errors: list[type[BaseException]] = [
        ConfigError,
        ModelError,
        InferenceError,
        StreamError,
        ServerError,
        SceneError,
        EvidenceError,
    ]
    try:
        from phatnguoi.outbox import OutboxError

        errors.append(OutboxError)
    except ImportError:  # the edge side not installed in a server-only deployment
        pass
    try:
        from plates.errors import PlateError

        errors.append(PlateError)
    except ImportError:  # plates not installed in a server-only deployment
        pass
    return tuple(errors)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _progress(message: str) -> None:
    """A progress line on stderr (dimmed)."""
    err.print(f"[dim]{escape(message)}[/]", highlight=False, soft_wrap=True)


def guarded(fn: Callable[[], T]) -> T:
    """Run library code, turning our exceptions into one line and exit code 1."""
    try:
        return fn()
    except _known_errors() as e:
        raise fail(str(e), 1) from None
    except ValidationError as e:
        raise fail(format_validation_error(e, "option"), 2) from None
    except _database_errors() as e:  # one the server code did not turn into a ServerError itself
        raise fail(_database_error_line(e), 1) from None


def _database_errors() -> tuple[type[BaseException], ...]:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError, CommandError)


def _database_error_line(e: BaseException) -> str:
    """One line for a database or migration failure, with any password in it hidden."""
    from sqlalchemy.exc import SQLAlchemyError

    from api.migrate import describe_database_error

    if isinstance(e, SQLAlchemyError):
        return describe_database_error(e)
    return f"database migration: {' '.join(str(e).split())}"


@contextmanager
def _sigterm_as_stop(stop: threading.Event, on_stop: Callable[[], None] | None = None) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` (and call `on_stop`, e.g. closing a source that is waiting for a
    camera) so a job ends cleanly and its files are complete.

    `on_stop` runs on a helper thread: the handler runs on the main thread, which may be inside a
    source's lock at that moment, and a close taking that lock there would never return."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    helpers: list[threading.Thread] = []

    def handler(signum: int, _frame: object) -> None:
        stop.set()
        if on_stop is not None:
            helper = threading.Thread(target=on_stop, name="stop", daemon=True)
            helpers.append(helper)
            helper.start()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for helper in helpers:  # done before the job's files are closed and the interpreter exits
            helper.join(timeout=10)


def _frame_progress(label: str, quiet: bool) -> Progress:
    """A frames progress bar on stderr (hidden for JSON output and when stderr is not a terminal)."""
    return Progress(
        TextColumn(f"[bold]{escape(label)}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    )


def _parse_roi(roi: str | None) -> tuple[int, int, int, int] | None:
    if roi is None:
        return None
    try:
        vals = tuple(int(v) for v in roi.split(","))
    except ValueError:
        raise fail(f"--roi must be four integers x1,y1,x2,y2, got '{roi}'") from None
    if len(vals) != 4:
        raise fail(f"--roi must be four integers x1,y1,x2,y2, got '{roi}'")
    return vals[0], vals[1], vals[2], vals[3]


def _camera(config: Path | None, overrides: dict[str, Any], source: str | None = None) -> CameraConfig:
    from phatnguoi.config import load_camera

    cam = load_camera(config) if config is not None else CameraConfig()
    det = {k: v for k, v in overrides.items() if v is not None}
    try:
        merged = cam.model_dump()
        merged["detector"].update(det)
        if source is not None:
            merged["source"] = source
        return CameraConfig.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(config) if config else "option")) from None


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens (to stderr).")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def detect(
    source: Annotated[
        str | None,
        typer.Option("--source", "-s", help="Video file, rtsp:// or http(s):// URL, or device index."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out/detect"),
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Camera config YAML (detector, tracker, source).")
    ] = None,
    roi: Annotated[str | None, typer.Option(help="Detect only inside x1,y1,x2,y2 (frame pixels).")] = None,
    every: Annotated[int | None, typer.Option(help="Run the detector on every k-th frame.")] = None,
    confidence: Annotated[float | None, typer.Option(help="Minimum detection score.")] = None,
    input_width: Annotated[int | None, typer.Option(help="Network input width (multiple of 32).")] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Detector model file: your own YOLOv8 detection ONNX export (e.g. fine-tuned; fixed input "
            "size, class names from its metadata) instead of the manifest's model."
        ),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many frames.")] = None,
    video: Annotated[bool, typer.Option(help="Write the annotated MP4.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Detect and track vehicles: writes tracks.jsonl, annotated.mp4 and summary.json."""
    from phatnguoi.detect import DetectJob, run_detect
    from streams import open_source

    overrides = {
        "roi": _parse_roi(roi),
        "every": every,
        "confidence": confidence,
        "input_width": input_width,
        "model_path": model,
    }
    cam = guarded(lambda: _camera(config, overrides, source))
    if cam.source is None:
        raise fail("no source: give --source or a config with 'source'")
    src = guarded(lambda: open_source(cam.source or "", camera_id=cam.id))
    try:
        job = guarded(lambda: DetectJob(cam, frame_rate=src.fps or 25.0))
    except BaseException:  # e.g. a model error: no reader thread left decoding while the process exits
        src.close()
        raise
    stop = threading.Event()
    total = None
    if src.frame_count:
        total = min(src.frame_count, max_frames) if max_frames else src.frame_count

    def frames() -> Iterator[Any]:
        for i, f in enumerate(src):
            if max_frames is not None and i >= max_frames:
                return
            yield f

    with (
        _sigterm_as_stop(stop, on_stop=src.close),
        _frame_progress("detect", quiet=as_json) as progress,
    ):
        task = progress.add_task("frames", total=total)
        try:
            summary = guarded(
                lambda: run_detect(
                    frames(),
                    job,
                    out_dir,
                    cam.source or "",
                    src.fps,
                    write_video=video,
                    stop=stop,
                    on_frame=lambda _f: progress.advance(task),
                )
            )
        finally:
            src.close()
    if as_json:
        out.print_json(json.dumps(asdict(summary)))
        return
    state = "interrupted after" if summary.interrupted else "processed"
    in_size = f"{summary.input_size[1]}x{summary.input_size[0]}" if summary.input_size else "?"
    out.print(
        f"{state} {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps; detector "
        f"{summary.detector_ms_median:.0f} ms median at {in_size} on {summary.detected_frames} frames)"
    )
    per_class = ", ".join(f"{n} {c}" for c, n in summary.tracks_per_class.items()) or "none"
    out.print(f"{summary.tracks} tracks: {per_class}")
    for kind, path in summary.outputs.items():
        out.print(f"{kind}: {path}")


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Every model in the manifest: where it was found and whether its checksum matches."""
    from models.registry import default_registry

    rows = guarded(lambda: default_registry().status())
    if as_json:
        out.print_json(json.dumps([{**asdict(r), "path": str(r.path) if r.path else None} for r in rows]))
    else:
        table = Table("model", "task", "found", "origin", "checksum")
        for r in rows:
            check = "ok" if r.checksum_ok else ("MISMATCH" if r.checksum_ok is False else "-")
            table.add_row(
                r.name,
                r.task,
                str(r.path) if r.path else Text(r.problem or "", style="red"),
                r.origin or "-",
                check,
            )
        out.print(table)
    if any(r.checksum_ok is not True for r in rows):
        raise typer.Exit(1)


@plates_app.command("read")
def plates_read(
    images: Annotated[
        list[Path], typer.Argument(help="Image files (whole photos, or plate crops with --crop).")
    ],
    crop: Annotated[bool, typer.Option("--crop", help="Each image is already one plate crop.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
) -> None:
    """Find and read the plates in images; an unreadable plate is reported as such, with the raw reading."""
    from plates.anpr import PlateScanner
    from plates.reader import load_image

    scanner = guarded(PlateScanner)
    failed = 0
    for path in images:
        try:
            image = load_image(path)
            findings = [scanner.read_crop(image)] if crop else scanner.scan(image)
        except _known_errors() as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            failed += 1
            continue
        if as_json:
            out.print_json(json.dumps({"image": str(path), "plates": [f.as_dict() for f in findings]}))
            continue
        if not findings:
            out.print(f"{path}: no plate found")
        for f in findings:
            r = f.reading
            text = r.text if r.readable else f"unreadable (raw '{r.raw}')"
            out.print(
                f"{path}: {text}  confidence {r.confidence:.2f}  {r.lines} line(s)  {f.colour.colour.value}",
                highlight=False,
            )
    if failed:
        raise typer.Exit(1)


@plates_app.command("eval")
def plates_eval(
    labels: Annotated[
        Path, typer.Option("--labels", help="CSV: file,text[,lines] (crops) or file,x1,y1,x2,y2,text.")
    ],
    root: Annotated[Path, typer.Option("--root", help="Folder the CSV's file names are relative to.")],
    crop: Annotated[
        bool, typer.Option("--crop", help="Images are plate crops (else whole images: detect + read).")
    ] = False,
    out_csv: Annotated[Path | None, typer.Option("--out", help="Write per-item results here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Exact-match and character accuracy, unreadable rate, ms per plate; per-item results to --out."""
    import csv

    from plates.anpr import PlateScanner, evaluate_end_to_end
    from plates.eval import evaluate
    from plates.reader import PlateReader

    if not labels.is_file():
        raise fail(f"labels file not found: {labels}")
    if not root.is_dir():
        raise fail(f"image folder not found: {root}")
    rows: list[dict[str, Any]]
    if crop:
        result = guarded(lambda: evaluate(labels, root, guarded(PlateReader), crop=True))
        summary: dict[str, Any] = dict(result.summary())
        rows = [
            {
                "path": str(root / r.path),
                "expected": r.expected,
                "got": r.got,
                "ok": r.ok,
                "raw": r.raw,
                "confidence": r.confidence,
                "ms": r.ms,
                "error": r.error or "",
            }
            for r in result.rows
        ]
    else:
        e2e = guarded(lambda: evaluate_end_to_end(labels, root, guarded(PlateScanner)))
        summary = dict(e2e.summary())
        rows = [
            {
                "path": str(root / r.file),
                "expected": r.expected,
                "got": r.got,
                "ok": r.ok,
                "detected": r.detected,
                "iou": r.iou,
                "ms": r.ms,
            }
            for r in e2e.rows
        ]
    if out_csv is not None:
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        with out_csv.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["path"])
            writer.writeheader()
            writer.writerows(rows)
    if as_json:
        out.print_json(json.dumps(summary))
        return
    for key, value in summary.items():
        out.print(f"{key:>22}: {value}", highlight=False)
    if out_csv is not None:
        out.print(f"{'per-item results':>22}: {out_csv}", highlight=False)


@bench_app.command("plates")
def bench_plates_cmd(
    data: Annotated[Path, typer.Option(help="The shared plates folder.")] = SHARED_DATA / "plates",
    threads: Annotated[int, typer.Option(min=1, help="ONNX Runtime threads per model.")] = 2,
) -> None:
    """Plate OCR and detection speed and accuracy beside the raw PP-OCRv6 baselines, as JSON."""
    from phatnguoi.bench_plates import bench_plates

    if not (data / "vn_gold" / "labels.csv").is_file():
        raise fail(f"plate data not found in {data} (expected vn_gold/, vn_scenes/, openalpr/)")
    result = guarded(lambda: bench_plates(data, threads, progress=_progress))
    out.print_json(json.dumps(result))


@bench_app.command("api")
def bench_api_cmd(
    database_url: Annotated[
        str, typer.Option(help="A scratch database (SQLite file or PostgreSQL) to fill.")
    ],
    rows: Annotated[int, typer.Option(min=1000, help="Violations to have in the database.")] = 1_000_000,
    samples: Annotated[int, typer.Option(min=10, help="Timed requests per query kind.")] = 200,
) -> None:
    """Review list, plate search and map latency (p50/p95) and ingest rate at scale, as JSON."""
    from api.bench import bench_api

    result = guarded(lambda: bench_api(database_url, rows, samples=samples, progress=_progress))
    out.print_json(json.dumps(result, default=str))


@app.command("retention")
def retention_cmd() -> None:
    """Irreversibly delete evidence of rejected and expired violations past the retention period (audited)."""
    from api.retention import run_retention

    report = guarded(lambda: run_retention(_server_settings()))
    import dataclasses

    data = dataclasses.asdict(report) if dataclasses.is_dataclass(report) else {"report": str(report)}
    out.print_json(json.dumps(data, default=str))


@bench_app.command("edge")
def bench_edge_cmd(
    source: Annotated[
        Path, typer.Option("--source", "-s", help="A recorded clip each camera replays.")
    ] = SHARED_DATA / "videos" / "hanoi_giangvo_langha.mp4",
    scene_file: Annotated[Path, typer.Option("--scene", help="Its scene.")] = REPO_ROOT
    / "examples"
    / "scenes"
    / "hanoi_giangvo_langha.yaml",
    config: Annotated[Path, typer.Option("--config", "-c", help="Its camera config.")] = REPO_ROOT
    / "examples"
    / "cameras"
    / "hanoi_giangvo_langha.yaml",
    cameras: Annotated[str, typer.Option(help="Camera counts to run, comma-separated.")] = "1,2,4",
) -> None:
    """One edge process with 1, 2, 4 cameras uploading to a local server: fps, CPU, memory, latency (JSON)."""
    from phatnguoi.bench_edge import bench_edge

    if not source.is_file():
        raise fail(f"video file not found: {source}")
    try:
        counts = tuple(int(c) for c in cameras.split(","))
    except ValueError:
        raise fail(f"--cameras must be numbers like 1,2,4, got '{cameras}'") from None
    result = guarded(lambda: bench_edge(source, scene_file, config, counts, progress=_progress))
    out.print_json(json.dumps(result))


@bench_app.command("pipeline")
def bench_pipeline_cmd(
    source: Annotated[Path, typer.Option("--source", "-s", help="Video file to measure on.")] = SHARED_DATA
    / "videos"
    / "hanoi_giangvo_langha.mp4",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Camera config of the chosen configuration.")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Folder of labelled frames (YOLO txt; '<name>_00NN' = frame NN-1).")
    ] = None,
    near_band: Annotated[
        str, typer.Option(help="y1,y2: labels whose bottom edge lies here count as near the stop line.")
    ] = "310,420",
    line: Annotated[
        str | None, typer.Option(help="Stop line x1,y1,x2,y2 for the track-continuity measure.")
    ] = "40,337,520,355",
    frames: Annotated[int, typer.Option(min=10, help="Frames per timed run.")] = 120,
    rounds: Annotated[int, typer.Option(min=1, help="Interleaved rounds; fps is the median.")] = 3,
) -> None:
    """Decode, baseline detector, chosen detector and detect + track fps with recall, as JSON."""
    from phatnguoi.bench import bench_pipeline, load_yolo_labels
    from phatnguoi.config import load_camera

    if not source.is_file():
        raise fail(f"video file not found: {source}")
    if config is None:
        default = REPO_ROOT / "examples" / "cameras" / f"{source.stem}.yaml"
        config = default if default.is_file() else None
    cam = guarded(lambda: load_camera(config) if config else CameraConfig())
    if labels is None:
        guess = source.with_name(f"{source.stem}_rider_boxes")
        labels = guess if guess.is_dir() else None
    try:
        y1, y2 = (float(v) for v in near_band.split(","))
    except ValueError:
        raise fail(f"--near-band must be two numbers y1,y2, got '{near_band}'") from None
    import cv2

    cap = cv2.VideoCapture(str(source))
    hw = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
    cap.release()
    if hw[0] <= 0:
        raise fail(f"cannot read video file: {source}")
    gt = load_yolo_labels(labels, hw) if labels is not None else None
    stop_line = None
    if line:
        try:
            lx1, ly1, lx2, ly2 = (float(v) for v in line.split(","))
        except ValueError:
            raise fail(f"--line must be four numbers x1,y1,x2,y2, got '{line}'") from None
        stop_line = ((lx1, ly1), (lx2, ly2))
    result = guarded(
        lambda: bench_pipeline(
            source,
            cam,
            gt,
            (y1, y2),
            stop_line,
            frames=frames,
            rounds=rounds,
            progress=_progress,
        )
    )
    result["config_file"] = str(config) if config else None
    out.print_json(json.dumps(result))


def _first_frame(path: Path) -> Any:
    import cv2

    image = cv2.imread(str(path)) if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"} else None
    if image is None:
        cap = cv2.VideoCapture(str(path))
        ok, image = cap.read()
        cap.release()
        if not ok:
            raise fail(f"cannot read an image or a video frame from {path}")
    return image


DATASET = REPO_ROOT / "datasets" / "vn_traffic" / "clips.yaml"


def _dataset(data: Path) -> Any:
    from detector.dataset import Dataset, DatasetError

    try:
        return Dataset(data)
    except DatasetError as e:
        raise fail(str(e)) from None


@train_app.command("detector")
def train_detector(
    data: Annotated[Path, typer.Option(help="Dataset file (clips, zones, splits).")] = DATASET,
    videos: Annotated[Path, typer.Option(help="Folder of the dataset's videos.")] = SHARED_DATA / "videos",
    out: Annotated[Path, typer.Option(help="Output folder (dataset, checkpoints, ONNX, recipe).")] = Path(
        "runs/detector"
    ),
    step: Annotated[
        str, typer.Option(help="all, prepare, fit or export (e.g. fit on a GPU machine).")
    ] = "all",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 160,
    imgsz: Annotated[int, typer.Option(min=128, max=1920, help="Training image size (long side).")] = 640,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 16,
    device: Annotated[str, typer.Option(help="cpu, or a CUDA device index such as 0.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Random seed (data order, augmentation, init).")] = 0,
    workers: Annotated[int, typer.Option(min=0, help="Data-loading worker processes.")] = 2,
    optimizer: Annotated[str, typer.Option(help="auto, SGD or AdamW.")] = "AdamW",
    lr0: Annotated[float, typer.Option(min=1e-6, max=0.1, help="Initial learning rate.")] = 0.0007,
    resume: Annotated[bool, typer.Option(help="Resume from out/run/weights/last.pt.")] = False,
    with_val: Annotated[
        bool,
        typer.Option(
            help="Also train on the val split (the final model, once the recipe is chosen: "
            "keeps the last epoch)."
        ),
    ] = False,
    name: Annotated[str, typer.Option(help="Model name for the manifest entry.")] = "yolov8n-vn-traffic",
) -> None:
    """Fine-tune YOLOv8n on the labelled frames and export ONNX for the model registry (JSON summary)."""
    from detector.dataset import DatasetError
    from detector.train import TrainError, export_onnx, fit, prepare
    from models.registry import file_sha256

    if step not in ("all", "prepare", "fit", "export"):
        raise fail(f"--step must be all, prepare, fit or export, got '{step}'")
    ds = _dataset(data)
    summary: dict[str, Any] = {"out": str(out)}
    data_yaml = out / "data" / "data.yaml"
    init = out / "init_coco_yolov8n.pt"
    best = out / "run" / "weights" / "best.pt"
    try:
        if step in ("all", "prepare"):
            if not videos.is_dir():
                raise fail(f"videos folder not found: {videos}")
            coco = guarded(lambda: __import__("models").resolve("yolov8n-coco"))
            prep = prepare(ds, videos, out, coco)
            summary.update(images=prep.images, boxes=prep.boxes, labels_sha256=prep.labels_sha256)
            (out / "prepared.json").write_text(json.dumps(summary, indent=1))
        if step in ("all", "fit"):
            if not data_yaml.is_file() or not init.is_file():
                raise fail(f"{out} has no prepared dataset: run with --step prepare first")
            if optimizer not in ("auto", "SGD", "AdamW"):
                raise fail(f"--optimizer must be auto, SGD or AdamW, got '{optimizer}'")
            best = fit(
                data_yaml,
                init,
                out,
                epochs=epochs,
                imgsz=imgsz,
                batch=batch,
                device=device,
                seed=seed,
                workers=workers,
                resume=resume,
                with_val=with_val,
                extra={"optimizer": optimizer, "lr0": lr0, "cos_lr": True},
            )
            summary["best"] = str(best)
        if step in ("all", "export"):
            if not best.is_file():
                raise fail(f"no trained checkpoint at {best}: run --step fit first")
            onnx_path = export_onnx(best, out / f"{name}.onnx", imgsz)
            summary.update(onnx=str(onnx_path), sha256=file_sha256(onnx_path))
    except (DatasetError, TrainError) as e:
        raise fail(str(e), 1) from None
    out_console.print_json(json.dumps(summary))


@eval_app.command("detector")
def eval_detector(
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="Model name or .onnx path; repeat to compare.")
    ] = ["yolov8n-vn-traffic", "yolov8n-coco"],  # noqa: B006
    data: Annotated[Path, typer.Option(help="Dataset file (clips, zones, splits).")] = DATASET,
    videos: Annotated[Path, typer.Option(help="Folder of the dataset's videos.")] = SHARED_DATA / "videos",
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    input_width: Annotated[int, typer.Option(min=128, max=1920, help="Network input width.")] = 640,
    iou: Annotated[float, typer.Option(min=0.05, max=0.95, help="IoU for a match.")] = 0.5,
    confidence: Annotated[
        float | None, typer.Option(help="Operating confidence (default: best mean F1 on the val split).")
    ] = None,
    nms_iou: Annotated[float, typer.Option(min=0.05, max=0.95, help="The detector's NMS IoU.")] = 0.5,
    merge_riders: Annotated[
        bool,
        typer.Option(
            help="Fold person boxes into the two-wheeler under them, as the edge does for models that "
            "need it (COCO); models trained on rider + bike boxes, candidates included, never fold."
        ),
    ] = True,
) -> None:
    """Precision, recall and AP@0.5 per class (near the stop line too) and speed, models side by side."""
    from phatnguoi.detector_eval import eval_detectors

    if split not in ("train", "val", "test"):
        raise fail(f"--split must be train, val or test, got '{split}'")
    if not videos.is_dir():
        raise fail(f"videos folder not found: {videos}")
    if input_width % 32:
        raise fail(f"--input-width must be a multiple of 32, got {input_width}")
    ds = _dataset(data)
    try:
        result = guarded(
            lambda: eval_detectors(
                ds,
                videos,
                list(model),
                split,  # type: ignore[arg-type]
                input_width=input_width,
                iou=iou,
                confidence=confidence,
                nms_iou=nms_iou,
                merge_riders=merge_riders,
                progress=_progress,
            )
        )
    except ValueError as e:
        raise fail(str(e), 1) from None
    out_console.print_json(json.dumps(result))


@scene_app.command("check")
def scene_check(
    scene_file: Annotated[Path, typer.Argument(help="Scene YAML.")],
    frame: Annotated[
        Path | None, typer.Option(help="An image or a video of the camera to draw the scene on.")
    ] = None,
    out_png: Annotated[Path | None, typer.Option("--out", help="Write the drawing here (PNG).")] = None,
) -> None:
    """Validate a scene (errors by field) and draw it over a frame so an installer can see it."""
    import cv2

    from violations.draw import draw_scene
    from violations.scene import check_scene, load_scene

    if out_png is not None and out_png.suffix.lower() != ".png":
        raise fail(f"--out {out_png}: the drawing is a PNG, give a path ending in .png")
    scene = guarded(lambda: load_scene(scene_file))
    image = _first_frame(frame) if frame is not None else None
    for warning in check_scene(scene, image):
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    status = scene.rule_status()
    out.print(
        f"{scene_file}: ok (camera {scene.camera_id}, version {scene.scene_version[:12]})", highlight=False
    )
    for rule, why in status.items():
        out.print(f"  {rule:<13} {'enabled' if why is None else 'disabled: ' + why}", highlight=False)
    if out_png is not None:
        if image is None:
            w, h = scene.resolution
            import numpy as np

            image = np.full((h, w, 3), 40, np.uint8)
        drawing = draw_scene(image, scene)
        try:
            out_png.parent.mkdir(parents=True, exist_ok=True)
            ok, data = cv2.imencode(".png", drawing)
            if not ok:
                raise OSError("PNG encoding failed")
            out_png.write_bytes(data.tobytes())
        except OSError as e:
            raise fail(f"cannot write the drawing to {out_png}: {e.strerror or e}", 1) from None
        out.print(f"drawing: {out_png}")


@app.command()
def run(
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Video file, rtsp:// or http(s):// URL, device.")
    ] = None,
    scene_file: Annotated[Path, typer.Option("--scene", help="The camera's scene YAML.")] = Path(
        "scene.yaml"
    ),
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out/run"),
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Camera config YAML (detector, tracker).")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            help="The device's private signing key (PEM); made in OUT if absent.",
            readable=False,  # checked when loaded, with a line saying how to fix it
        ),
    ] = None,
    device_id: Annotated[
        str, typer.Option(help="Device id written into every evidence manifest.")
    ] = "edge-dev",
    plates: Annotated[bool, typer.Option(help="Read plates of violating vehicles.")] = True,
    start_time: Annotated[
        str | None, typer.Option(help="Wall-clock time of a file's first frame (ISO 8601).")
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many frames.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """The full edge pipeline on a source: events.jsonl, signed evidence packages, a summary."""
    from datetime import datetime

    from phatnguoi.pipeline import EdgePipeline, file_start_time, write_summary
    from streams import open_source
    from violations.manifest import generate_keypair, load_private_key
    from violations.scene import load_scene

    # Every option is checked before the source is opened (its reader thread starts decoding at
    # once) and before anything is written to OUT.
    scene = guarded(lambda: load_scene(scene_file))
    cam = guarded(lambda: _camera(config, {}, source))
    if cam.source is None:
        raise fail("no source: give --source or a config with 'source'")
    start: float | None = None
    if start_time:
        try:
            start = datetime.fromisoformat(start_time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise fail(f"--start-time must be ISO 8601, got '{start_time}'") from None
    new_key = key is None and not (out_dir / "device_key.pem").exists()
    if key is None:
        key = out_dir / "device_key.pem"
    private_key = None if new_key else guarded(lambda: load_private_key(key))
    src = guarded(lambda: open_source(cam.source or "", camera_id=scene.camera_id))
    try:
        origin = 0.0
        if src.frame_count:  # a file: its frame times start at 0
            origin = start if start is not None else file_start_time(Path(cam.source or ""))
        if private_key is None:
            guarded(lambda: generate_keypair(key, out_dir / "device_key.pub"))
            err.print(
                f"[yellow]note:[/] new device key {escape(str(key))}; "
                f"register {escape(str(out_dir / 'device_key.pub'))} with `devices add`"
            )
            private_key = guarded(lambda: load_private_key(key))
        pipeline = guarded(
            lambda: EdgePipeline(
                cam.model_copy(update={"id": scene.camera_id}),
                scene,
                out_dir,
                device_id,
                private_key,
                frame_rate=src.fps or 25.0,
                read_plates=plates,
                ts_origin=origin,
            )
        )
    except BaseException:  # a failure here leaves no reader thread decoding while the process exits
        src.close()
        raise
    stop = threading.Event()
    frames = 0
    t0 = time.perf_counter()
    total = min(src.frame_count, max_frames) if src.frame_count and max_frames else src.frame_count
    with (
        _sigterm_as_stop(stop, on_stop=src.close),
        _frame_progress("run", quiet=as_json) as progress,
    ):
        task = progress.add_task("frames", total=total)
        try:
            for f in src:
                if stop.is_set() or (max_frames is not None and frames >= max_frames):
                    break
                step = functools.partial(pipeline.step, f)
                guarded(step)
                frames += 1
                progress.advance(task)
        except KeyboardInterrupt:
            stop.set()
        finally:
            src.close()
            guarded(pipeline.close)
    summary = pipeline.summary(cam.source or "", frames, time.perf_counter() - t0, interrupted=stop.is_set())
    write_summary(out_dir, summary)
    if as_json:
        out.print_json(json.dumps(asdict(summary)))
        return
    state = "interrupted after" if summary.interrupted else "processed"
    out.print(f"{state} {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps)")
    per_rule = ", ".join(f"{n} {r}" for r, n in summary.events_per_rule.items()) or "none"
    out.print(f"{summary.events} violations: {per_rule}; {summary.plates_read} plates read")
    out.print(f"evidence packages: {summary.evidence_written} written, {summary.evidence_failed} failed")
    out.print(
        f"rules + evidence cost {summary.rules_evidence_share_of_detect_track:.1%} of detect + track "
        f"(median ms per frame: {summary.stage_ms_median})",
        highlight=False,
    )
    for kind, path in summary.outputs.items():
        out.print(f"{kind}: {path}")


@app.command()
def edge(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Edge config YAML (device, cameras, upload).")
    ],
) -> None:
    """Long-running worker for the cameras of one box, uploading through the durable outbox.

    The device's API key comes from $PHATNGUOI_DEVICE_KEY. SIGTERM/Ctrl-C finish evidence in flight.
    """
    from phatnguoi.edge import EdgeWorker, load_edge_config
    from phatnguoi.metrics import MetricsServer

    cfg = guarded(lambda: load_edge_config(config))
    worker = guarded(lambda: EdgeWorker(cfg))
    try:
        server = MetricsServer(worker.metrics, worker.health, cfg.metrics.host, cfg.metrics.port).start()
    except OSError as e:
        worker.close()
        where = f"{cfg.metrics.host}:{cfg.metrics.port}"
        raise fail(f"cannot serve /metrics on {where}: {e.strerror or e}", 1) from None
    err.print(
        f"edge {cfg.device.id}: {len(cfg.cameras)} camera(s); metrics http://{cfg.metrics.host}:{server.port}/metrics"
    )
    stop = threading.Event()
    try:
        with _sigterm_as_stop(stop, on_stop=worker.stop):
            guarded(worker.run)
    finally:
        server.close()
    for cam in worker.cameras:
        out.print(f"{cam.config.id}: {cam.processed} frames, {cam.events} violations")


@outbox_app.command("requeue")
def outbox_requeue(
    config: Annotated[Path, typer.Option("--config", "-c", help="The box's edge config YAML.")],
    kind: Annotated[str, typer.Option(help="evidence, flow or all.")] = "all",
) -> None:
    """Queue again what the server refused for good (after the cause was fixed); run it while the
    worker is stopped or running, it picks them up on its next round."""
    from phatnguoi.edge import load_edge_config
    from phatnguoi.outbox import Outbox
    from violations.manifest import load_public_key

    if kind not in ("evidence", "flow", "all"):
        raise fail(f"--kind must be evidence, flow or all, got '{kind}'")
    cfg = guarded(lambda: load_edge_config(config))
    path = cfg.data_dir / "outbox.sqlite"
    if not path.is_file():
        raise fail(f"no outbox at {path}", 1)
    try:
        public_key = guarded(lambda: load_public_key(cfg.device.public_key))
    except OSError as e:
        where = f"{cfg.device.public_key}: {e.strerror or e}"
        raise fail(f"cannot read public key {where} (device.public_key in {config})", 1) from None
    with guarded(lambda: Outbox(path, public_key, evidence_root=cfg.data_dir, config=cfg.outbox)) as box:
        n = guarded(lambda: box.requeue_failed(None if kind == "all" else kind))  # type: ignore[arg-type]
    out.print(f"queued again: {n}")


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the server database, evidence, keys.")
    ] = Path("out/demo"),
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Your own video instead of the sample clip.")
    ] = None,
    scene_file: Annotated[
        Path | None, typer.Option("--scene", help="The scene of your video (with --source).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Camera config (detector) of your video.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Server port (default: a free one).")
    ] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the server running until Ctrl-C.")
    ] = True,
) -> None:
    """The whole chain on this machine: server (SQLite) + edge worker on the sample clip + upload."""
    from phatnguoi.demo import run_demo

    if source is not None and scene_file is None:
        raise fail("--source needs --scene (the camera's stop lines and lights)")
    result, server = guarded(
        lambda: run_demo(
            out_dir,
            source=source,
            scene_file=scene_file,
            camera_file=config,
            port=port,
            progress=_progress,
        )
    )
    out.print(
        f"processed {result.frames} frames: {result.violations} violations, "
        f"{result.crossings} stop-line crossings"
    )
    out.print(
        f"uploaded {result.uploaded} evidence packages ({result.queued} still queued); "
        f"the server holds {result.server_violations} violations"
    )
    if result.violations == 0:
        out.print(
            "no violation on this clip: no vehicle was seen crossing a stop line cleanly"
            + (
                " (the sample clip's riders stop on the line; see the README's 'The whole chain on one "
                "machine', or run the demo on your own clip with --source, --scene and --config)"
                if source is None
                else ""
            )
        )
    out.print(f"review: {result.url}  (user {result.username}, password {result.password})")
    out.print(f"files: {result.out_dir}")
    if not serve_after:
        server.stop()
        return
    stop = threading.Event()
    with _sigterm_as_stop(stop):
        while not stop.is_set():
            stop.wait(0.5)
    server.stop()


def _server_settings() -> Any:
    from api.settings import load_settings

    return guarded(load_settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Run the server (settings from PHATNGUOI_* environment variables; run `db upgrade` first)."""
    from api.admin import serve as run_server

    settings = _server_settings()
    guarded(lambda: run_server(settings, host, port))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the database schema (Alembic)."""
    from api.admin import upgrade_db

    settings = _server_settings()
    out.print(f"database at revision {guarded(lambda: upgrade_db(settings, revision))}")


@db_app.command("verify-audit")
def db_verify_audit(
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH printed by an earlier run: also detects deletion of the newest rows."),
    ] = None,
) -> None:
    """Recompute the audit log's hash chain; exit 1 if a row was edited, deleted or re-ordered."""
    from api.admin import verify_audit

    pinned: tuple[int, str] | None = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise fail(f"--anchor must be SEQ:HASH (a row number and 64 hex digits), got '{anchor}'")
        pinned = int(seq), digest.lower()
    settings = _server_settings()
    report = guarded(lambda: verify_audit(settings, pinned))
    if not report.ok:
        out.print(f"audit log BROKEN at row {report.bad_seq}: {report.problem}")
        raise typer.Exit(1)
    out.print(f"audit log intact: {report.rows} rows; anchor {report.head_seq}:{report.head_hash}")


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, supervisor or officer.")] = "officer",
    district: Annotated[str | None, typer.Option(help="District of an officer.")] = None,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="PHATNGUOI_NEW_PASSWORD",
            help="Password (asked for if not given).",
        ),
    ] = "",
) -> None:
    """Add a server user."""
    from api.admin import add_user

    settings = _server_settings()
    user_id = guarded(lambda: add_user(settings, username, password, role, district))
    out.print(f"user {username} ({role}) added with id {user_id}")


@devices_app.command("add")
def devices_add(
    device_id: Annotated[str, typer.Argument(help="Device id, e.g. edge-giangvo-01.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The device's Ed25519 public key (PEM).")],
    camera: Annotated[
        list[str], typer.Option("--camera", help="Camera id the device may upload for (repeat).")
    ],
) -> None:
    """Register an edge device and print its API key (shown once)."""
    from api.admin import add_device

    if not public_key.is_file():
        raise fail(f"public key file not found: {public_key}")
    settings = _server_settings()
    key = guarded(lambda: add_device(settings, device_id, camera, public_key.read_bytes()))
    out.print(f"device {device_id} registered for {', '.join(camera)}; its API key (shown once):")
    out.print(key, highlight=False, soft_wrap=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def _print_rows(rows: list[Any], columns: list[str], as_json: bool) -> None:
    """Dataclass rows as a table, or as JSON (times in ISO 8601)."""
    if as_json:
        out.print_json(json.dumps([asdict(r) for r in rows], default=_cell))
        return
    table = Table(*columns)
    for r in rows:
        table.add_row(*(_cell(v) for v in asdict(r).values()))
    out.print(table)


JsonOption = Annotated[bool, typer.Option("--json", help="JSON output.")]
UsernameArg = Annotated[str, typer.Argument(help="Login name.")]
DeviceArg = Annotated[str, typer.Argument(help="Device id.")]


@users_app.command("list")
def users_list(as_json: JsonOption = False) -> None:
    """Every user: role, district, whether active."""
    from api.admin import list_users

    settings = _server_settings()
    rows = guarded(lambda: list_users(settings))
    _print_rows(rows, ["user", "role", "district", "active", "created"], as_json)


@users_app.command("disable")
def users_disable(username: UsernameArg) -> None:
    """Stop a user: their open sessions end at once and they cannot log in."""
    from api.admin import set_user_active

    settings = _server_settings()
    guarded(lambda: set_user_active(settings, username, False))
    out.print(f"user {username} disabled")


@users_app.command("enable")
def users_enable(username: UsernameArg) -> None:
    """Let a disabled user log in again."""
    from api.admin import set_user_active

    settings = _server_settings()
    guarded(lambda: set_user_active(settings, username, True))
    out.print(f"user {username} enabled")


@users_app.command("passwd")
def users_passwd(
    username: UsernameArg,
    password: Annotated[
        str,
        typer.Option(
            prompt="New password",
            hide_input=True,
            confirmation_prompt=True,
            envvar="PHATNGUOI_NEW_PASSWORD",
            help="The new password (asked for if not given).",
        ),
    ] = "",
) -> None:
    """Set a user's password (open sessions stay until they expire; `users disable` ends them)."""
    from api.admin import set_password

    settings = _server_settings()
    guarded(lambda: set_password(settings, username, password))
    out.print(f"user {username}: password changed")


@devices_app.command("list")
def devices_list(as_json: JsonOption = False) -> None:
    """Every device: its cameras, whether active, its key id, when last heard from."""
    from api.admin import list_devices

    settings = _server_settings()
    rows = guarded(lambda: list_devices(settings))
    _print_rows(rows, ["device", "cameras", "active", "key id", "last seen"], as_json)


@devices_app.command("disable")
def devices_disable(device_id: DeviceArg) -> None:
    """Refuse a device's uploads from now on (403); its stored evidence stays verifiable."""
    from api.admin import set_device_active

    settings = _server_settings()
    guarded(lambda: set_device_active(settings, device_id, False))
    out.print(f"device {device_id} disabled")


@devices_app.command("enable")
def devices_enable(device_id: DeviceArg) -> None:
    """Accept a disabled device's uploads again."""
    from api.admin import set_device_active

    settings = _server_settings()
    guarded(lambda: set_device_active(settings, device_id, True))
    out.print(f"device {device_id} enabled")


@devices_app.command("rotate-key")
def devices_rotate_key(device_id: DeviceArg) -> None:
    """Give a device a new API key and print it (shown once); the old key stops working at once."""
    from api.admin import rotate_device_key

    settings = _server_settings()
    key = guarded(lambda: rotate_device_key(settings, device_id))
    out.print(f"device {device_id}: new API key (shown once; the old one no longer works):")
    out.print(key, highlight=False, soft_wrap=True)


@devices_app.command("set-public-key")
def devices_set_public_key(
    device_id: DeviceArg,
    public_key: Annotated[Path, typer.Option("--public-key", help="The box's own Ed25519 public key (PEM).")],
) -> None:
    """Replace a device's registered signing key (the wrong .pub was registered); refused once the
    server holds evidence from the device. The API key stays."""
    from api.admin import set_device_public_key

    if not public_key.is_file():
        raise fail(f"public key file not found: {public_key}")
    settings = _server_settings()
    change = guarded(lambda: set_device_public_key(settings, device_id, public_key.read_bytes()))
    if not change.changed:
        out.print(
            f"device {device_id} already has this public key (sha256 {change.sha256[:16]}…)", soft_wrap=True
        )
        return
    out.print(
        f"device {device_id}: public key sha256 {change.old_sha256[:16]}… replaced by {change.sha256[:16]}…",
        highlight=False,
        soft_wrap=True,
    )


@districts_app.command("add")
def districts_add(
    district_id: Annotated[str, typer.Argument(help="District id, e.g. ba-dinh.")],
    name: Annotated[str | None, typer.Option(help="Display name, e.g. 'Ba Đình'.")] = None,
) -> None:
    """Register a district (or rename it). Cameras without a district whose evidence names it get it,
    with their violations stored so far."""
    from api.admin import add_district

    settings = _server_settings()
    change = guarded(lambda: add_district(settings, district_id, name))
    given = "".join(
        f"; camera {cam} now in it, with {n} violations that had no district"
        for cam, n in change.cameras.items()
    )
    out.print(f"district {district_id} {'added' if change.created else 'updated'}{given}")


@districts_app.command("list")
def districts_list(as_json: JsonOption = False) -> None:
    """Every district with its number of cameras and active officers."""
    from api.admin import list_districts

    settings = _server_settings()
    rows = guarded(lambda: list_districts(settings))
    _print_rows(rows, ["district", "name", "cameras", "officers"], as_json)


@cameras_app.command("set")
def cameras_set(
    camera_id: Annotated[str, typer.Argument(help="A registered camera id.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    district: Annotated[
        str | None, typer.Option(help="A registered district; the camera's violations without one get it.")
    ] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude (with --lon).")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude (with --lat).")] = None,
) -> None:
    """Change a camera's name, district or place on the map."""
    from api.admin import set_camera

    settings = _server_settings()
    filled = guarded(lambda: set_camera(settings, camera_id, name=name, district=district, lat=lat, lon=lon))
    extra = f"; {filled} violations without a district given {district}" if district is not None else ""
    out.print(f"camera {camera_id} updated{extra}")


@cameras_app.command("list")
def cameras_list(as_json: JsonOption = False) -> None:
    """Every camera: district, place, when last heard from, violations without a district."""
    from api.admin import list_cameras

    settings = _server_settings()
    rows = guarded(lambda: list_cameras(settings))
    _print_rows(rows, ["camera", "name", "district", "lat", "lon", "last seen", "no district"], as_json)


@keys_app.command("generate")
def keys_generate(
    private_key: Annotated[
        Path, typer.Option("--private", help="Where to write the private key (PEM, mode 0600).")
    ],
    public_key: Annotated[Path, typer.Option("--public", help="Where to write the public key (PEM).")],
) -> None:
    """Create a device signing key pair; register the public half with `devices add`."""
    from violations.manifest import EvidenceError, generate_keypair

    try:
        generate_keypair(private_key, public_key)
    except (EvidenceError, OSError) as e:
        raise fail(str(e), 1) from None
    out.print(f"private key: {private_key}\npublic key: {public_key}")


@evidence_app.command("verify")
def evidence_verify(
    folder: Annotated[Path, typer.Argument(help="An evidence package folder.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The device's public key (PEM).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON report.")] = False,
) -> None:
    """Check every file's SHA-256 and the manifest's signature; exit 1 if anything was altered."""
    from violations.manifest import EvidenceError, check_package, load_public_key

    if not folder.is_dir():
        raise fail(f"evidence folder not found: {folder}")
    try:
        key = load_public_key(public_key) if public_key is not None else None
    except (EvidenceError, OSError) as e:
        raise fail(str(e), 1) from None
    report = check_package(folder, key)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        for line in report.lines():
            out.print(line, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    if "-v" not in sys.argv and "--verbose" not in sys.argv:
        # OpenCV and FFmpeg print their own warnings straight to stderr ("moov atom not found");
        # our errors already say what went wrong in one line. Must be set before cv2 loads.
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    app()


if __name__ == "__main__":
    main()
