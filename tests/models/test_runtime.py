"""The ONNX Runtime wrapper: provider fallback is visible, failures become InferenceError."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

from models.runtime import InferenceError, OnnxSession, RuntimeOptions, available_providers


def _identity_model() -> bytes:
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_runs_and_reports_its_provider() -> None:
    sess = OnnxSession(_identity_model(), RuntimeOptions(intra_op_threads=1), name="relu")
    (y,) = sess.run({"x": np.array([[-1.0, 0.0, 2.0]], np.float32)})
    np.testing.assert_array_equal(y, [[0.0, 0.0, 2.0]])
    assert sess.providers[0] == "CPUExecutionProvider"
    assert sess.input_names == ["x"] and sess.output_names == ["y"]


@pytest.mark.skipif("CUDAExecutionProvider" in available_providers(), reason="a CUDA build is installed")
def test_missing_provider_falls_back_to_cpu_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        sess = OnnxSession(_identity_model(), RuntimeOptions(providers=("cuda", "cpu")), name="relu")
    assert sess.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in caplog.text and "not available" in caplog.text


def test_bad_input_raises_inference_error() -> None:
    sess = OnnxSession(_identity_model(), name="relu")
    with pytest.raises(InferenceError, match=r"relu: inference failed for inputs \{'x': \(2, 5\)\}"):
        sess.run({"x": np.zeros((2, 5), np.float32)})


def test_unloadable_model_raises_inference_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(InferenceError, match="cannot load model"):
        OnnxSession(bad, name="bad")
