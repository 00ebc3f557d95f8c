"""A throwaway PostgreSQL server for tests: initdb in a temporary directory, a free port,
trust authentication on loopback. The server refuses to run as root, so as root it runs
as the ``postgres`` system user that Debian's package creates."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.stack import free_port


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries are missing or the server did not start."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("initdb not found: install PostgreSQL (apt-get install postgresql)")


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PostgresServer:
    """A running server; ``new_database()`` gives each test an empty database."""

    directory: Path
    port: int
    bin_dir: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", future=True)
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def restart(self) -> None:
        """Stops the server (fast: open connections are cut) and starts it again on its port."""
        subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
                             "-l", str(self.directory / "server.log"),
                             "-m", "fast", "-w", "-t", "60", "restart"]),
            capture_output=True, check=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
                             "-m", "fast", "stop"]),
            capture_output=True, check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb and start a private server; raises PostgresUnavailable with the server's log."""
    bin_dir = _bin_dir()
    directory = Path(tempfile.mkdtemp(prefix="offercall-pg-"))
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    os.chmod(directory, 0o755)
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]),
        check=True, capture_output=True,
    )
    port = free_port()
    log = directory / "server.log"
    result = subprocess.run(
        _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                         "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off",
                         "start"]),
        capture_output=True, text=True, check=False,
    )
    server = PostgresServer(directory, port, bin_dir)
    if result.returncode != 0:
        details = log.read_text() if log.exists() else result.stderr
        server.stop()
        raise PostgresUnavailable(f"PostgreSQL did not start:\n{details}")
    _wait_until_ready(server)
    return server


def _wait_until_ready(server: PostgresServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            engine = create_engine(server.admin_url, future=True)
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            engine.dispose()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
