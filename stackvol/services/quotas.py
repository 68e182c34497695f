"""Block storage quotas: limits per project and resource, enforced by counting what exists.

Nothing is ever added to or taken from a usage counter, so there is nothing to drift: a create
counts the project's volumes, snapshots and gigabytes in the same transaction that inserts the
new row. Concurrent creates for one project count one after another: SQLite has a single
writer, and on PostgreSQL each create first locks the project's ``quota_locks`` row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import quota_limits, quota_locks, snapshots, tasks, volume_types, volumes
from stackvol.services import policy
from stackvol.services.context import RequestContext
from stackvol.services.errors import Invalid, OverQuota
from stackvol.services.status import VolumeStatus
from stackvol.timeutils import utcnow

# Cinder's defaults (cinder/quota.py); -1 means unlimited. stackvol's settings override the
# first four (and ship them unlimited, so a fresh install never refuses work by surprise).
DEFAULTS: dict[str, int] = {
    "volumes": 10,
    "snapshots": 10,
    "gigabytes": 1000,
    "per_volume_gigabytes": -1,
    "backups": 10,
    "backup_gigabytes": 1000,
    "groups": 10,
}
PER_TYPE = ("volumes", "snapshots", "gigabytes")
UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class Usage:
    """What a project holds, overall and per volume type name."""

    volumes: int = 0
    snapshots: int = 0
    gigabytes: int = 0
    by_type: Mapping[str, Mapping[str, int]] | None = None

    def get(self, resource: str) -> int:
        if resource in ("volumes", "snapshots", "gigabytes"):
            return getattr(self, resource)
        kind, _, type_name = resource.partition("_")
        if kind in PER_TYPE and self.by_type:
            return self.by_type.get(type_name, {}).get(kind, 0)
        return 0


def _type_names(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(volume_types.c.name).order_by(volume_types.c.name))
                .scalars())


def resources(conn: Connection) -> list[str]:
    """Every quota resource: the fixed ones, then volumes/snapshots/gigabytes per type."""
    names = list(DEFAULTS)
    for type_name in _type_names(conn):
        names += [f"{kind}_{type_name}" for kind in PER_TYPE]
    return names


def count_usage(conn: Connection, project_id: str) -> Usage:
    """Count the project's volumes, snapshots and gigabytes (volumes' and snapshots' sizes)."""
    by_type: dict[str, dict[str, int]] = {}
    vol_rows = conn.execute(
        sa.select(volumes.c.volume_type, sa.func.count(), sa.func.coalesce(
            sa.func.sum(volumes.c.size), 0))
        .where(volumes.c.project_id == project_id).group_by(volumes.c.volume_type)).all()
    snap_rows = conn.execute(
        sa.select(volumes.c.volume_type, sa.func.count(), sa.func.coalesce(
            sa.func.sum(snapshots.c.size), 0))
        .join(volumes, volumes.c.id == snapshots.c.volume_id)
        .where(snapshots.c.project_id == project_id).group_by(volumes.c.volume_type)).all()
    # Extensions under way count at their new size (the row keeps the old one until done).
    growing = conn.execute(
        sa.select(volumes.c.volume_type, tasks.c.payload, volumes.c.size)
        .join(volumes, volumes.c.id == tasks.c.resource_id)
        .where(tasks.c.kind == "volume.extend", volumes.c.project_id == project_id,
               volumes.c.status == VolumeStatus.EXTENDING)).all()
    grow_rows = [(type_name, 0, int(payload.get("new_size", size)) - size)
                 for type_name, payload, size in growing]
    totals = {"volumes": 0, "snapshots": 0, "gigabytes": 0}
    for rows, kind in ((vol_rows, "volumes"), (snap_rows, "snapshots"), (grow_rows, "volumes")):
        for type_name, count, size in rows:
            entry = by_type.setdefault(type_name or "", {"volumes": 0, "snapshots": 0,
                                                         "gigabytes": 0})
            entry[kind] += count
            entry["gigabytes"] += int(size)
            totals[kind] += count
            totals["gigabytes"] += int(size)
    return Usage(by_type=by_type, **totals)


def project_limits(conn: Connection, project_id: str | None,
                   defaults: Mapping[str, int] = DEFAULTS) -> dict[str, int]:
    """Every resource's limit for a project: its own rows over the defaults."""
    limits = {name: defaults.get(name, UNLIMITED) for name in resources(conn)}
    if project_id is not None:
        rows = conn.execute(sa.select(quota_limits.c.resource, quota_limits.c.hard_limit)
                            .where(quota_limits.c.project_id == project_id))
        limits.update({name: limit for name, limit in rows if name in limits})
    return limits


