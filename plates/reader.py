"""Plate crop -> `PlateReading`: detect text lines, rectify them, recognise both in one batch, parse.

Stages (each timed in `StageTimes`):

1. detect: PP-OCR text detector on the crop at a short side of ~96 px (`plates.ocr.TextDetector`);
2. rectify: one upright 48-px line image per text row (`plates.rectify`), or the crop split by its
   ink profile when the detector finds nothing;
3. recognise: all lines in one batched PP-OCR rec call, decoded over the plate alphabet with top-k
   alternatives per character (`plates.ocr.TextRecognizer`);
4. grammar: the most probable grammar-valid plates over those alternatives
   (`plates.grammar.n_best_valid`), re-weighted by how common their series kind is.

A reading is *readable* only when a valid plate was found and its confidence reaches
`PlateReaderConfig.min_confidence`. Confidence is the chosen plate's probability divided by the
probability of all valid plates in the n-best list: a plate the grammar had to pick out of two
equally likely valid readings (a ``1`` that may be a ``7``) gets ~0.5, however sharp the other
characters looked. Anything else is reported unreadable, with what was seen in `raw`: a wrong plate
that looks valid does more harm than no plate (a fine sent to the wrong owner). The threshold 0.6
was set on vn_crops, where the readings between 0.5 and 0.6 that disagree with the label are
mostly real 1/7, 4/1 and Z/2 confusions while most disagreements above 0.9 are label errors.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from models.runtime import RuntimeOptions
from plates import grammar
from plates.errors import PlateError
from plates.ocr import PLATE_ALPHABET, DecodedLine, TextDetector, TextRecognizer
from plates.rectify import fallback_quads, find_text_boxes, merge_rows, scale_quad, select_lines, warp_line
from plates.types import PlateReading, StageTimes

logger = logging.getLogger(__name__)

UInt8Array = npt.NDArray[np.uint8]


class PlateReaderConfig(BaseModel):
    """How plate crops are read. Defaults were chosen on vn_crops and checked on vn_gold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: int = Field(default=2, ge=1, le=64, description="ONNX Runtime intra-op threads per model.")
    det_short_side: int = Field(
        default=96, ge=32, le=736, description="Crop short side (px) fed to the text detector."
    )
    det_max_side: int = Field(
        default=320, ge=64, le=2048, description="Cap on the detector's long side (px)."
    )
    det_thresh: float = Field(default=0.3, gt=0, lt=1, description="Text probability threshold.")
    box_thresh: float = Field(default=0.5, gt=0, lt=1, description="Minimum mean probability of a line box.")
    unclip_ratio: float = Field(
        default=1.3, ge=0, le=4, description="DB box growth (area * ratio / perimeter)."
    )
    unclip_along: float = Field(
        default=0.6, ge=0, le=1, description="Share of that growth applied at the ends of a line."
    )
    max_line_width: int = Field(
        default=320, ge=48, le=1024, description="Widest recogniser input (px at 48 px high)."
    )
    top_k: int = Field(default=3, ge=1, le=10, description="Alternatives kept per character.")
    n_best: int = Field(
        default=10, ge=1, le=100, description="Valid readings the confidence is normalised over."
    )
    confusion_weight: float = Field(
        default=0.02, ge=0, le=1, description="Grammar's factor on a letter/digit look-alike correction."
    )
    series_priors: dict[str, float] = Field(
        default_factory=lambda: {"50cc": 0.1},
        description="Prior factor per grammar series kind (civilian, 50cc, special, foreign); 1 if absent.",
    )
    max_alternatives: int = Field(default=5, ge=1, le=50, description="Valid alternatives reported.")
    min_confidence: float = Field(
        default=0.6, ge=0, le=1, description="Below this a valid plate is still reported unreadable."
    )
    alphabet: str = Field(
        default=PLATE_ALPHABET, min_length=1, description="Characters the recogniser may emit."
    )


class Reader(Protocol):
    """Anything that reads a plate crop (our reader, or a baseline in `plates.eval`)."""

    def read(self, image: UInt8Array) -> PlateReading:
        """Read one BGR crop."""
        ...


