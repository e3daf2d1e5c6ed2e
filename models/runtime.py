"""One thin ONNX Runtime wrapper shared by every model (YOLO detectors, PP-OCR det/rec).

What it takes care of, once:
- explicit execution providers, and a warning when a requested provider is not really used;
- thread counts and ``allow_spinning`` set deliberately: several sessions in one process on a 2-core
  box must not spin against each other;
- a warm-up run at load, so the first real frame is not slow;
- runtime failures re-raised as `InferenceError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort

logger = logging.getLogger(__name__)

Provider = Literal["cpu", "openvino", "cuda", "tensorrt"]

_ORT_NAMES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class InferenceError(RuntimeError):
    """A model failed to load or to run."""


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """How to run a session. Defaults suit one session on a 2-core edge CPU."""

    providers: tuple[Provider, ...] = ("cpu",)
    intra_op_threads: int = 2
    inter_op_threads: int = 1
    # Spinning burns a core while waiting for work; only worth it with one session in the process.
    allow_spinning: bool = False
    graph_optimization: Literal["basic", "extended", "all"] = "all"
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict)


def available_providers() -> list[str]:
    """Execution providers of the installed onnxruntime build."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


class OnnxSession:
    """An ONNX Runtime session with checked providers, tuned threading and a warm-up.

    `model` is a file path or the serialized model bytes (e.g. after a graph edit).
    """

    def __init__(
        self,
        model: Path | bytes,
        options: RuntimeOptions | None = None,
        name: str = "model",
    ) -> None:
        import onnxruntime as ort

        self.name = name
        self.options = options or RuntimeOptions()
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads
        so.inter_op_num_threads = self.options.inter_op_threads
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.options.graph_optimization]
        spin = "1" if self.options.allow_spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        so.add_session_config_entry("session.inter_op.allow_spinning", spin)
        so.log_severity_level = 3

        requested = [_ORT_NAMES[p] for p in self.options.providers]
        available = set(ort.get_available_providers())
        usable = [p for p in requested if p in available]
        missing = [p for p in requested if p not in available]
        if missing:
            logger.warning("%s: execution providers not available, skipped: %s", name, ", ".join(missing))
        if "CPUExecutionProvider" not in usable:
            usable.append("CPUExecutionProvider")
        provider_args: list[str | tuple[str, dict[str, Any]]] = [
            (p, self.options.provider_options[p]) if p in self.options.provider_options else p for p in usable
        ]
        source: str | bytes = str(model) if isinstance(model, Path) else model
        try:
            self._session: ort.InferenceSession = ort.InferenceSession(
                source, sess_options=so, providers=provider_args
            )
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise InferenceError(f"{name}: cannot load model: {e}") from e
        self.providers: list[str] = list(self._session.get_providers())
        first_requested = requested[0] if requested else "CPUExecutionProvider"
        if self.providers and self.providers[0] != first_requested:
            logger.warning("%s: requested %s but running on %s", name, first_requested, self.providers[0])
        inputs = self._session.get_inputs()
        self.input_names: list[str] = [i.name for i in inputs]
        self.input_shapes: list[list[int | str | None]] = [list(i.shape) for i in inputs]
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]

    def metadata(self) -> dict[str, str]:
        """Custom metadata of the model (e.g. PP-OCR's character dictionary)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model. Raises `InferenceError` on any runtime failure."""
        try:
            outputs = self._session.run(self.output_names, inputs)
        except Exception as e:  # onnxruntime raises its own untyped errors
            shapes = {k: v.shape for k, v in inputs.items()}
            raise InferenceError(f"{self.name}: inference failed for inputs {shapes}: {e}") from e
        return [np.asarray(o) for o in outputs]

    def warm_up(self, inputs: dict[str, np.ndarray], runs: int = 1) -> None:
        """Run a few times so lazy initialisation is not paid on the first real input."""
        for _ in range(runs):
            self.run(inputs)


def dims(shape: Sequence[int | str | None]) -> list[int | None]:
    """Static dims of an ONNX input shape: ints stay, symbolic dims become None."""
    return [d if isinstance(d, int) and d > 0 else None for d in shape]
