"""Re-shape an exported YOLOv8 detection graph to another input size.

Ultralytics exports a graph whose decode step holds constants for one input size: the anchor points
and strides of every grid cell (``(1, 2, 8400)`` and ``(1, 8400)`` at 640×640) and reshape targets
that name 8400. A 640×480 camera frame letterboxed into 640×640 wastes a quarter of the pixels on
padding. This module rewrites those constants for any ``height × width`` (multiples of the largest
stride) and makes the batch dimension symbolic, so one model file serves every camera shape and can
batch several cameras. The weights are untouched: outputs at the original size are identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

STRIDES: tuple[int, ...] = (8, 16, 32)


class GraphEditError(ValueError):
    """The graph is not an Ultralytics YOLOv8 detection export this module understands."""


def anchor_grid(height: int, width: int, strides: Sequence[int] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centres (grid units) and strides of every cell, in the exporter's order.

    Returns:
        anchors: (2, N) float32, x and y of each cell centre in units of its stride (i + 0.5).
        stride: (N,) float32, the stride of each cell.
    """
    points, stride_rows = [], []
    for s in strides:
        h, w = height // s, width // s
        sy, sx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        points.append(np.stack([sx.ravel() + 0.5, sy.ravel() + 0.5]))
        stride_rows.append(np.full(h * w, s, np.float32))
    return np.concatenate(points, axis=1), np.concatenate(stride_rows)


def _initializer_map(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in graph.initializer}


def reshape_yolov8(model: Path | bytes | onnx.ModelProto, height: int, width: int) -> bytes:
    """Rewrite a YOLOv8 detection export for input ``(B, 3, height, width)`` with symbolic batch.

    Raises:
        GraphEditError: the sizes are not multiples of 32 or the graph layout is not recognised.
    """
    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise GraphEditError(f"input size must be positive multiples of 32, got {height}x{width}")
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    elif isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    else:
        proto = onnx.load(str(model))
    graph = proto.graph
    inits = _initializer_map(graph)

    inp = graph.input[0]
    in_dims = inp.type.tensor_type.shape.dim
    if len(in_dims) != 4:
        raise GraphEditError(f"expected a 4-D image input, got {len(in_dims)} dims")
    old_h, old_w = in_dims[2].dim_value, in_dims[3].dim_value
    old_n = sum((old_h // s) * (old_w // s) for s in STRIDES)
    anchors, stride = anchor_grid(height, width)
    new_n = anchors.shape[1]

    in_dims[0].dim_param = "batch"
    in_dims[2].dim_value = height
    in_dims[3].dim_value = width
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        if len(dims) == 3:
            dims[2].dim_value = new_n

    # Anchor and stride constants: the only initializers whose last axis is old_n.
    replaced = {"anchors": 0, "strides": 0}
    for name, init in list(inits.items()):
        arr = numpy_helper.to_array(init)
        if arr.ndim >= 1 and arr.shape[-1] == old_n and arr.dtype == np.float32:
            if arr.shape == (1, 2, old_n):
                new = anchors[None].astype(np.float32)
                replaced["anchors"] += 1
            elif arr.shape == (1, old_n):
                new = stride[None].astype(np.float32)
                replaced["strides"] += 1
            else:
                raise GraphEditError(f"unexpected constant {name} of shape {arr.shape}")
            init.CopyFrom(numpy_helper.from_array(new, name))
    if replaced["anchors"] == 0 or replaced["strides"] == 0:
        raise GraphEditError("no anchor/stride constants found: not a YOLOv8 detection export")

    # Reshape targets: batch → 0 (copy the input's dim), old_n → new_n.
    reshape_shapes = {n.input[1] for n in graph.node if n.op_type == "Reshape"}
    for name in reshape_shapes:
        if name not in inits:
            continue
        shape = numpy_helper.to_array(inits[name]).copy()
        if shape.ndim != 1 or shape.size < 2:
            continue
        if shape[0] == 1:
            shape[0] = 0
        shape[shape == old_n] = new_n
        inits[name].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), name))
    for node in graph.node:
        if node.op_type == "Reshape":
            for attr in node.attribute:
                if attr.name == "allowzero" and attr.i != 0:
                    raise GraphEditError("Reshape with allowzero=1 cannot take a symbolic batch")

    # Drop stale shape annotations; onnxruntime re-infers them.
    del graph.value_info[:]
    return bytes(proto.SerializeToString())


def yolov8_class_names(model: bytes) -> tuple[str, ...]:
    """Class names of an Ultralytics YOLOv8 detection export (a model that is not in the manifest, e.g.
    one fine-tuned by its user), from the ``names`` metadata the exporter writes, checked against the
    graph: a fixed-size 4-D image input and an output ``(1, 4 + classes, N)``.

    Raises:
        GraphEditError: not an ONNX file, no or unreadable ``names``, a dynamic input size, or an output
            that does not fit the class count.
    """
    import ast

    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]  # no stubs installed

    try:
        proto = onnx.load_from_string(model)
    except DecodeError:
        raise GraphEditError("not an ONNX model file") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if "names" not in meta:
        raise GraphEditError(
            "no class names in its metadata ('names', written by Ultralytics' ONNX export): "
            "export it with `phatnguoi train detector` or Ultralytics' `yolo export format=onnx`"
        )
    try:
        raw = ast.literal_eval(meta["names"])
    except (ValueError, SyntaxError):
        raw = None
    if not isinstance(raw, dict) or sorted(raw) != list(range(len(raw))) or not raw:
        raise GraphEditError(f"its 'names' metadata is not {{0: 'name', 1: ...}}: {meta['names'][:80]}")
    names = tuple(str(raw[i]) for i in range(len(raw)))
    if len(proto.graph.input) != 1 or len(proto.graph.output) < 1:
        raise GraphEditError("expected one image input and an output: not a YOLOv8 detection export")
    in_dims = proto.graph.input[0].type.tensor_type.shape.dim
    if len(in_dims) != 4 or in_dims[2].dim_value <= 0 or in_dims[3].dim_value <= 0:
        raise GraphEditError(
            "its input is not a fixed-size (1, 3, H, W) image: export with dynamic=False (the detector "
            "re-shapes it per camera itself)"
        )
    out_dims = [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    if len(out_dims) != 3 or out_dims[1] != 4 + len(names):
        raise GraphEditError(
            f"its output has shape {tuple(out_dims)}, expected (1, {4 + len(names)}, N) for "
            f"{len(names)} classes: not a YOLOv8 detection export"
        )
    return names
