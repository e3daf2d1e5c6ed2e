"""An edge uploader process: drains an existing outbox to a server, then exits.

Run by test_faults.py, which SIGKILLs it in the middle of its uploads and starts it again.
Usage: EDGE_DEVICE_KEY=... python -m tests.edge.uploader_proc OUTBOX_DB PUBLIC_KEY_PEM SERVER_URL DEADLINE_S
Exit code 0 when the outbox is empty (everything acknowledged), 3 when the deadline passed first.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from phatnguoi.outbox import Outbox
from phatnguoi.uploader import Uploader, UploaderConfig
from violations.manifest import load_public_key


def main() -> int:
    db, pem, url, deadline_s = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    outbox = Outbox(db, load_public_key(pem))
    config = UploaderConfig(server_url=url, backoff_initial_s=0.2, backoff_max_s=1.0, evidence_batch=2)
    uploader = Uploader(outbox, os.environ["EDGE_DEVICE_KEY"], config)
    uploader.start()
    end = time.monotonic() + deadline_s
    while outbox.stats().depth and time.monotonic() < end:
        time.sleep(0.05)
    uploader.stop()
    left = outbox.stats().depth
    s = uploader.stats()
    sys.stdout.write(f"sent {s.evidence_sent} duplicates {s.evidence_duplicates} left {left}\n")
    outbox.close()
    return 0 if left == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
