"""A throwaway PostgreSQL server for the API tests, or the one named by PHATNGUOI_TEST_POSTGRES_URL.

Order of preference:
1. `PHATNGUOI_TEST_POSTGRES_URL` (e.g. `postgresql://postgres@127.0.0.1:5432/postgres`): an existing
   server; its user needs CREATEDB. Test databases are created beside the named one and dropped.
2. PostgreSQL server binaries (`/usr/lib/postgresql/*/bin/initdb`, Debian's `postgresql` package): a
   new cluster in a temporary directory on a free loopback port, for the test session only, with
   fsync off (a crash loses only test data). `initdb` refuses to run as root, so as root the cluster
   is created and run as the `postgres` user (made by the Debian package) through `runuser`.
3. Otherwise PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ENV_URL = "PHATNGUOI_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class PgServer:
    """Where to connect: `url_for(db)` gives a SQLAlchemy URL of database `db` on this server."""

    base_url: str  # SQLAlchemy URL of the maintenance database

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on the same server."""
        return make_url(self.base_url).set(database=database).render_as_string(hide_password=False)

    def _conninfo(self) -> str:
        u = make_url(self.base_url)
        parts = {
            "host": u.host or "127.0.0.1",
            "port": u.port or 5432,
            "user": u.username,
            "dbname": u.database,
        }
        if u.password:
            parts["password"] = u.password
        return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)

    def admin(self, sql: str) -> None:
        """Run one statement on the maintenance database, outside a transaction (CREATE DATABASE)."""
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        """A new uniquely named database (copied from `template`); returns its name."""
        name = f"phatnguoi_test_{uuid.uuid4().hex[:12]}"
        suffix = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.admin(f"CREATE DATABASE {name}{suffix}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected."""
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bindir() -> Path | None:
    """The newest installed server version's bin directory (Debian layout)."""
    found = list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))

    def version(p: Path) -> int:
        name = p.parent.parent.name
        return int(name) if name.isdigit() else 0

    return max(found, key=version).parent if found else None


@contextlib.contextmanager
def postgres_server() -> Iterator[PgServer | str]:
    """Yield a server, or a string saying why there is none (the caller skips with it)."""
    url = os.environ.get(ENV_URL)
    if url:
        yield PgServer(
            make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        )
        return
    bindir = _bindir()
    if bindir is None:
        yield (
            f"no PostgreSQL: set {ENV_URL} or install the server (apt-get install postgresql); "
            "no /usr/lib/postgresql/*/bin/initdb found"
        )
        return
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            yield "running as root: initdb refuses root, and no 'postgres' user or runuser to switch to"
            return
        as_user = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="phatnguoi-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    started = False
    server: PgServer | str
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
             "-t", "60", "-o", options, "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        started = True
        server = PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    except subprocess.CalledProcessError as e:
        log_file = root / "server.log"
        log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        server = f"could not start a throwaway PostgreSQL ({e.cmd[len(as_user)]}): {e.stderr!r} {log}"
    try:
        yield server
    finally:
        if started:
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
