"""Cinder's services as an admin sees them: the scheduler and a volume service per backend
(``host@backend``), each with the state an admin gave it (os-services enable/disable, freeze,
thaw), the hosts they run on (os-hosts) and what a backend can do (capabilities).

Processes are listed by their heartbeats (services/process_roles): API processes schedule, a
volume worker serves its backend and an ``all`` process every enabled one. A row of
``service_states`` keeps what an admin did to one (binary, host); no row means enabled. The
scheduler places no new volume on a backend whose every volume service is disabled (Cinder's
scheduler skips disabled services), so such a volume goes to ``error``.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.operations import queries
from stackvol.storage.registry import Backends
from stackvol.tasks.roles import (
    Heartbeat,
    ServiceRecord,
    backend_host_matches,
    service_rows,
)
from stackvol.timeutils import utcnow

SCHEDULER = "cinder-scheduler"
VOLUME = "cinder-volume"
FROZEN_REASON = "frozen"  # what Cinder's freeze writes as the disabled reason


@dataclass(frozen=True, slots=True)
class CinderService:
    """One service row of Cinder's os-services."""

    binary: str
    host: str
    up: bool
    seen: dt.datetime
    disabled: bool = False
    disabled_reason: str | None = None
    frozen: bool = False

    @property
    def backend(self) -> str | None:
        """The backend of a volume service (``host@backend``)."""
        return self.host.partition("@")[2] or None if self.binary == VOLUME else None


@dataclass(frozen=True, slots=True)
class HostUsage:
    """What one project (or ``(total)``) keeps on a volume host: os-hosts show."""

    project: str
    volume_count: int
    volume_gb: int
    snapshot_count: int
    snapshot_gb: int


def service_keys(proc: ServiceRecord, enabled: Iterable[str]) -> list[tuple[str, str]]:
    """The (binary, host) rows a process appears as."""
    keys = [(SCHEDULER, proc.host)] if proc.role in ("all", "api") else []
    served = list(enabled) if proc.role == "all" else [proc.backend] if (
        proc.role == "volume" and proc.backend) else []
    keys.extend((VOLUME, f"{proc.host}@{backend}") for backend in served)
    return keys


def disabled_backends(conn: Connection, enabled: Iterable[str]) -> set[str]:
    """Backends every known volume service of which an admin disabled (or froze)."""
    disabled = queries.disabled_hosts(conn, VOLUME)
    if not disabled:  # the usual case: one indexed probe per create
        return set()
    enabled = list(enabled)
    serving: dict[str, set[str]] = {}
    for role, host, backend in queries.process_placements(conn):
        proc = ServiceRecord("", role, host, backend, None, None, utcnow(), utcnow(), True)
        for _, name in service_keys(proc, enabled):
            serving.setdefault(name.partition("@")[2], set()).add(name)
    out: set[str] = set()
    for host in disabled:
        backend = host.partition("@")[2]
        if serving.get(backend, {host}) <= disabled:
            out.add(backend)
    return out


def _host_usage(conn: Connection, backend: str) -> list[HostUsage]:
    vols = queries.volumes_on_backend(conn, backend)
    snaps = queries.snapshots_on_backend(conn, backend)
    rows = [HostUsage(project, *vols.get(project, (0, 0)), *snaps.get(project, (0, 0)))
            for project in sorted(vols)]  # as Cinder: the projects with volumes there
    total = HostUsage("(total)", sum(r.volume_count for r in rows),
                      sum(r.volume_gb for r in rows), sum(r.snapshot_count for r in rows),
                      sum(r.snapshot_gb for r in rows))
    return [total, *rows]


class CinderServices:
    def __init__(self, db: Database, heartbeat: Heartbeat, backends: Backends) -> None:
        self.db = db
        self.heartbeat = heartbeat
        self.backends = backends

    async def list(self, ctx: RequestContext, host: str | None = None,
                   binary: str | None = None) -> list[CinderService]:
        """Every service (filtered as Cinder's ``host``/``binary`` query), with its state."""
        policy.authorize(ctx, "volume_extension:services:index")
        return await self._list(host, binary)

    async def _list(self, host: str | None = None,
                    binary: str | None = None) -> builtins.list[CinderService]:
        processes = await self.heartbeat.directory()
        states = await self.db.read(queries.service_states_by_key)
        enabled = self.backends.names
        rows = service_rows(processes, lambda proc: service_keys(proc, enabled), host, binary,
                            backend_host_matches)
        out = []
        for row in rows:
            state = states.get((row.binary, row.host))
            extra = {} if state is None else {"disabled": state.disabled,
                                              "disabled_reason": state.disabled_reason,
                                              "frozen": state.frozen}
            out.append(CinderService(row.binary, row.host, row.up, row.seen, **extra))
        return out

    async def _find(self, host: str, binary: str) -> CinderService:
        found = [s for s in await self._list() if s.host == host and s.binary == binary]
        if not found:
            raise NotFound(f"Could not find binary {binary} on host {host}.")
        return found[0]

    async def set_disabled(self, ctx: RequestContext, host: str, binary: str, disabled: bool,
                           reason: str | None = None) -> CinderService:
        """os-services enable/disable (with a reason): the service as it is now."""
        policy.authorize(ctx, "volume_extension:services:update")
        await self._find(host, binary)
        await self.db.run(queries.save_service_state, binary, host, disabled=disabled,
                          disabled_reason=reason if disabled else None)
        return await self._find(host, binary)

    async def freeze(self, ctx: RequestContext, host: str, frozen: bool) -> None:
        """Freeze (or thaw) the volume services of ``host``: a frozen one is disabled with
        the reason ``frozen`` (as Cinder's manager does) until thawed."""
        policy.authorize(ctx, "volume:freeze_host" if frozen else "volume:thaw_host")
        found = await self._list(host, VOLUME)
        if not found:
            raise NotFound(f"Host {host} could not be found.")
        for service in found:
            if not frozen and not service.frozen:
                raise Invalid("Invalid input received: Volume service is not frozen.")
            await self.db.run(queries.save_service_state, VOLUME, service.host, disabled=frozen,
                              disabled_reason=FROZEN_REASON if frozen else None, frozen=frozen)

    async def hosts(self, ctx: RequestContext) -> builtins.list[CinderService]:
        policy.authorize(ctx, "volume_extension:hosts")
        return await self._list()

    async def host_usage(self, ctx: RequestContext, host: str) -> builtins.list[HostUsage]:
        """What each project keeps on an enabled volume host (``host@backend``)."""
        policy.authorize(ctx, "volume_extension:hosts")
        found = [s for s in await self._list() if s.binary == VOLUME and s.host == host
                 and not s.disabled]
        if not found or found[0].backend not in self.backends.names:
            raise NotFound("Host not found")
        return await self.db.read(_host_usage, found[0].backend)

    async def capabilities(self, ctx: RequestContext, host: str) -> tuple[str, dict[str, Any]]:
        """The first volume service matching ``host`` (a host, ``host@backend`` or a pool):
        its ``host@backend`` and its backend's capabilities."""
        policy.authorize(ctx, "volume_extension:capabilities")
        # A pool name (what get_pools lists, and clients pass) means its backend's service.
        found = [s for s in await self._list(host.partition("#")[0], VOLUME)
                 if s.backend in self.backends.names]
        if not found:
            raise NotFound(f"Can't find service: {host}")
        return found[0].host, self.backends.described(found[0].backend or "")
