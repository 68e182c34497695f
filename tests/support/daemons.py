"""Daemon child processes of a test run: each started in its own session (a Ctrl-C at the
terminal reaches pytest, not them) with its output appended to a log, stopped by its PID and
waited for (PID 1 here reaps orphans slowly), and one shared instance started on first use."""

from __future__ import annotations

import atexit
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar


def spawn(argv: list[str], log_path: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log_path``."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **popen)
    finally:
        log.close()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal ``proc`` and wait for it; kill it if it has not exited within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Stoppable)


class Shared(Generic[S]):
    """One instance for the whole test run: made by ``make`` on first use, stopped when
    Python exits (or earlier, by ``stop``)."""

    def __init__(self, make: Callable[[], S]) -> None:
        self.make = make
        self.instance: S | None = None

    def get(self) -> S:
        if self.instance is None:
            self.instance = self.make()
            atexit.register(self.stop)
        return self.instance

    def stop(self) -> None:
        if self.instance is not None:
            self.instance.stop()
            self.instance = None
