"""`phatnguoi outbox requeue` on a box whose public key file is missing or unreadable: one line naming
the file and the config field, exit code 1, no traceback, the outbox untouched (it used to print
``FileNotFoundError`` with a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from phatnguoi.flows import FlowCount
from phatnguoi.outbox import Outbox
from tests.cli.test_cli import assert_one_line_error
from tests.cli.test_edge_cli import _config, _requeue
from violations.manifest import load_public_key


def _refused_flow(tmp_path: Path) -> None:
    """An outbox in the config's data_dir holding one flow count refused for good."""
    (tmp_path / "edge").mkdir()
    counts = [FlowCount("hanoi-nguyenxien-khuatduytien", "left", "forward", "motorcycle", 0.0, 300.0, 4)]
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(tmp_path / "k.pub")) as box:
        box.enqueue_flows(counts)
        box.mark_permanent_failure(box.next_due(kind="flow"), "HTTP 422: unknown lane")


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (lambda pub: pub.unlink(), ["No such file or directory"]),
        (lambda pub: (pub.unlink(), pub.mkdir()), ["Is a directory"]),
        (lambda pub: pub.write_text("not a key\n"), ["is not a PEM public key"]),
    ],
    ids=["missing", "a-directory", "not-pem"],
)
def test_requeue_with_a_public_key_it_cannot_read(
    tmp_path: Path, make: Callable[[Path], object], needles: list[str]
) -> None:
    config = _config(tmp_path, 0)
    _refused_flow(tmp_path)
    pub = tmp_path / "k.pub"
    key_bytes = pub.read_bytes()
    make(pub)
    proc = _requeue(config, "all")
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(proc, "public key", str(pub), *needles)
    if pub.is_dir():
        pub.rmdir()
    pub.write_bytes(key_bytes)
    with Outbox(tmp_path / "edge" / "outbox.sqlite", load_public_key(pub)) as box:
        assert box.stats().flows["failed_permanent"] == 1  # nothing requeued
