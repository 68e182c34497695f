"""A real ``stackvol serve`` process on a loopback port, for tests and benchmarks."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

_LIVE: set[subprocess.Popen[bytes]] = set()
# Test servers count no volumes, snapshots, gigabytes or servers unless a test sets its own
# limits: one project of the shared server holds many more than the shipped defaults allow.
UNLIMITED_QUOTAS = {f"quota_{name}": -1 for name in (
    "volumes", "snapshots", "gigabytes", "instances", "cores", "ram")}


@atexit.register
def _kill_leftovers() -> None:
    """A test that failed before stopping its server must not leave it running."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def await_health(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    """Poll ``url``/healthcheck until it answers 200 (True); False as soon as ``proc`` exits
    or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthcheck", timeout=1.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


class StackvolProcess:
    """Starts, stops and kills one server; ``data_dir`` survives restarts."""

    def __init__(self, data_dir: Path, port: int | None = None, log_name: str | None = None,
                 shipped_quotas: bool = False, **settings: Any) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # Tests run on the simulated driver unless they ask for libvirt (it is fast and exact).
        quotas = {} if shipped_quotas else UNLIMITED_QUOTAS
        self.settings = {"compute_driver": "simulated", **quotas, **settings}
        self.proc: subprocess.Popen[bytes] | None = None
        # Processes sharing a data dir (workers of one backend) each keep their own log.
        self.log_path = data_dir.parent / f"{log_name or data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, **settings: Any) -> StackvolProcess:
        settings = {**self.settings, **settings}
        env = {**os.environ, "STACKVOL_PASSWORD_HASH_ROUNDS": "4"}
        if "database_url" not in settings:
            env.update(database_env(self.data_dir))
        for key, value in settings.items():
            env[f"STACKVOL_{key.upper()}"] = str(value)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackvol", "serve", "--data-dir", str(self.data_dir),
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        _LIVE.add(self.proc)
        if await_health(self.proc, self.url, timeout):
            return self
        if self.proc.poll() is not None:
            raise RuntimeError(f"stackvol exited early; see {self.log_path}:\n"
                               + self.log_path.read_text()[-3000:])
        raise TimeoutError(f"stackvol did not start; see {self.log_path}")

    @property
    def database_url(self) -> str:
        return self.settings.get("database_url") or database_env(self.data_dir).get(
            "STACKVOL_DATABASE_URL", f"sqlite:///{self.data_dir / 'stackvol.sqlite'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def credentials(self) -> dict[str, dict[str, str]]:
        return json.loads((self.data_dir / "bootstrap-credentials.json").read_text())

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def token(self, user: str = "admin") -> tuple[str, dict[str, Any]]:
        """A project-scoped token for a bootstrap user, and the token body."""
        cred = self.credentials()[user]
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": cred["password"]}}},
            "scope": {"project": {"name": cred["project"], "domain": {"name": "Default"}}}}}
        resp = httpx.post(self.url + "/identity/v3/auth/tokens", json=body, timeout=10)
        resp.raise_for_status()
        return resp.headers["X-Subject-Token"], resp.json()["token"]

    def client(self, user: str = "admin", prefix: str = "/v2.1",
               microversion: str | None = None) -> httpx.Client:
        """An httpx client authenticated as ``user`` with ``prefix`` as its base path."""
        token, _ = self.token(user)
        headers = {"X-Auth-Token": token}
        if microversion:
            headers["OpenStack-API-Version"] = f"compute {microversion}"
        return httpx.Client(base_url=self.url + prefix, headers=headers, timeout=30)


def database_env(data_dir: Path) -> dict[str, str]:
    """What a process on ``data_dir`` needs to find its database: nothing on SQLite (the file
    in the data dir); on a PostgreSQL test run, the URL of that directory's own database."""
    from tests.support import postgres

    return {"STACKVOL_DATABASE_URL": postgres.database_for(data_dir)} if postgres.wanted() else {}


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one SQL statement (``?`` placeholders) on the database of ``data_dir``."""
    url = database_env(data_dir).get("STACKVOL_DATABASE_URL")
    return query_url(url or f"sqlite:///{data_dir / 'stackvol.sqlite'}", sql, *params)


def query_url(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one SQL statement (``?`` placeholders) on a SQLite or PostgreSQL database."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql, params).fetchall()
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


@contextmanager
def running(data_dir: Path, pause_at: str | None = None,
            **settings: Any) -> Iterator[StackvolProcess]:
    """A server for the block, stopped after it; ``pause_at`` parks its workers at that point
    on this first start only, so a restart (after ``kill``) runs the parked work through."""
    server = StackvolProcess(data_dir, **settings)
    server.start(**({"pause_at": pause_at} if pause_at else {}))
    try:
        yield server
    finally:
        server.stop()


def wait_for(fetch: Any, done: Any, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``fetch()`` until ``done(result)``; return the last result (assert on it)."""
    deadline = time.monotonic() + timeout
    result = fetch()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fetch()
    return result
