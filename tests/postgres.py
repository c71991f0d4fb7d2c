"""A real PostgreSQL 15 for the tests: started once per session in a temp folder, stopped at the end.

A pytest plugin (see conftest.py). The server listens on a unix socket in its temp folder and on a
free TCP port on 127.0.0.1, with trust auth and durability switched off (it is thrown away).
PostgreSQL refuses to run as root, so under root (CI) it runs as the `postgres` system user.

Databases are cheap copies of templates: `bootstrap` (what Supabase provides) and one template per
migration set, so a test gets a fresh database in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
BOOTSTRAP_SQL = Path(__file__).resolve().parent / "sql" / "supabase_bootstrap.sql"
SUPERUSER = "postgres"


def migration_files() -> list[Path]:
    """All migrations in the order the Supabase CLI applies them (by timestamp prefix)."""
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


def migration(name_part: str) -> Path:
    """The one migration whose file name contains `name_part`."""
    found = [p for p in migration_files() if name_part in p.name]
    if len(found) != 1:
        raise LookupError(f"{len(found)} migrations match {name_part!r}")
    return found[0]


HARDENING = "harden_per_user"


def single_user_migrations() -> list[Path]:
    """What a single-user project applies: everything except the per-user hardening."""
    return [p for p in migration_files() if HARDENING not in p.name]


def _find_bindir() -> Path | None:
    candidates = []
    if env := os.environ.get("SORANB_PG_BINDIR"):
        candidates.append(Path(env))
    candidates += [Path(f"/usr/lib/postgresql/{v}/bin") for v in (15, 16, 17, 18)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apply_sql(conninfo: str, path: Path) -> None:
    """Run one SQL file (several statements, no parameters) in one transaction."""
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
        conn.commit()


def apply_sql_statementwise(server: PostgresServer, conninfo: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run one SQL file the way `psql -f` does by default: statement by statement, autocommit, going on
    after an error (the way a migration pasted into a console or run by hand behaves)."""
    return subprocess.run(
        [str(server.bindir / "psql"), "-X", "-q", "-d", conninfo, "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@dataclass
class PostgresServer:
    """A running throwaway cluster and the databases made in it."""

    bindir: Path
    base: Path
    port: int
    _as_postgres_user: bool
    _templates: dict[tuple[str, ...], str] = field(default_factory=dict)

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    def conninfo(self, dbname: str = "postgres", *, user: str = SUPERUSER, tcp: bool = False) -> str:
        host = "127.0.0.1" if tcp else str(self.socket_dir)
        return f"host={host} port={self.port} user={user} dbname={dbname}"

    # -- lifecycle ------------------------------------------------------------
    def _run(self, args: Sequence[str]) -> None:
        cmd = list(args)
        if self._as_postgres_user:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}\n{tail}")

    def start(self) -> None:
        data = self.base / "data"
        self.socket_dir.mkdir()
        if self._as_postgres_user:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=60",
                "-c shared_buffers=32MB",
                "-c timezone=UTC",
            ]
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.base / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ------------------------------------------------------------
    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def _template(self, migrations: Sequence[Path]) -> str:
        key = tuple(p.name for p in migrations)
        if key not in self._templates:
            name = f"tpl_{len(self._templates)}"
            self._admin(f'create database "{name}" template template0')
            conninfo = self.conninfo(name)
            apply_sql(conninfo, BOOTSTRAP_SQL)
            for path in migrations:
                apply_sql(conninfo, path)
            self._templates[key] = name
        return self._templates[key]

    def create_database(self, migrations: Sequence[Path] = ()) -> str:
        """A new database with the bootstrap and `migrations` applied; returns its name."""
        name = f"db_{uuid.uuid4().hex[:12]}"
        self._admin(f'create database "{name}" template "{self._template(migrations)}" strategy = file_copy')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'drop database if exists "{name}" with (force)')


def _start_server() -> PostgresServer:
    bindir = _find_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL server binaries not found (initdb, pg_ctl): install Debian's postgresql "
            "package or set SORANB_PG_BINDIR"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs the 'postgres' system user (Debian's postgresql package)")
        if shutil.which("runuser") is None:
            pytest.fail("running as root needs runuser (util-linux) to start PostgreSQL as 'postgres'")
    base = Path(tempfile.mkdtemp(prefix="soranb-pg-"))
    os.chmod(base, 0o755)
    server = PostgresServer(bindir=bindir, base=base, port=_free_port(), _as_postgres_user=as_postgres)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server."""
    server = _start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_db(pg_server: PostgresServer) -> Iterator[str]:
    """A new database with only the bootstrap (no migrations); yields its conninfo."""
    name = pg_server.create_database(())
    try:
        yield pg_server.conninfo(name)
    finally:
        pg_server.drop_database(name)
