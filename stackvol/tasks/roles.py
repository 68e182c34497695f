"""Roles of processes, their heartbeats, and where new servers go.

One ``stackvol serve`` runs everything (role ``all``, the default). For scale it runs as one role:

* ``api``: the HTTP faces only; work it commits as tasks is done by other processes;
* ``volume``: a worker for one storage backend (volume and snapshot tasks targeted at it);
* ``compute``: a worker for one compute host (server and attachment tasks targeted at it).

Processes share nothing but the database: tasks carry the work, and the ``services`` table
carries who is alive. Each process records a heartbeat every ``heartbeat_seconds``; one silent
for ``service_down_seconds`` is down (Cinder's ``service_down_time``). An API process places a
new server on the up compute host holding the fewest servers, and the server's tasks follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import operator
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.config import Settings
from stackvol.db.engine import Database
from stackvol.db.schema import servers, services
from stackvol.tasks.kinds import role_of
from stackvol.tasks.worker import Worker
from stackvol.timeutils import utcnow

log = logging.getLogger(__name__)

ROLES = ("all", "api", "volume", "compute")
COMPUTE_ROLES = ("all", "compute")


@dataclass(frozen=True, slots=True)
class ProcessRole:
    """What this process is: its role, its unique name, and the host or backend it serves."""

    role: str
    name: str
    host: str  # the compute host of a compute worker; else the name it is listed under
    backend: str | None  # the storage backend for volume/all
    url: str

    @classmethod
    def from_settings(cls, settings: Settings, url: str) -> ProcessRole:
        if settings.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {settings.role!r}")
        machine = socket.gethostname()
        host = settings.compute_host or machine  # Nova's and Cinder's ``host`` option
        # Unique per process, stable across restarts on the same port: a restarted worker
        # takes its own running tasks back at once, and never another process's.
        default = f"{machine}:all" if settings.role == "all" else (
            f"{machine}:{settings.port}:{settings.role}")
        # ``all`` serves every enabled backend; it is recorded under the default one.
        backend = settings.served_backend if settings.role in ("all", "volume") else None
        return cls(role=settings.role, name=settings.worker_name or default, host=host,
                   backend=backend, url=url)

    @property
    def runs_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def runs_worker(self) -> bool:
        return self.role != "api"

    @property
    def runs_compute(self) -> bool:
        return self.role in COMPUTE_ROLES

    @property
    def targets(self) -> list[str] | None:
        """Task targets this process's worker claims (None: every task, for ``all``)."""
        if self.role == "volume":  # HOST@BACKEND: work only this host can do (its exports)
            return [self.backend or "", f"{self.host}@{self.backend}"]
        if self.role == "compute":
            return [self.host]
        return None if self.role == "all" else []

    def serves(self, backend: str) -> bool:
        """Whether this process runs ``backend``'s driver as its storage host."""
        return self.role == "all" or (self.role == "volume" and backend == self.backend)

    def handles(self, kind: str) -> bool:
        """Whether this role runs ``kind``: ``all`` every kind, ``api`` none, a worker role
        the kinds ``TaskKind`` assigns to it."""
        return self.role == "all" or role_of(kind) == self.role

    def restrict(self, worker: Worker) -> None:
        """Keep only the handlers of this role's task kinds: the worker claims no other."""
        worker.handlers = {k: h for k, h in worker.handlers.items() if self.handles(k)}
        worker.targets = self.targets


# --- heartbeats ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One process as the ``services`` table knows it."""

    name: str
    role: str
    host: str
    backend: str | None
    url: str | None
    pid: int | None
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    up: bool


def list_services(conn: Connection, down_after: float) -> list[ServiceRecord]:
    """Every process that ever ran against this database, with its state (up/down by age)."""
    cutoff = utcnow() - dt.timedelta(seconds=down_after)
    rows = conn.execute(sa.select(services).order_by(services.c.role, services.c.host,
                                                     services.c.name))
    return [ServiceRecord(**row._mapping, up=row.heartbeat_at >= cutoff) for row in rows]


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """One service as Nova and Cinder list them: a binary on a host."""

    binary: str
    host: str
    up: bool
    seen: dt.datetime