def _lock(conn: Connection, project_id: str) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite: the transaction already holds the database's only write lock
    conn.execute(postgresql.insert(quota_locks).values(project_id=project_id)
                 .on_conflict_do_nothing())
    conn.execute(sa.select(quota_locks.c.project_id)
                 .where(quota_locks.c.project_id == project_id).with_for_update())


def enforce(conn: Connection, defaults: Mapping[str, int], project_id: str,
            volume_type: str | None, *, volumes: int = 0, snapshots: int = 0,
            gigabytes: int = 0, volume_size: int | None = None) -> None:
    """Raise ``OverQuota`` (Cinder's messages) unless the project can take this much more.

    Call it inside the transaction that creates or grows the resources.
    """
    _lock(conn, project_id)
    limits = project_limits(conn, project_id, defaults)
    per_volume = limits.get("per_volume_gigabytes", UNLIMITED)
    if volume_size is not None and 0 <= per_volume < volume_size:
        raise OverQuota(f"Requested volume size {volume_size}G is larger than maximum allowed "
                        f"limit {per_volume}G.")
    usage = count_usage(conn, project_id)
    deltas = {"volumes": volumes, "snapshots": snapshots, "gigabytes": gigabytes}
    for kind, delta in deltas.items():
        if not delta:
            continue
        names = [kind] + ([f"{kind}_{volume_type}"] if volume_type else [])
        for name in names:
            limit = limits.get(name, UNLIMITED)
            used = usage.get(name)
            if limit >= 0 and used + delta > limit:
                raise _over(kind, name, limit, used, delta)


def _over(kind: str, name: str, limit: int, used: int, delta: int) -> OverQuota:
    if kind == "gigabytes":
        return OverQuota(f"Requested volume or snapshot exceeds allowed {name} quota. Requested "
                         f"{delta}G, quota is {limit}G and {used}G has been consumed.")
    if kind == "snapshots":
        return OverQuota(f"Maximum number of snapshots allowed ({limit}) exceeded")
    return OverQuota(f"Maximum number of volumes allowed ({limit}) exceeded for quota "
                     f"'{name}'.")


class QuotaService:
    """``os-quota-sets`` and ``limits``: reading, setting and resetting a project's limits."""

    def __init__(self, db: Database, defaults: Mapping[str, int] | None = None) -> None:
        self.db = db
        self.defaults = {**DEFAULTS, **(defaults or {})}

    def enforce(self, conn: Connection, project_id: str, volume_type: str | None,
                **deltas: int) -> None:
        """``enforce`` with this service's defaults, inside the caller's transaction."""
        enforce(conn, self.defaults, project_id, volume_type, **deltas)


    async def limits(self, ctx: RequestContext, project_id: str | None,
                     defaults: bool = False) -> dict[str, int]:
        policy.authorize(ctx, "quota:defaults" if defaults else "quota:show", project_id)
        return await self.db.read(project_limits, None if defaults else project_id,
                                  self.defaults)

    async def usage(self, ctx: RequestContext, project_id: str) -> Usage:
        policy.authorize(ctx, "quota:show", project_id)
        return await self.db.read(count_usage, project_id)

    async def update(self, ctx: RequestContext, project_id: str,
                     values: Mapping[str, int]) -> dict[str, int]:
        policy.authorize(ctx, "quota:update", project_id)
        return await self.db.run(self._update, project_id, dict(values))

    def _update(self, conn: Connection, project_id: str,
                values: dict[str, int]) -> dict[str, int]:
        known = set(resources(conn))
        bad = sorted(set(values) - known)
        if bad:
            raise Invalid(f"Bad key(s) in quota set: {','.join(bad)}")
        now = utcnow()
        for name, limit in values.items():
            if limit < UNLIMITED:
                raise Invalid(f"Invalid input received: Quota limit {limit} for {name} must "
                              f"be -1 or greater.")
            updated = conn.execute(
                quota_limits.update()
                .where(quota_limits.c.project_id == project_id, quota_limits.c.resource == name)
                .values(hard_limit=limit, updated_at=now)).rowcount
            if not updated:
                conn.execute(quota_limits.insert().values(
                    project_id=project_id, resource=name, hard_limit=limit, created_at=now))
        return project_limits(conn, project_id, self.defaults)

    async def reset(self, ctx: RequestContext, project_id: str) -> None:
        policy.authorize(ctx, "quota:delete", project_id)
        await self.db.run(lambda conn: conn.execute(
            quota_limits.delete().where(quota_limits.c.project_id == project_id)))
