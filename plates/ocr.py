"""PP-OCR text detector and recogniser: the only place that knows their tensor layouts.

Recogniser (PP-OCRv6 rec): input ``(N, 3, 48, W)`` float32, BGR, ``(x / 255 - 0.5) / 0.5``; output
``(N, W / 8, C)`` softmax over the model's dictionary with the CTC blank at index 0 and a space at
the end. The dictionary (18 708 entries, mostly CJK) lives in the model metadata under ``character``.

A plate needs only digits, capital letters and the separators ``-`` and ``.``. Instead of decoding
over 18 710 classes and hoping the argmax lands on a plate character, we cut the classifier's last
layer down to blank + the plate alphabet when the session is built (`restrict_rec_head`). The
softmax then runs over the plate alphabet only, which is exactly masking every other class's logit
to -inf before the argmax, and it also saves the 120x18 710 matmul per time step.
`mask_probabilities` does the same after the fact for a model whose head cannot be edited.

Detector (PP-OCRv6 det, a DB segmentation net): input ``(1, 3, H, W)`` with H and W multiples of 32,
same normalisation; output ``(1, 1, H, W)`` text probability. On a plate crop scaled to a short side
of about 96 px it draws one clean band per text line, which `plates.rectify` turns into line boxes.

CTC decoding (`ctc_decode_topk`) follows the best path (argmax per frame, repeats collapsed, blanks
dropped) and keeps, for each emitted character, the top-k alternatives seen over the frames of that
character, so the grammar can swap a ``6`` for a ``G`` where only a letter is allowed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from models.runtime import InferenceError, OnnxSession, RuntimeOptions
from plates.types import LineCandidates, Position

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

#: Characters a Vietnamese plate can show: digits, the series letters, and the separators. The
#: letters I, J, O, Q and W never appear in a civilian series; leaving them out stops ``0``/``O`` and
#: ``1``/``I`` from splitting the probability of one glyph between two classes.
PLATE_ALPHABET = "0123456789ABCDEFGHKLMNPRSTUVXYZ-."
BLANK = ""

REC_HEIGHT = 48
#: The recogniser downsamples width by 8: one CTC time step per 8 input columns.
REC_STRIDE = 8
DET_MULTIPLE = 32


@dataclass(frozen=True, slots=True)
class DecodedLine:
    """One recognised line.

    Attributes:
        text: best-path text, separators included.
        positions: per emitted character, its alternatives best first (separators included).
        spans: per emitted character, the (first, last + 1) CTC time steps it covered.
    """

    text: str
    positions: LineCandidates
    spans: tuple[tuple[int, int], ...]

    @property
    def confidence(self) -> float:
        """Probability of the best path's characters: the product of each position's best prob."""
        return float(np.prod([p[0][1] for p in self.positions])) if self.positions else 0.0


def rec_dictionary(metadata: dict[str, str]) -> tuple[str, ...]:
    """The recogniser's class list from its ONNX metadata: blank, the dictionary, then a space.

    Raises:
        InferenceError: the metadata has no ``character`` entry.
    """
    if "character" not in metadata:
        raise InferenceError(f"PP-OCR rec model has no 'character' metadata (keys: {sorted(metadata)})")
    return (BLANK, *metadata["character"].split("\n"), " ")


def alphabet_indices(dictionary: Sequence[str], alphabet: str) -> npt.NDArray[np.int64]:
    """Indices into `dictionary` of blank (0) followed by each character of `alphabet`, in that order.

    Raises:
        ValueError: a character of `alphabet` is not in `dictionary`.
    """
    where = {c: i for i, c in enumerate(dictionary) if i > 0}
    missing = [c for c in alphabet if c not in where]
    if missing:
        raise ValueError(f"characters not in the recogniser dictionary: {''.join(missing)!r}")
    return np.array([0, *(where[c] for c in alphabet)], dtype=np.int64)


def mask_probabilities(probs: npt.ArrayLike, keep: npt.ArrayLike) -> FloatArray:
    """Keep only the classes `keep` of a softmax output and renormalise.

    Equivalent to setting every other class's logit to -inf before the softmax.

    Args:
        probs: (..., C) softmax probabilities.
        keep: (K,) class indices to keep (blank first).

    Returns:
        (..., K) float32 probabilities summing to 1 over the last axis.
    """
    p = np.asarray(probs, dtype=np.float32)[..., np.asarray(keep)]
    total = p.sum(axis=-1, keepdims=True)
    return np.asarray(p / np.maximum(total, 1e-12), dtype=np.float32)


def restrict_rec_head(
    model: Path | bytes | onnx.ModelProto, keep: Sequence[int] | npt.NDArray[np.int64]
) -> bytes:
    """Cut the classifier of a PP-OCR rec export down to the classes `keep`.

    The graph ends ``MatMul(W (D, C)) -> Add(b (C,)) -> [Identity] -> Softmax``; W's columns and b's
    entries are sliced to `keep`, so output class i is old class ``keep[i]``. A `ModelProto` given
    is not modified.

    Raises:
        InferenceError: the graph does not end in that pattern.
    """
    import onnx
    from onnx import numpy_helper

    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    elif isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    else:
        proto = onnx.load(str(model))
    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    inits = {init.name: init for init in graph.initializer}

    def producer_of(name: str, op: str) -> onnx.NodeProto:
        node = producers.get(name)
        while node is not None and node.op_type == "Identity":
            node = producers.get(node.input[0])
        if node is None or node.op_type != op:
            found = node.op_type if node is not None else "nothing"
            raise InferenceError(f"rec head: expected {op} before the softmax, found {found}")
        result: onnx.NodeProto = node
        return result

    softmax = producers.get(graph.output[0].name)
    if softmax is None or softmax.op_type != "Softmax":
        raise InferenceError("rec head: the output is not produced by a Softmax")
    add = producer_of(softmax.input[0], "Add")
    bias_name = next((i for i in add.input if i in inits), None)
    matmul_in = next((i for i in add.input if i not in inits), None)
    if bias_name is None or matmul_in is None:
        raise InferenceError("rec head: the Add before the softmax has no bias initializer")
    matmul = producer_of(matmul_in, "MatMul")
    weight_name = matmul.input[1]
    if weight_name not in inits:
        raise InferenceError("rec head: the classifier weight is not an initializer")
    keep_arr = np.asarray(keep, dtype=np.int64)
    weight = numpy_helper.to_array(inits[weight_name])
    bias = numpy_helper.to_array(inits[bias_name])
    if weight.ndim != 2 or bias.shape != (weight.shape[1],) or keep_arr.max() >= weight.shape[1]:
        raise InferenceError(f"rec head: unexpected classifier shapes {weight.shape} / {bias.shape}")
    inits[weight_name].CopyFrom(
        numpy_helper.from_array(np.ascontiguousarray(weight[:, keep_arr]), weight_name)
    )
    inits[bias_name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(bias[keep_arr]), bias_name))
    out_dims = graph.output[0].type.tensor_type.shape.dim
    if out_dims:
        out_dims[-1].dim_value = len(keep_arr)
    del graph.value_info[:]
    return bytes(proto.SerializeToString())


def rec_width(height: int, width: int, rec_height: int = REC_HEIGHT) -> int:
    """Width of a line image scaled to `rec_height` rows, keeping its aspect ratio (at least 1)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"line image must be non-empty, got {height}x{width}")
    return max(1, math.ceil(rec_height * width / height))


