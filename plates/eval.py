"""Plate OCR evaluation over a labels CSV, and the raw PP-OCRv6 baselines to compare against.

`evaluate` runs any `Reader` over the images of a labels file (format: ../shared/data/plates/README.md,
columns ``file,text[,lines]`` for crops; ``file,x1,y1,x2,y2,text`` for whole images) and returns an
`EvalResult`; it prints nothing. The numbers:

- exact: the reader's answer equals the label (compact canonical text, e.g. ``59X123456``);
  an unreadable answer is never exact;
- char accuracy: 1 - edit distance / label length, summed over items, on the reader's best guess
  (its plate when it has one, else its raw text), so it measures the recogniser also where the
  reader declined to answer;
- unreadable: the reader gave no answer;
- valid-but-wrong: the reader answered with a plate and it is not the label (the costly error);
- ms: wall time of ``reader.read`` per crop (image decoding excluded).

Baselines (`RawRecBaseline`, `RawDetRecBaseline`, both from `baseline_readers`) are PP-OCRv6 as it
comes: full 18 710-class dictionary, no line splitting or rectification of our own, no plate grammar.
`evaluate_all` runs ours and them in one go.

RapidOCR's own default pipeline reads only 2 of the 42 one-line gold crops. The cause: it scales
the crop's *short* side up to 736 px (11.7x for a 63x300 crop, giving 736x3520); the detector's map
of such an upscaled JPEG breaks into thousands of speckle contours, and its DB post-processing looks
at only the first 1000 contours (``max_candidates``) in OpenCV's order, in which the plate's own
contour comes last. No box, no text. `RawDetRecBaseline` keeps the upscaling but looks at
every outer contour, so it shows what det + rec can do, not that bug. Their readings have ``plate=None``,
``valid=False`` and ``readable=True`` whenever they read any text; `evaluate` scores them on their
raw text with separators removed.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.runtime import RuntimeOptions
from plates.errors import PlateError
from plates.ocr import REC_HEIGHT, TextDetector, ctc_decode_topk, prepare_rec_batch
from plates.reader import Reader, as_bgr, load_image
from plates.rectify import find_text_boxes, scale_quad, warp_line
from plates.types import PlateReading, StageTimes

logger = logging.getLogger(__name__)

UInt8Array = npt.NDArray[np.uint8]

#: Margin added on each side of a labelled plate box when cutting it from a whole image.
BOX_MARGIN = 0.1


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One labelled plate: image file (relative to the root), canonical text, line count if known."""

    file: str
    text: str
    lines: int | None
    box: tuple[float, float, float, float] | None


@dataclass(frozen=True, slots=True)
class EvalRow:
    """The outcome on one plate.

    Attributes:
        path: image path relative to the root.
        expected: label text; got: the reader's answer ("" when unreadable).
        guess: best guess for character accuracy (answer, or raw text when unreadable).
        raw: the recogniser's raw text.
        ok: got == expected; answered: the reader gave an answer.
        confidence: the reader's confidence; ms: time of ``reader.read``.
        lines_expected / lines_got: label's and reader's line counts (None / 0 when unknown).
        error: `PlateError` message when the image could not be read at all.
    """

    path: str
    expected: str
    got: str
    guess: str
    raw: str
    ok: bool
    answered: bool
    confidence: float
    ms: float
    lines_expected: int | None
    lines_got: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SubsetScore:
    """Exact-match count of a subset."""

    n: int
    exact: int

    @property
    def accuracy(self) -> float:
        """Exact-match rate (0 for an empty subset)."""
        return self.exact / self.n if self.n else 0.0


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Scores of one reader on one labels file; per-item rows in `rows`."""

    rows: tuple[EvalRow, ...]
    overall: SubsetScore
    one_line: SubsetScore
    two_line: SubsetScore
    char_accuracy: float
    unreadable_rate: float
    valid_wrong_rate: float
    ms_median: float
    ms_p95: float

    def summary(self) -> dict[str, float | int]:
        """The headline numbers as a flat dict (for JSON output and benchmarks)."""
        return {
            "n": self.overall.n,
            "exact": round(self.overall.accuracy, 4),
            "exact_one_line": round(self.one_line.accuracy, 4),
            "n_one_line": self.one_line.n,
            "exact_two_line": round(self.two_line.accuracy, 4),
            "n_two_line": self.two_line.n,
            "char_accuracy": round(self.char_accuracy, 4),
            "unreadable_rate": round(self.unreadable_rate, 4),
            "valid_wrong_rate": round(self.valid_wrong_rate, 4),
            "ms_median": round(self.ms_median, 2),
            "ms_p95": round(self.ms_p95, 2),
        }


def canonical(text: str) -> str:
    """The labels' canonical form: upper case, letters and digits only, ``Đ`` as ``D``.

    ``59-X1 / 234.56`` -> ``59X123456``.
    """
    text = text.upper().replace("Đ", "D")
    return "".join(c for c in text if c.isascii() and c.isalnum())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def read_labels(labels_csv: Path) -> list[LabelRow]:
    """Rows of a labels CSV. Rows with empty text (unreadable plates) are skipped.

    Raises:
        PlateError: the file cannot be read, lacks ``file``/``text``, or has a malformed row.
    """
    try:
        with labels_csv.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = set(reader.fieldnames or ())
            missing = {"file", "text"} - fields
            if missing:
                raise PlateError(f"{labels_csv}: missing column(s) {', '.join(sorted(missing))}")
            has_box = {"x1", "y1", "x2", "y2"} <= fields
            rows = []
            for line_no, rec in enumerate(reader, start=2):
                text = canonical(rec["text"] or "")
                if not text:
                    continue
                try:
                    lines = int(rec["lines"]) if rec.get("lines") else None
                    box = (
                        (float(rec["x1"]), float(rec["y1"]), float(rec["x2"]), float(rec["y2"]))
                        if has_box
                        else None
                    )
                except ValueError:
                    raise PlateError(f"{labels_csv}:{line_no}: non-numeric lines or box") from None
                rows.append(LabelRow(rec["file"], text, lines, box))
    except OSError as e:
        raise PlateError(f"cannot read labels {labels_csv}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise PlateError(f"{labels_csv} is not UTF-8 (byte {e.start}): save the CSV as UTF-8") from None
    return rows


def cut_box(
    image: UInt8Array, box: tuple[float, float, float, float], margin: float = BOX_MARGIN
) -> UInt8Array:
    """The box (x1, y1, x2, y2) of an image, grown by `margin` of its size on each side and clipped.

    Raises:
        PlateError: the box is empty or outside the image.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    xa, ya = max(0, int(x1 - mx)), max(0, int(y1 - my))
    xb, yb = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if xb <= xa or yb <= ya:
        raise PlateError(f"plate box {box} is empty or outside the {w}x{h} image")
    return image[ya:yb, xa:xb]


