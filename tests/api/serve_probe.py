"""Runs the real server (`api.admin.serve`) with settings from the environment; when it stops
(SIGTERM), writes which heavy modules the process imported to the file named by argv[1].

Used by test_server.py: the server must serve ingest without OpenCV or ONNX Runtime.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from api.admin import serve
from api.settings import load_settings


def main() -> None:
    report, port = Path(sys.argv[1]), int(sys.argv[2])
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler that was
    # installed before it: make that one return, so the report below gets written.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    serve(load_settings(), "127.0.0.1", port)
    report.write_text(json.dumps({m: m in sys.modules for m in ("cv2", "onnxruntime", "numpy")}))


if __name__ == "__main__":
    main()
