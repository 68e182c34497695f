"""CPU pinning as in the issue's measurement: the server on one CPU, the load on another.

Without it the server, wrk and the httpx clients share every core and each number depends on
the scheduler. With at least two CPUs the server under test (stackvol, or the ceiling before
it) runs on the first CPU this process may use and the load generators on the second. The
server is pinned from birth: this process narrows its own affinity while it spawns the server
(a child, and every thread it starts, inherits the mask), then moves to the clients' CPU, so
wrk (a child too) and the in-process httpx clients run there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pinning:
    server: frozenset[int] | None  # None: no pinning (fewer than two CPUs)
    clients: frozenset[int] | None
    original: frozenset[int]

    @property
    def active(self) -> bool:
        return self.server is not None

    @contextmanager
    def spawning_server(self) -> Iterator[None]:
        """Within the block, children start on the server's CPU; afterwards this process (and
        what it spawns later) runs on the clients' CPU."""
        if self.server is None or self.clients is None:
            yield
            return
        os.sched_setaffinity(0, self.server)
        try:
            yield
        finally:
            os.sched_setaffinity(0, self.clients)

    def restore(self) -> None:
        os.sched_setaffinity(0, self.original)

    def describe(self, server_pid: int | None = None) -> str:
        if self.server is None or self.clients is None:
            return f"pinning: none ({len(self.original)} CPU)"
        seen = f" (pid {server_pid}: Cpus_allowed_list {allowed(server_pid)})" if server_pid else ""
        return (f"pinning: server on CPU {_cpus(self.server)}{seen}; "
                f"wrk and httpx clients on CPU {_cpus(self.clients)}")


def plan() -> Pinning:
    """Pin when this process may use two or more CPUs; otherwise leave everything alone."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Pinning(None, None, frozenset(cpus))
    return Pinning(frozenset({cpus[0]}), frozenset({cpus[1]}), frozenset(cpus))


def allowed(pid: int) -> str:
    """The kernel's word on where ``pid`` may run, to print beside the plan."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