def answer_of(reading: PlateReading) -> str:
    """The reader's answer in canonical form, "" when it gave none (see the module docstring)."""
    if reading.compact is not None:
        return reading.compact
    if reading.plate is None and not reading.valid and reading.readable:
        return canonical(reading.raw)  # a baseline without grammar
    return ""


def evaluate(labels_csv: Path, root: Path, reader: Reader, crop: bool = True) -> EvalResult:
    """Run `reader` over every labelled plate and score it.

    Args:
        labels_csv: labels file (``file,text[,lines]``, or with ``x1,y1,x2,y2`` boxes).
        root: folder the ``file`` column is relative to.
        reader: anything with ``read(image) -> PlateReading``.
        crop: True when the images are plate crops; False for whole images, from which each
            labelled box (plus a `BOX_MARGIN` margin) is cut before reading.

    Raises:
        PlateError: the labels file is unreadable, or ``crop=False`` and it has no box columns.
    """
    labels = read_labels(labels_csv)
    if not crop and any(lab.box is None for lab in labels):
        raise PlateError(f"{labels_csv}: crop=False needs x1,y1,x2,y2 box columns")
    rows: list[EvalRow] = []
    for lab in labels:
        try:
            image = load_image(root / lab.file)
            if not crop and lab.box is not None:
                image = cut_box(image, lab.box)
            t0 = time.perf_counter()
            reading = reader.read(image)
            ms = (time.perf_counter() - t0) * 1e3
        except PlateError as e:
            logger.warning("%s", e)
            rows.append(EvalRow(lab.file, lab.text, "", "", "", False, False, 0.0, 0.0, lab.lines, 0, str(e)))
            continue
        got = canonical(answer_of(reading))
        if got:
            guess = got
        elif reading.plate is not None and reading.plate.compact:
            guess = canonical(reading.plate.compact)
        else:
            guess = canonical(reading.raw)
        rows.append(
            EvalRow(
                lab.file,
                lab.text,
                got,
                guess,
                reading.raw,
                got == lab.text,
                bool(got),
                reading.confidence,
                ms,
                lab.lines,
                reading.lines,
            )
        )
    return score(rows)


def score(rows: Sequence[EvalRow]) -> EvalResult:
    """Aggregate per-item rows into an `EvalResult`."""

    def subset(pred: list[EvalRow]) -> SubsetScore:
        return SubsetScore(len(pred), sum(r.ok for r in pred))

    n = len(rows)
    total_chars = sum(len(r.expected) for r in rows)
    char_ok = sum(max(0, len(r.expected) - edit_distance(r.expected, r.guess)) for r in rows)
    ms = np.array([r.ms for r in rows if r.error is None], dtype=np.float64)
    return EvalResult(
        rows=tuple(rows),
        overall=subset(list(rows)),
        one_line=subset([r for r in rows if r.lines_expected == 1]),
        two_line=subset([r for r in rows if r.lines_expected == 2]),
        char_accuracy=char_ok / total_chars if total_chars else 0.0,
        unreadable_rate=sum(not r.answered for r in rows) / n if n else 0.0,
        valid_wrong_rate=sum(r.answered and not r.ok for r in rows) / n if n else 0.0,
        ms_median=float(np.median(ms)) if ms.size else 0.0,
        ms_p95=float(np.percentile(ms, 95)) if ms.size else 0.0,
    )


