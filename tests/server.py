"""A real ``stackvol serve`` process on a loopback port, for tests and benchmarks."""

from __future__ import annotations

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackvolProcess:
    """Starts, stops and kills one server; ``data_dir`` survives restarts."""

    def __init__(self, data_dir: Path, port: int | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, **settings: Any) -> StackvolProcess:
        env = {**os.environ, "STACKVOL_PASSWORD_HASH_ROUNDS": "4"}
        for key, value in {**self.settings, **settings}.items():
            env[f"STACKVOL_{key.upper()}"] = str(value)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackvol", "serve", "--data-dir", str(self.data_dir),
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stackvol exited early; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if httpx.get(self.url + "/", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"stackvol did not start; see {self.log_path}")

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


@contextmanager
def running(data_dir: Path, **settings: Any) -> Iterator[StackvolProcess]:
    server = StackvolProcess(data_dir, **settings).start()
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