def normalise(image: npt.NDArray[np.generic]) -> FloatArray:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 in [-1, 1], PP-OCR's ``(x / 255 - 0.5) / 0.5``."""
    return np.asarray(image.transpose(2, 0, 1), dtype=np.float32) * np.float32(2 / 255) - np.float32(1)


def prepare_rec_batch(
    lines: Sequence[UInt8Array],
    rec_height: int = REC_HEIGHT,
    max_width: int = 320,
    multiple: int = REC_STRIDE,
) -> FloatArray:
    """Resize line images to `rec_height` rows and pad them right to one common width.

    Each line keeps its aspect ratio unless it would exceed `max_width`, in which case it is squeezed
    to `max_width`. Padding is 0 (mid grey after normalisation), as PP-OCR pads.

    Args:
        lines: (h_i, w_i, 3) uint8 BGR images.

    Returns:
        (N, 3, rec_height, W) float32, W the widest resized line rounded up to `multiple`.

    Raises:
        ValueError: `lines` is empty or a line has zero size.
    """
    import cv2

    if not lines:
        raise ValueError("no line images to recognise")
    widths = [min(max_width, rec_width(ln.shape[0], ln.shape[1], rec_height)) for ln in lines]
    batch_w = max(multiple, math.ceil(max(widths) / multiple) * multiple)
    batch = np.zeros((len(lines), 3, rec_height, batch_w), dtype=np.float32)
    for i, (line, w) in enumerate(zip(lines, widths, strict=True)):
        resized = cv2.resize(line, (w, rec_height), interpolation=cv2.INTER_LINEAR)
        batch[i, :, :, :w] = normalise(resized)
    return batch


