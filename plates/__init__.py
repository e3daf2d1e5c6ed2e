"""Licence plates: detection, rectification, PP-OCR recognition, Vietnamese plate grammar, fusion.

Light on purpose: importing `plates` loads no model and no OpenCV. The pieces:

- `plates.detect.PlateDetector`: YOLOv8n plate detector on ONNX Runtime (whole images, vehicle crops)
- `plates.reader.PlateReader`: one crop → `PlateReading` (one or two lines, grammar-checked, confidence)
- `plates.anpr.PlateScanner`: detect → read → colour, end to end
- `plates.fusion.PlateVote`: several readings of one vehicle → one fused plate
- `plates.grammar`: Vietnamese (and EU/BR) plate grammar, canonical forms
"""

from plates.errors import PlateError

__all__ = ["PlateError"]
