"""A private PostgreSQL cluster for tests and benchmarks: ``initdb`` + ``postgres`` on 127.0.0.1.

The cluster lives in a temporary directory, listens on a free loopback port with its socket in
that directory, trusts local connections, and runs as a direct child of this process (as user
``postgres`` when we are root: PostgreSQL refuses to run as root), so stopping it is a signal and
a ``wait()``. Durability is switched off (``fsync=off``): a test database never outlives a crash
of the machine. ``STACKVOL_TEST_DATABASE=postgresql`` makes every test server use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.support import daemons
from tests.support.server import free_port

MODE_ENV = "STACKVOL_TEST_DATABASE"


def wanted() -> bool:
    """Whether this test run is on PostgreSQL (else SQLite, the default)."""
    mode = os.environ.get(MODE_ENV, "sqlite").lower()
    if mode not in ("sqlite", "postgresql"):
        raise ValueError(f"{MODE_ENV} must be sqlite or postgresql, not {mode!r}")
    return mode == "postgresql"


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")


class PostgresCluster:
    """One throw-away cluster; ``database(name)`` makes databases in it."""

    def __init__(self, max_connections: int = 500) -> None:
        self.bin = _bin_dir()
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="stackvol-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / "postgres.log"
        # PostgreSQL will not run as root: hand the directory to the postgres user.
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._user = {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, capture_output=True,
                       cwd=self.root, **self._user)

    def start(self, timeout: float = 30.0) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        settings = {"listen_addresses": "127.0.0.1", "port": self.port,
                    "unix_socket_directories": self.root, "max_connections": self.max_connections,
                    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                    "shared_buffers": "128MB"}
        options = [f"-c{key}={value}" for key, value in settings.items()]
        self.proc = daemons.spawn([str(self.bin / "postgres"), "-D", str(self.data), *options],
                                  self.log_path, cwd=self.root, **self._user)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited early:\n" + self.log_path.read_text()[-3000:])
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its SQLAlchemy URL."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                with contextlib.suppress(psycopg.errors.UniqueViolation,
                                         psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{name}"')  # unless a racing caller did
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, stop.
            daemons.stop(self.proc, signal.SIGINT, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


_shared = daemons.Shared(lambda: PostgresCluster().start())
# The cluster of this test run, started on first use and stopped when Python exits.
shared_cluster = _shared.get
stop_shared_cluster = _shared.stop


def database_for(data_dir: Path) -> str:
    """The database of a test data directory: one per directory, kept across restarts."""
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return shared_cluster().database(f"stackvol_{digest}")
