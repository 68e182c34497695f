"""A stackvol without HTTP, for unit tests: the services ``stackvol.app.build_services`` wires,
on a temporary data directory and SQLite database, started as a process starts them (schema,
bootstrap, worker) on one asyncio event loop owned by the test.

It is the lightest real path: the simulated compute driver, the file storage backend (real
sparse or qcow2 files), the real durable-task worker; no server process, no port, no HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stackvol.app import build_services, start, stop
from stackvol.config import Settings
from stackvol.services.common.context import RequestContext
from stackvol.services.container import Services

T = TypeVar("T")

# Speed over realism where it costs nothing the tests look at: bcrypt at its cheapest cost (the
# bootstrap hashes a password per account) and a worker that polls often.
FAST = {"password_hash_rounds": 4, "task_poll_seconds": 0.05, "compute_driver": "simulated"}


@dataclass
class LocalCloud:
    services: Services
    runner: asyncio.Runner

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await ``work`` on the cloud's event loop (where its worker runs)."""
        return self.runner.run(work)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the worker has finished every task committed so far."""
        self.run(self.services.worker.drain(timeout))


def member_of(project_id: str, *roles: str) -> RequestContext:
    """A caller of ``project_id`` (roles ``member`` and ``reader`` unless told)."""
    return RequestContext(user_id=f"user-of-{project_id}", project_id=project_id,
                          roles=frozenset(roles or ("member", "reader")))


@contextmanager
def local_cloud(data_dir: Path, **settings: Any) -> Iterator[LocalCloud]:
    """Build, start and finally stop the services on ``data_dir`` (``settings`` override)."""
    database = f"sqlite:///{data_dir / 'stackvol.sqlite'}"
    config = Settings.model_validate({**FAST, "data_dir": data_dir, "database_url": database,
                                      **settings})
    with asyncio.Runner() as runner:
        services = build_services(config)
        runner.run(start(services))
        try:
            yield LocalCloud(services, runner)
        finally:
            runner.run(stop(services))  # as the application's lifespan stops