def backend_host_matches(wanted: str, host: str) -> bool:
    """Cinder's host filter on ``host[@backend[#pool]]`` names: a name with a pool matches
    only itself, a ``host@backend`` also its pools, a bare host also its backends and pools."""
    if host == wanted:
        return True
    if "#" in wanted:
        return False
    if host.startswith(f"{wanted}#"):
        return True
    return "@" not in wanted and host.startswith(f"{wanted}@")


def service_rows(processes: Iterable[ServiceRecord],
                 keys_of: Callable[[ServiceRecord], Iterable[tuple[str, str]]],
                 host: str | None = None, binary: str | None = None,
                 host_matches: Callable[[str, str], bool] = operator.eq) -> list[ServiceRow]:
    """Processes grouped by the (binary, host) pairs ``keys_of`` names for each: one row per
    pair, up if any of its processes is, seen at the newest heartbeat; sorted, and filtered
    by ``host`` (compared by ``host_matches``; empty means any, as in Nova and Cinder) and
    ``binary`` when given (the APIs' query parameters)."""
    rows: dict[tuple[str, str], tuple[bool, dt.datetime]] = {}
    for proc in processes:
        for key in keys_of(proc):
            up, seen = rows.get(key, (False, proc.heartbeat_at))
            rows[key] = (up or proc.up, max(seen, proc.heartbeat_at))
    return [ServiceRow(b, h, up, seen) for (b, h), (up, seen) in sorted(rows.items())
            if (not host or host_matches(host, h)) and binary in (None, b)]


def pick_compute_host(conn: Connection, down_after: float, fallback: str) -> str:
    """The up compute host with the fewest servers (``fallback`` when none is up)."""
    cutoff = utcnow() - dt.timedelta(seconds=down_after)
    hosts: list[str] = sorted(set(conn.execute(sa.select(services.c.host).where(
        services.c.role.in_(COMPUTE_ROLES), services.c.heartbeat_at >= cutoff)).scalars()))
    if not hosts:
        return fallback
    counts = sa.select(servers.c.host, sa.func.count()).where(
        servers.c.host.in_(hosts)).group_by(servers.c.host)
    load: dict[str, int] = dict(conn.execute(counts).all())
    return min(hosts, key=lambda host: load.get(host, 0))


class Heartbeat:
    """Records this process in ``services`` at start, then every ``every`` seconds."""

    def __init__(self, db: Database, role: ProcessRole, every: float,
                 down_after: float = 60.0) -> None:
        self.db = db
        self.role = role
        self.every = every
        self.down_after = down_after
        self.last: dt.datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def _beat(self, conn: Connection, starting: bool = False) -> dt.datetime:
        now = utcnow()
        values: dict[str, Any] = {"role": self.role.role, "host": self.role.host,
                                  "backend": self.role.backend, "url": self.role.url,
                                  "pid": os.getpid(), "heartbeat_at": now}
        if starting:
            values["started_at"] = now
        updated = conn.execute(services.update().where(services.c.name == self.role.name)
                               .values(values)).rowcount
        if not updated:
            conn.execute(services.insert().values({"started_at": now, **values,
                                                   "name": self.role.name}))
        return now

    async def directory(self) -> list[ServiceRecord]:
        """Every process of the deployment, up or down (``os-services``)."""
        return await self.db.read(list_services, self.down_after)

    async def start(self) -> None:
        self.last = await self.db.run(self._beat, True)
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                self.last = await self.db.run(self._beat)
            except Exception:
                log.exception("heartbeat failed; retrying")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def health(db: Database, role: ProcessRole, worker: Worker,
                 heartbeat: Heartbeat) -> tuple[bool, dict[str, Any]]:
    """Whether this process can do its job (its database answers), and a small report."""
    report: dict[str, Any] = {"role": role.role, "name": role.name, "host": role.host}
    if role.backend:
        report["backend"] = role.backend
    try:
        await db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"{type(exc).__name__}"
    if role.runs_worker:
        report["tasks_running"] = worker.running
    if heartbeat.last is not None:
        report["heartbeat_at"] = heartbeat.last.isoformat()
    ok = report["database"] == "ok"
    report["status"] = "ok" if ok else "failing"
    return ok, report
