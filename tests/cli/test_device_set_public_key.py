"""`phatnguoi devices set-public-key` as the installer runs it on the server: the README's order (the
wrong `.pub` registered, then the box's own), and its refusals in one line. The edge side of the fix
(the box holding its evidence until then, and sending it once after) is in tests/edge/test_key_mismatch.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_server_cli import run
from violations.manifest import generate_keypair, load_private_key, public_key_fingerprint

DEVICE = "edge-01"


def test_the_box_key_replaces_a_wrong_registration(tmp_path: Path, server_env: dict[str, str]) -> None:
    for name in ("first", "box"):
        generate_keypair(tmp_path / f"{name}.pem", tmp_path / f"{name}.pub")
    assert run(["db", "upgrade"], server_env).returncode == 0
    added = run(
        ["devices", "add", DEVICE, "--public-key", str(tmp_path / "first.pub"), "--camera", "c1"], server_env
    )
    assert added.returncode == 0, added.stderr
    first, box = (public_key_fingerprint(load_private_key(tmp_path / f"{n}.pem")) for n in ("first", "box"))

    proc = run(["devices", "set-public-key", DEVICE, "--public-key", str(tmp_path / "box.pub")], server_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"device {DEVICE}: public key sha256 {first[:16]}… replaced by {box[:16]}…"
    again = run(["devices", "set-public-key", DEVICE, "--public-key", str(tmp_path / "box.pub")], server_env)
    assert again.stdout.strip() == f"device {DEVICE} already has this public key (sha256 {box[:16]}…)"
    listed = json.loads(run(["devices", "list", "--json"], server_env).stdout)
    assert [d["id"] for d in listed] == [DEVICE]  # the same device, API key unchanged
    assert listed[0]["key_id"] == added.stdout.strip().splitlines()[-1].split("_")[1]


def test_refusals_are_one_line(tmp_path: Path, server_env: dict[str, str]) -> None:
    generate_keypair(tmp_path / "box.pem", tmp_path / "box.pub")
    (tmp_path / "bad.pub").write_text("not a key\n")
    assert run(["db", "upgrade"], server_env).returncode == 0
    cases = [
        (["nobody", "--public-key", str(tmp_path / "box.pub")], 1, "error: no device 'nobody'"),
        (["nobody", "--public-key", str(tmp_path / "none.pub")], 2, "error: public key file not found: "),
        (["nobody", "--public-key", str(tmp_path / "bad.pub")], 1, "error: public key: "),
    ]
    for args, code, line in cases:
        proc = run(["devices", "set-public-key", *args], server_env)
        assert proc.returncode == code, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith(line), proc.stderr
    helped = run(["devices", "--help"], {**server_env, "COLUMNS": "200"})
    assert "set-public-key" in helped.stdout
