"""The admin commands as an operator runs them (real subprocesses on a real SQLite database), checked
through the real API: districts and cameras set after violations arrived, and cutting off a user or a
device without touching the database by hand."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.evidence import build_package, post_package
from tests.cli.test_server_cli import run
from violations.manifest import generate_keypair, load_private_key

CAMERA = "hanoi-giangvo-langha"
DEVICE = "edge-giangvo-01"
ADMIN_PASSWORD = "chief-password-123"
OFFICER_PASSWORD = "officer-password-123"


def cli(env: dict[str, str], *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """`phatnguoi ARGS` in a subprocess (`password` as PHATNGUOI_NEW_PASSWORD)."""
    return run(list(args), env if password is None else {**env, "PHATNGUOI_NEW_PASSWORD": password})


def cli_ok(env: dict[str, str], *args: str, password: str | None = None) -> str:
    proc = cli(env, *args, password=password)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@dataclass
class Server:
    """A database set up the README's way (admin user, device, no district), and the API on it."""

    env: dict[str, str]
    db_path: Path
    client: TestClient
    device_key: str
    private_key: Ed25519PrivateKey

    def cli(self, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        return cli(self.env, *args, password=password)

    def ok(self, *args: str, password: str | None = None) -> str:
        return cli_ok(self.env, *args, password=password)

    def refused(self, *args: str) -> str:
        """The one line a refused command prints on stderr (exit 1, no traceback)."""
        proc = self.cli(*args)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stderr.strip()

    def upload(self, seed: int, district: str | None = "ba-dinh", key: str | None = None) -> Any:
        pkg = build_package(
            self.private_key,
            device_id=DEVICE,
            camera_id=CAMERA,
            seed=seed,
            district=district,
            overrides={"occurred_at": f"2026-11-23T0{seed}:00:00.000Z"},
        )
        return post_package(self.client, pkg, key or self.device_key)

    def uploaded(self, seed: int, district: str | None = "ba-dinh") -> int:
        r = self.upload(seed, district)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def login(self, username: str, password: str) -> Any:
        return self.client.post("/api/v1/auth/token", data={"username": username, "password": password})

    def token(self, username: str, password: str) -> dict[str, str]:
        r = self.login(username, password)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def review_ids(self, headers: dict[str, str]) -> list[int]:
        r = self.client.get("/api/v1/violations", headers=headers)
        assert r.status_code == 200, r.text
        return sorted(int(v["id"]) for v in r.json()["items"])

    def stats_groups(self, headers: dict[str, str]) -> dict[str | None, int]:
        r = self.client.get("/api/v1/stats/violations", params={"group_by": "district"}, headers=headers)
        assert r.status_code == 200, r.text
        return {g["key"]: g["total"] for g in r.json()["groups"]}

    def listed(self, group: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok(group, "list", "--json"))
        return rows


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    secret = secrets.token_urlsafe(40)
    db_path = tmp_path / "pn.db"
    env = {
        **os.environ,
        "PHATNGUOI_DATABASE_URL": f"sqlite:///{db_path}",
        "PHATNGUOI_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "PHATNGUOI_JWT_SECRET": secret,
        "COLUMNS": "200",
    }
    generate_keypair(tmp_path / "edge.pem", tmp_path / "edge.pub")
    cli_ok(env, "db", "upgrade")
    cli_ok(env, "users", "add", "chief", "--role", "admin", password=ADMIN_PASSWORD)
    added = cli_ok(
        env, "devices", "add", DEVICE, "--public-key", str(tmp_path / "edge.pub"), "--camera", CAMERA
    )
    settings = Settings(
        database_url=env["PHATNGUOI_DATABASE_URL"], evidence_dir=tmp_path / "evidence", jwt_secret=secret
    )
    with TestClient(create_app(settings)) as client:
        yield Server(env, db_path, client, added.splitlines()[-1], load_private_key(tmp_path / "edge.pem"))


@pytest.mark.parametrize("registers", ["users add", "districts add"])
def test_violations_that_arrived_before_their_district_reach_its_officer(
    server: Server, registers: str
) -> None:
    """The README's order: admin, device, serve; the district comes later. Before the fix the officer saw
    1 of 3 violations and supervisors saw 2 under district "?"."""
    early = [server.uploaded(1), server.uploaded(2)]
    assert [c["district"] for c in server.listed("cameras")] == [None]
    if registers == "districts add":
        assert server.ok("districts", "add", "ba-dinh", "--name", "Ba Đình") == (
            f"district ba-dinh added; camera {CAMERA} now in it, with 2 violations that had no district"
        )
    server.ok("users", "add", "off1", "--role", "officer", "--district", "ba-dinh", password=OFFICER_PASSWORD)
    late = server.uploaded(3)

    officer = server.token("off1", OFFICER_PASSWORD)
    assert server.review_ids(officer) == sorted([*early, late])
    assert server.stats_groups(officer) == {"ba-dinh": 3}
    assert server.stats_groups(server.token("chief", ADMIN_PASSWORD)) == {"ba-dinh": 3}
    (camera,) = server.listed("cameras")
    assert (camera["district"], camera["unassigned"]) == ("ba-dinh", 0)
    assert server.listed("districts") == [
        {
            "id": "ba-dinh",
            "name": "Ba Đình" if registers == "districts add" else "ba-dinh",
            "cameras": 1,
            "officers": 1,
        }
    ]
    assert server.ok("db", "verify-audit").startswith("audit log intact")


def test_an_admin_sets_the_district_of_a_camera_whose_evidence_names_none(server: Server) -> None:
    ids = [server.uploaded(1, district=None), server.uploaded(2, district=None)]
    assert server.refused("cameras", "set", CAMERA, "--district", "ba-dinh") == (
        "error: no district 'ba-dinh' (add it first with `districts add`)"
    )
    assert server.ok("districts", "add", "ba-dinh") == "district ba-dinh added"
    server.ok("users", "add", "off1", "--role", "officer", "--district", "ba-dinh", password=OFFICER_PASSWORD)
    officer = server.token("off1", OFFICER_PASSWORD)
    assert server.review_ids(officer) == []
    assert server.listed("cameras")[0]["unassigned"] == 2

    out = server.ok(
        "cameras",
        "set",
        CAMERA,
        "--district",
        "ba-dinh",
        "--lat",
        "21.0245",
        "--lon",
        "105.8155",
        "--name",
        "Giảng Võ - Láng Hạ",
    )
    assert out == f"camera {CAMERA} updated; 2 violations without a district given ba-dinh"
    assert server.review_ids(officer) == ids
    (camera,) = server.listed("cameras")
    assert camera | {"last_seen": None} == {
        "id": CAMERA,
        "name": "Giảng Võ - Láng Hạ",
        "district": "ba-dinh",
        "lat": 21.0245,
        "lon": 105.8155,
        "last_seen": None,
        "unassigned": 0,
    }


def test_a_disabled_user_is_cut_off_at_once_and_a_new_password_replaces_the_old(server: Server) -> None:
    server.ok("users", "add", "off1", "--role", "officer", "--district", "ba-dinh", password=OFFICER_PASSWORD)
    issued_before = server.token("off1", OFFICER_PASSWORD)
    assert server.client.get("/api/v1/me", headers=issued_before).status_code == 200

    assert server.ok("users", "disable", "off1") == "user off1 disabled"
    assert server.client.get("/api/v1/me", headers=issued_before).status_code == 401
    assert server.client.get("/api/v1/violations", headers=issued_before).status_code == 401
    assert server.login("off1", OFFICER_PASSWORD).status_code == 401
    assert {u["username"]: u["active"] for u in server.listed("users")} == {"chief": True, "off1": False}

    assert server.ok("users", "enable", "off1") == "user off1 enabled"
    assert server.client.get("/api/v1/me", headers=server.token("off1", OFFICER_PASSWORD)).status_code == 200

    new_password = "another-password-456"
    assert server.ok("users", "passwd", "off1", password=new_password) == "user off1: password changed"
    assert server.login("off1", OFFICER_PASSWORD).status_code == 401
    assert server.login("off1", new_password).status_code == 200
    assert server.refused("users", "passwd", "off1", "--password", "short") == (
        "error: password too short: at least 10 characters"
    )


def test_a_disabled_device_is_refused_and_a_rotated_key_replaces_the_old(server: Server) -> None:
    assert server.upload(1).status_code == 201
    assert server.ok("devices", "disable", DEVICE) == f"device {DEVICE} disabled"
    refused = server.upload(2)
    assert refused.status_code == 403 and refused.json()["detail"] == f"device {DEVICE} is disabled"
    assert [(d["id"], d["cameras"], d["active"]) for d in server.listed("devices")] == [
        (DEVICE, [CAMERA], False)
    ]
    assert server.ok("devices", "enable", DEVICE) == f"device {DEVICE} enabled"
    assert server.upload(2).status_code == 201

    old_key = server.device_key
    out = server.ok("devices", "rotate-key", DEVICE).splitlines()
    assert out[0] == f"device {DEVICE}: new API key (shown once; the old one no longer works):"
    new_key = out[-1]
    assert new_key.startswith("pnd_") and new_key != old_key
    assert server.upload(3, key=old_key).status_code == 401
    assert server.upload(3, key=new_key).status_code == 201
    assert server.listed("devices")[0]["key_id"] == new_key.split("_")[1]


def test_verify_audit_finds_an_edited_row_and_deleted_newest_rows(server: Server) -> None:
    server.uploaded(1)
    out = server.ok("db", "verify-audit")
    assert out.startswith("audit log intact: 3 rows; anchor 3:")  # user.add, device.add, violation.received
    anchor = out.rsplit(" ", 1)[-1]
    assert server.ok("db", "verify-audit", "--anchor", anchor) == out
    with sqlite3.connect(server.db_path) as conn:  # as someone with the database file would
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
        conn.execute("DELETE FROM audit_log WHERE seq = 3")
    assert server.ok("db", "verify-audit").startswith("audit log intact: 2 rows")  # unnoticed without…
    deleted = server.cli("db", "verify-audit", "--anchor", anchor)  # …the anchor
    assert deleted.returncode == 1
    assert (
        deleted.stdout.strip() == "audit log BROKEN at row 3: anchor row 3 is missing (newest rows deleted)"
    )
    with sqlite3.connect(server.db_path) as conn:
        conn.execute("UPDATE audit_log SET actor = 'system:someone' WHERE seq = 2")
    edited = server.cli("db", "verify-audit")
    assert edited.returncode == 1
    assert (
        edited.stdout.strip() == "audit log BROKEN at row 2: row 2: content does not match its hash (edited)"
    )


REFUSALS = [
    (["users", "disable", "nobody"], "error: no user 'nobody'"),
    (["users", "enable", "nobody"], "error: no user 'nobody'"),
    (["users", "passwd", "nobody", "--password", "long enough pw"], "error: no user 'nobody'"),
    (["devices", "disable", "edge-x"], "error: no device 'edge-x'"),
    (["devices", "enable", "edge-x"], "error: no device 'edge-x'"),
    (["devices", "rotate-key", "edge-x"], "error: no device 'edge-x'"),
    (
        ["cameras", "set", "cam-typo", "--name", "x"],
        "error: no camera 'cam-typo' (cameras are registered by `devices add --camera`)",
    ),
    (["cameras", "set", CAMERA], "error: nothing to change: give a name, a district or lat and lon"),
    (["cameras", "set", CAMERA, "--lat", "91", "--lon", "0"], "error: lat 91.0 / lon 0.0 out of range"),
    (
        ["districts", "add", "ba dinh"],
        "error: district 'ba dinh': use 1-64 letters, digits, '_', '.', '-'",
    ),
]


def test_refusals_are_one_line(server: Server) -> None:
    for args, line in REFUSALS:
        assert server.refused(*args).startswith(line), args


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("users", ["add", "list", "disable", "enable", "passwd"]),
        ("devices", ["add", "list", "disable", "enable", "rotate-key"]),
        ("db", ["upgrade", "verify-audit"]),
        ("districts", ["add", "list"]),
        ("cameras", ["set", "list"]),
    ],
)
def test_help_lists_the_admin_commands(group: str, commands: list[str]) -> None:
    proc = run([group, "--help"], {**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("│ ")]
    assert [c for c in listed if c in commands] == commands
