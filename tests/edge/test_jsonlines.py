"""The worker's local JSON-lines logs stay within their size: one rotation kept, nothing half-written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from phatnguoi.pipeline import JsonLines


def test_a_log_rotates_past_its_size_and_keeps_one_previous_file(tmp_path: Path) -> None:
    log = JsonLines(tmp_path / "events.jsonl", max_bytes=200)
    rows = [{"i": i, "rule": "vượt đèn đỏ"} for i in range(40)]
    for row in rows:
        log.write(json.dumps(row, ensure_ascii=False))
    log.close()
    current = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    previous = (tmp_path / "events.jsonl.1").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "events.jsonl").stat().st_size <= 200 + 60  # one line past the limit at most
    assert (tmp_path / "events.jsonl.1").stat().st_size <= 200 + 60
    kept = [json.loads(x) for x in previous + current]
    assert kept == rows[-len(kept) :] and len(kept) >= 5  # the newest rows, in order, whole
    again = JsonLines(tmp_path / "events.jsonl", max_bytes=200)  # a restart appends to the current file
    again.write('{"i": 40}')
    again.close()
    assert (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()[-1] == '{"i": 40}'


def test_a_full_disk_loses_log_lines_not_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does: writing, flushing and closing
    go on, the loss is counted and said once."""
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full on this system")
    log = JsonLines(full)
    with caplog.at_level(logging.ERROR, logger="phatnguoi.pipeline"):
        for i in range(3000):
            log.write(json.dumps({"i": i, "pad": "x" * 40}))
            if i % 500 == 0:
                log.flush()
        log.flush()
        log.close()
    assert log.dropped > 0
    (record,) = caplog.records
    assert record.getMessage().startswith("/dev/full: cannot ")
    assert "No space left on device" in record.getMessage()
