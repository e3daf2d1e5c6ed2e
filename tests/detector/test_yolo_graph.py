"""Re-shaping the real YOLOv8n export: identical outputs at its own size, correct shapes elsewhere."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from detector.yolo_graph import GraphEditError, anchor_grid, reshape_yolov8
from models import ModelError, resolve


@pytest.fixture(scope="module")
def coco_model() -> onnx.ModelProto:
    try:
        path = resolve("yolov8n-coco")
    except ModelError as e:
        pytest.skip(str(e))
    return onnx.load(str(path))


def test_anchor_grid_matches_the_exported_constants(coco_model: onnx.ModelProto) -> None:
    consts = {i.name: numpy_helper.to_array(i) for i in coco_model.graph.initializer}
    anchors, stride = anchor_grid(640, 640)
    exported_anchors = [v for v in consts.values() if v.shape == (1, 2, 8400)]
    exported_strides = [v for v in consts.values() if v.shape == (1, 8400)]
    assert exported_anchors and exported_strides
    for a in exported_anchors:
        np.testing.assert_array_equal(a[0], anchors)
    np.testing.assert_array_equal(exported_strides[0][0], stride)


def test_same_size_outputs_are_identical(coco_model: onnx.ModelProto) -> None:
    import onnxruntime as ort

    x = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    original = ort.InferenceSession(coco_model.SerializeToString(), providers=["CPUExecutionProvider"])
    edited = ort.InferenceSession(reshape_yolov8(coco_model, 640, 640), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(original.run(None, {"images": x})[0], edited.run(None, {"images": x})[0])


def test_other_size_and_batch(coco_model: onnx.ModelProto) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(reshape_yolov8(coco_model, 384, 640), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((2, 3, 384, 640), dtype=np.float32)
    (out,) = sess.run(None, {"images": x})
    assert out.shape == (2, 84, 384 * 640 // 64 + 384 * 640 // 256 + 384 * 640 // 1024)
    (single,) = sess.run(None, {"images": x[1:]})
    np.testing.assert_allclose(out[1], single[0], atol=1e-4)


@pytest.mark.parametrize(("h", "w"), [(480, 630), (0, 640), (100, 640)])
def test_rejects_sizes_off_the_stride(coco_model: onnx.ModelProto, h: int, w: int) -> None:
    with pytest.raises(GraphEditError, match="multiples of 32"):
        reshape_yolov8(coco_model, h, w)


def test_rejects_a_graph_without_yolo_constants() -> None:
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 64, 64])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 64, 64])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    with pytest.raises(GraphEditError, match="not a YOLOv8"):
        reshape_yolov8(onnx.helper.make_model(graph), 64, 64)