def ctc_decode_topk(
    probs: npt.ArrayLike, charset: Sequence[str], k: int = 3, min_prob: float = 0.02
) -> DecodedLine:
    """Best-path CTC decode of one line, with top-k alternatives per emitted character.

    The best path takes the argmax class per time step, merges runs of the same class and drops
    blanks. For the run of frames that emitted a character, each class's score is its highest
    probability over those frames; the emitted class is first (it is the argmax on every frame of
    its run), then the next best non-blank classes down to `min_prob`, at most `k` in all.

    Args:
        probs: (T, K) per-step probabilities over `charset`.
        charset: (K,) characters, index 0 the blank.
        k: alternatives kept per position.
        min_prob: alternatives below this are dropped (the best is always kept).

    Raises:
        ValueError: `probs` is not 2-D or does not match `charset`.
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != len(charset):
        raise ValueError(f"probs must be (T, {len(charset)}), got {p.shape}")
    best = p.argmax(axis=1)
    # Run boundaries of the argmax sequence.
    starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    ends = np.r_[starts[1:], len(best)]
    positions: list[Position] = []
    spans: list[tuple[int, int]] = []
    chars: list[str] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        cls = int(best[s])
        if cls == 0:
            continue
        score = p[s:e, 1:].max(axis=0)  # classes 1..K-1
        order = np.argsort(-score)[:k]
        alts = tuple(
            (charset[int(j) + 1], float(score[j]))
            for rank, j in enumerate(order)
            if rank == 0 or score[j] >= min_prob
        )
        positions.append(alts)
        spans.append((s, e))
        chars.append(charset[cls])
    return DecodedLine("".join(chars), tuple(positions), tuple(spans))


class TextRecognizer:
    """PP-OCRv6 line recogniser restricted to a plate alphabet; recognises a batch of lines in one call."""

    def __init__(
        self,
        model: Path | None = None,
        options: RuntimeOptions | None = None,
        alphabet: str = PLATE_ALPHABET,
        top_k: int = 3,
        max_width: int = 320,
    ) -> None:
        """Load the model (``ppocrv6-rec`` from the registry unless `model` is given).

        Raises:
            models.ModelError: the model file is missing or altered.
            InferenceError: the model cannot be loaded or has no dictionary.
        """
        import onnx

        import models

        path = model if model is not None else models.resolve("ppocrv6-rec")
        options = options or RuntimeOptions(intra_op_threads=2)
        try:
            proto = onnx.load(str(path))
        except Exception as e:  # onnx raises protobuf's untyped errors
            raise InferenceError(f"ppocr-rec: cannot load {path}: {e}") from e
        dictionary = rec_dictionary({p.key: p.value for p in proto.metadata_props})
        keep = alphabet_indices(dictionary, alphabet)
        self.charset: tuple[str, ...] = (BLANK, *alphabet)
        self._keep: npt.NDArray[np.int64] | None = None
        source: Path | bytes
        try:
            source = restrict_rec_head(proto, keep)
        except InferenceError as e:
            logger.warning("cannot restrict the rec head (%s); masking its output instead", e)
            source, self._keep = path, keep
        self.session = OnnxSession(source, options, name="ppocr-rec")
        self.top_k = top_k
        self.max_width = max_width
        self._input = self.session.input_names[0]
        self.session.warm_up({self._input: np.zeros((2, 3, REC_HEIGHT, 160), np.float32)})

    def probabilities(self, batch: FloatArray) -> FloatArray:
        """(N, 3, 48, W) prepared batch -> (N, W / 8, K) probabilities over `charset`.

        Raises:
            InferenceError: the model failed.
        """
        out = self.session.run({self._input: batch})[0]
        if self._keep is not None:
            return mask_probabilities(out, self._keep)
        return np.asarray(out, dtype=np.float32)

    def recognise(self, lines: Sequence[UInt8Array]) -> list[DecodedLine]:
        """Recognise line images (each (h, w, 3) uint8 BGR) in one batched model call.

        Raises:
            ValueError: no lines, or a line has zero size.
            InferenceError: the model failed.
        """
        batch = prepare_rec_batch(lines, max_width=self.max_width)
        probs = self.probabilities(batch)
        return [ctc_decode_topk(p, self.charset, k=self.top_k) for p in probs]


def det_input_size(height: int, width: int, short_side: int, max_side: int) -> tuple[int, int]:
    """Detector input (h, w): scale the short side to `short_side`, cap the long side at `max_side`,
    round both to multiples of 32 (at least 32)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image must be non-empty, got {height}x{width}")
    scale = short_side / min(height, width)
    scale = min(scale, max_side / max(height, width))
    h = max(DET_MULTIPLE, round(height * scale / DET_MULTIPLE) * DET_MULTIPLE)
    w = max(DET_MULTIPLE, round(width * scale / DET_MULTIPLE) * DET_MULTIPLE)
    return h, w