def evaluate_all(
    labels_csv: Path, root: Path, readers: Mapping[str, Reader], crop: bool = True
) -> dict[str, EvalResult]:
    """`evaluate` each reader on the same labels, in order (for a benchmark table: ours beside the
    baselines, measured in the same run on the same machine).

    Raises:
        PlateError: as `evaluate`.
    """
    return {name: evaluate(labels_csv, root, reader, crop) for name, reader in readers.items()}


def baseline_readers(threads: int = 2) -> dict[str, Reader]:
    """The raw PP-OCRv6 baselines by name: ``ppocrv6-rec`` (whole crop, one line of text) and
    ``ppocrv6-det-rec`` (detector at a 736 px short side, then rec per box).

    Raises:
        models.ModelError: a model file is missing or altered.
    """
    return {
        "ppocrv6-rec": RawRecBaseline(threads=threads),
        "ppocrv6-det-rec": RawDetRecBaseline(threads=threads),
    }


class RawRecBaseline:
    """PP-OCRv6 rec alone over the whole crop resized to 48 px high; full dictionary, no grammar."""

    def __init__(self, threads: int = 2, model: Path | None = None) -> None:
        """Load the recogniser. Raises `models.ModelError` / `InferenceError` like `TextRecognizer`."""
        self._rec = _FullRec(RuntimeOptions(intra_op_threads=threads), model)

    def read(self, image: UInt8Array) -> PlateReading:
        """Read a crop as one line of text. Raises `PlateError` on a bad crop."""
        image = as_bgr(image)
        text, conf = self._rec.recognise([image], max_width=4096)[0]
        return _baseline_reading(text, conf, 1)


class RawDetRecBaseline:
    """PP-OCRv6 det + rec as RapidOCR runs them by default, re-done on our session wrapper.

    Detector at a short side of 736 px, DB boxes (threshold 0.3, box score 0.5, unclip 1.6), each box
    cut out upright and recognised with the full dictionary, texts scoring under 0.5 dropped, the rest
    joined top to bottom. No grammar.
    """

    def __init__(self, threads: int = 2, short_side: int = 736) -> None:
        """Load both models. Raises `models.ModelError` / `InferenceError`."""
        options = RuntimeOptions(intra_op_threads=threads)
        self._det = TextDetector(options=options, short_side=short_side, max_side=4096)
        self._rec = _FullRec(options, None)

    def read(self, image: UInt8Array) -> PlateReading:
        """Read a crop. Raises `PlateError` on a bad crop."""
        image = as_bgr(image)
        prob = self._det.probability_map(image)
        boxes = find_text_boxes(prob, 0.3, 0.5, 1.6)
        h, w = image.shape[:2]
        sx, sy = w / prob.shape[1], h / prob.shape[0]
        # RapidOCR's order: by top-left y, then x within rows 10 px apart.
        ordered = sorted(boxes, key=lambda b: (round(float(b.quad[0, 1] * sy) / 10), float(b.quad[0, 0])))
        crops = [warp_line(image, scale_quad(b.quad, sx, sy), max_width=4096) for b in ordered]
        if not crops:
            return _baseline_reading("", 0.0, 0)
        results = [(t, c) for t, c in self._rec.recognise(crops, max_width=4096) if c >= 0.5]
        text = " / ".join(t for t, _ in results)
        conf = float(np.mean([c for _, c in results])) if results else 0.0
        return _baseline_reading(text, conf, len(results))


class _FullRec:
    """PP-OCRv6 rec over its whole dictionary (what the baselines use)."""

    def __init__(self, options: RuntimeOptions, model: Path | None) -> None:
        import models
        from models.runtime import OnnxSession
        from plates.ocr import rec_dictionary

        path = model if model is not None else models.resolve("ppocrv6-rec")
        self.session = OnnxSession(path, options, name="ppocr-rec-full")
        self.charset = rec_dictionary(self.session.metadata())

    def recognise(self, lines: Sequence[UInt8Array], max_width: int) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        # One call per line: RapidOCR pads a batch to its widest line, which changes nothing here.
        for line in lines:
            batch = prepare_rec_batch([line], REC_HEIGHT, max_width=max_width)
            probs = self.session.run({self.session.input_names[0]: batch})[0][0]
            decoded = ctc_decode_topk(probs, self.charset, k=1)
            conf = float(np.mean([p[0][1] for p in decoded.positions])) if decoded.positions else 0.0
            out.append((decoded.text, conf))
        return out


def _baseline_reading(text: str, confidence: float, lines: int) -> PlateReading:
    return PlateReading(text, None, confidence, False, bool(canonical(text)), lines, (), StageTimes())
