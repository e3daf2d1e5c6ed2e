"""`phatnguoi edge` with a `public_key` that is not the half of its `private_key` (the .pub of an earlier
`keys generate`, or of another box): refused at the start in one line naming both files. It used to
start, then refuse every package it made as corrupt (``corrupt_package``), with /healthz ok."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import assert_one_line_error
from tests.cli.test_edge_cli import _config, _edge
from violations.manifest import generate_keypair


def test_edge_with_the_public_key_of_another_pair_does_not_start(tmp_path: Path) -> None:
    config = _config(tmp_path, 0)
    generate_keypair(tmp_path / "other.pem", tmp_path / "other.pub")
    config.write_text(config.read_text().replace(str(tmp_path / "k.pub"), str(tmp_path / "other.pub")))
    proc = _edge(config)
    assert proc.returncode == 1, proc.stderr
    assert_one_line_error(
        proc,
        f"error: device.public_key {tmp_path / 'other.pub'} is not the public half of device.private_key "
        f"{tmp_path / 'k.pem'} (sha256 ",
        "`phatnguoi keys generate`",
    )
    assert not (tmp_path / "edge").exists()  # nothing made: data_dir, outbox