class TextDetector:
    """PP-OCRv6 text detector run on a small plate crop; returns the text probability map."""

    def __init__(
        self,
        model: Path | None = None,
        options: RuntimeOptions | None = None,
        short_side: int = 96,
        max_side: int = 320,
    ) -> None:
        """Load the model (``ppocrv6-det`` from the registry unless `model` is given).

        Raises:
            models.ModelError: the model file is missing or altered.
            InferenceError: the model cannot be loaded.
        """
        import models

        path = model if model is not None else models.resolve("ppocrv6-det")
        self.session = OnnxSession(path, options or RuntimeOptions(intra_op_threads=2), name="ppocr-det")
        self.short_side = short_side
        self.max_side = max_side
        self._input = self.session.input_names[0]
        self.session.warm_up({self._input: np.zeros((1, 3, 96, 128), np.float32)})

    def probability_map(self, image: UInt8Array) -> FloatArray:
        """Text probability of a BGR crop.

        Args:
            image: (H, W, 3) uint8 BGR.

        Returns:
            (h, w) float32 in [0, 1] at the detector's input size (see `det_input_size`); map a point
            back to the image with ``x * W / w``, ``y * H / h``.

        Raises:
            InferenceError: the model failed.
        """
        import cv2

        h, w = det_input_size(image.shape[0], image.shape[1], self.short_side, self.max_side)
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        out = self.session.run({self._input: normalise(resized)[None]})[0]
        return np.asarray(out[0, 0], dtype=np.float32)
