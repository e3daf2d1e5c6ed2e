"""`db upgrade` and `serve` on bad settings and databases, as an operator meets them: real subprocesses.
Each problem is one line naming it and a non-zero exit (they were 75 to 165 lines of traceback), and
no password of the database URL is ever printed."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_one_line_error
from tests.cli.test_server_cli import run
from tests.conftest import REPO_ROOT

PASSWORD = "pw-Never-Printed-7q"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


COMMANDS = [["db", "upgrade"], ["serve"]]


def argv(command: list[str]) -> list[str]:
    """`command`, on a free port for `serve` (where it should never get to listen)."""
    return [*command, "--port", str(closed_port())] if command == ["serve"] else command


@pytest.mark.parametrize("command", COMMANDS, ids=["db-upgrade", "serve"])
def test_a_list_setting_that_is_not_json(server_env: dict[str, str], command: list[str]) -> None:
    proc = run(argv(command), {**server_env, "PHATNGUOI_UPLOAD_MEDIA_TYPES": "image/jpeg"})
    assert_one_line_error(proc, "PHATNGUOI_UPLOAD_MEDIA_TYPES is not valid JSON")


@pytest.mark.parametrize("command", COMMANDS, ids=["db-upgrade", "serve"])
def test_a_sqlite_file_in_a_missing_folder(
    server_env: dict[str, str],
    tmp_path: Path,
    command: list[str],
) -> None:
    url = f"sqlite:///{tmp_path}/no/such/folder/pn.db"
    proc = run(argv(command), {**server_env, "PHATNGUOI_DATABASE_URL": url})
    assert_one_line_error(proc, url, f"folder {tmp_path}/no/such/folder does not exist")


@pytest.mark.parametrize("command", COMMANDS, ids=["db-upgrade", "serve"])
def test_postgresql_down_never_shows_the_password(
    server_env: dict[str, str],
    command: list[str],
) -> None:
    port = closed_port()
    url = f"postgresql://phatnguoi:{PASSWORD}@127.0.0.1:{port}/phatnguoi"
    proc = run(argv(command), {**server_env, "PHATNGUOI_DATABASE_URL": url})
    assert_one_line_error(proc, f"postgresql+psycopg://phatnguoi:***@127.0.0.1:{port}/phatnguoi")
    assert PASSWORD not in proc.stdout + proc.stderr


def test_other_commands_on_a_database_that_is_down_say_so_in_one_line(
    server_env: dict[str, str],
) -> None:
    """`retention` reaches the database without the schema check: the CLI's own last resort."""
    url = f"postgresql://phatnguoi:{PASSWORD}@127.0.0.1:{closed_port()}/phatnguoi"
    proc = run(["retention"], {**server_env, "PHATNGUOI_DATABASE_URL": url})
    assert_one_line_error(proc, "database error: ", "Connection refused")
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=["db-upgrade", "serve"])
def test_a_database_migrated_by_a_newer_release(
    server_env: dict[str, str],
    tmp_path: Path,
    command: list[str],
) -> None:
    """The code was rolled back: `serve` told the operator to run `db upgrade`, which then failed with
    "Can't locate revision identified by '0099'" (109 lines)."""
    assert run(["db", "upgrade"], server_env).returncode == 0
    with sqlite3.connect(tmp_path / "pn.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    proc = run(argv(command), server_env)
    assert_one_line_error(proc, "revision 0099, newer than this code knows", "do not downgrade")
    assert "run `phatnguoi db upgrade`" not in proc.stderr


def test_an_unknown_target_revision(server_env: dict[str, str]) -> None:
    assert_one_line_error(run(["db", "upgrade", "0099"], server_env), "cannot upgrade the database to '0099'")


def test_serve_refuses_an_unwritable_evidence_store(server_env: dict[str, str], tmp_path: Path) -> None:
    """Root ignores permissions: the store's folder cannot be created because its parent is a file."""
    assert run(["db", "upgrade"], server_env).returncode == 0
    (tmp_path / "a-file").write_bytes(b"")
    evidence = tmp_path / "a-file" / "evidence"
    proc = run(argv(["serve"]), {**server_env, "PHATNGUOI_EVIDENCE_DIR": str(evidence)})
    assert_one_line_error(proc, f"the evidence store (PHATNGUOI_EVIDENCE_DIR={evidence}) does not work")


def test_uvicorn_factory_refuses_an_unwritable_evidence_store(
    server_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """`uvicorn --factory api.app:app_from_env` (several workers) does not start on it either."""
    assert run(["db", "upgrade"], server_env).returncode == 0
    (tmp_path / "a-file").write_bytes(b"")
    env = {**server_env, "PHATNGUOI_EVIDENCE_DIR": str(tmp_path / "a-file" / "evidence")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("uvicorn started on an unwritable evidence store")
    assert proc.returncode != 0
    assert "does not work: cannot write a probe blob" in proc.stderr
