"""Queues every package folder under a root, printing ``queued <event_id>`` after each enqueue returns.

Run by test_outbox.py, which SIGKILLs it in the middle: every id printed must be in the outbox.
Usage: python -m tests.edge.enqueue_proc OUTBOX_DB EVIDENCE_ROOT PUBLIC_KEY_PEM
"""

from __future__ import annotations

import sys
from pathlib import Path

from phatnguoi.outbox import Outbox
from violations.manifest import load_public_key


def main() -> None:
    db, root, pem = (Path(a) for a in sys.argv[1:4])
    outbox = Outbox(db, load_public_key(pem), evidence_root=root)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        result = outbox.enqueue_package(folder)
        sys.stdout.write(f"{result.status} {result.event_id}\n")
        sys.stdout.flush()
    outbox.close()


if __name__ == "__main__":
    main()