def as_bgr(image: object, what: str = "plate crop") -> UInt8Array:
    """Check a crop and bring it to (H, W, 3) uint8 BGR (grey and BGRA are converted).

    Raises:
        PlateError: not a numpy array, not 2-D/3-D, unsupported channels or dtype, or zero size.
    """
    import cv2

    if not isinstance(image, np.ndarray):
        raise PlateError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise PlateError(f"{what} is empty: shape {image.shape}")
    if image.dtype != np.uint8:
        raise PlateError(f"{what} must be uint8, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    raise PlateError(f"{what} must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")


def load_image(path: Path) -> UInt8Array:
    """Read an image file as (H, W, 3) uint8 BGR.

    Raises:
        PlateError: the file is missing, unreadable, not an image, or empty.
    """
    import cv2

    if not path.is_file():
        raise PlateError(f"cannot read {path}: no such file")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise PlateError(f"cannot read {path}: {e.strerror or e}") from e
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise PlateError(f"cannot read {path}: not an image file (or a corrupt one)")
    return as_bgr(image, str(path))


def apply_priors(
    found: Sequence[tuple[grammar.PlateText, float]], priors: Mapping[str, float]
) -> list[tuple[grammar.PlateText, float]]:
    """Multiply each valid plate's probability by the prior of its series kind and re-rank.

    The recogniser's probabilities say what the glyphs look like; how common a layout is says
    something too. A two-letter (50 cc) series is one motorbike in fifty on these roads, so
    ``59-NZ`` (Z at 0.6, 2 at 0.35) should lose to ``59-N2``.
    """
    scored = [(plate, p * priors.get(plate.series_kind, 1.0)) for plate, p in found]
    return sorted(scored, key=lambda pp: pp[1], reverse=True)


class PlateReader:
    """Reads one- and two-line Vietnamese plate crops with PP-OCRv6 det + rec and the plate grammar."""

    def __init__(
        self,
        config: PlateReaderConfig | None = None,
        recogniser: TextRecognizer | None = None,
        detector: TextDetector | None = None,
    ) -> None:
        """Build the reader; the models load here (not at import).

        Raises:
            models.ModelError: a model file is missing or altered.
            models.runtime.InferenceError: a model cannot be loaded.
        """
        self.config = config or PlateReaderConfig()
        cfg = self.config
        options = RuntimeOptions(intra_op_threads=cfg.threads)
        self.recogniser = recogniser or TextRecognizer(
            options=options, alphabet=cfg.alphabet, top_k=cfg.top_k, max_width=cfg.max_line_width
        )
        self.detector = detector or TextDetector(
            options=options, short_side=cfg.det_short_side, max_side=cfg.det_max_side
        )

    def line_images(self, image: UInt8Array) -> list[UInt8Array]:
        """Upright line images (each (48, w, 3) uint8) of a crop, top to bottom.

        Raises:
            PlateError: bad crop.
            models.runtime.InferenceError: the detector failed.
        """
        image = as_bgr(image)
        return self._rectify(image, self.detector.probability_map(image))

    def _rectify(self, image: UInt8Array, prob: npt.NDArray[np.float32]) -> list[UInt8Array]:
        cfg = self.config
        boxes = find_text_boxes(
            prob, cfg.det_thresh, cfg.box_thresh, cfg.unclip_ratio, along=cfg.unclip_along
        )
        rows = select_lines(merge_rows(boxes))
        h, w = image.shape[:2]
        quads = [scale_quad(b.quad, w / prob.shape[1], h / prob.shape[0]) for b in rows]
        if not quads:
            quads = fallback_quads(image)
        lines = []
        for q in quads:
            try:
                lines.append(warp_line(image, q, max_width=cfg.max_line_width))
            except ValueError:  # a sliver of a box on a tiny crop: nothing to read there
                logger.debug("skipped a degenerate line box %s", q.tolist())
        return lines

    def read(self, image: UInt8Array) -> PlateReading:
        """Read one plate crop.

        Args:
            image: (H, W, 3) uint8 BGR (grey or BGRA accepted), the plate and a little margin.

        Raises:
            PlateError: the crop is not an image or is empty.
            models.runtime.InferenceError: a model failed.
        """
        image = as_bgr(image)
        t0 = time.perf_counter()
        prob = self.detector.probability_map(image)
        t1 = time.perf_counter()
        line_imgs = self._rectify(image, prob)
        t2 = time.perf_counter()
        decoded = self.recogniser.recognise(line_imgs) if line_imgs else []
        t3 = time.perf_counter()
        reading = self.interpret(decoded)
        t4 = time.perf_counter()
        times = StageTimes(
            detect_ms=(t1 - t0) * 1e3,
            rectify_ms=(t2 - t1) * 1e3,
            recognise_ms=(t3 - t2) * 1e3,
            grammar_ms=(t4 - t3) * 1e3,
            total_ms=(t4 - t0) * 1e3,
        )
        return dataclasses.replace(reading, times=times)

    def read_file(self, path: Path) -> PlateReading:
        """Read a plate crop from an image file.

        Raises:
            PlateError: the file is missing, unreadable, not an image or empty.
            models.runtime.InferenceError: a model failed.
        """
        return self.read(load_image(path))

    def interpret(self, decoded: Sequence[DecodedLine]) -> PlateReading:
        """Turn recognised lines into a reading (grammar, alternatives, confidence); times left at 0."""
        cfg = self.config
        raw = " / ".join(d.text for d in decoded)
        lattice = [d.positions for d in decoded if d.positions]
        found = (
            grammar.n_best_valid(lattice, cfg.n_best, confusion_weight=cfg.confusion_weight)
            if lattice
            else []
        )
        if not found:
            return PlateReading(raw, None, 0.0, False, False, len(decoded), (), StageTimes())
        found = apply_priors(found, cfg.series_priors)
        best, best_p = found[0]
        total = sum(p for _, p in found)
        confidence = best_p / total if total > 0 else 0.0
        alternatives = tuple(
            (plate.formatted, p / total) for plate, p in found[: cfg.max_alternatives] if plate.formatted
        )
        return PlateReading(
            raw,
            best,
            float(confidence),
            True,
            confidence >= cfg.min_confidence,
            len(decoded),
            alternatives,
            StageTimes(),
        )


def default_reader(config: PlateReaderConfig | None = None) -> PlateReader:
    """A `PlateReader` with the registry's PP-OCRv6 models."""
    return PlateReader(config)
