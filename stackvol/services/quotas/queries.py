"""The SQL of quotas: the rows a project's usage is counted from (bounded, see ``tally``),
the limits of projects and quota classes, and the per-project lock creates take on
PostgreSQL. Small functions of a ``Connection`` and the statements they run; ``quotas.api``
decides what to count and what to refuse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from stackvol.db import prepared
from stackvol.db.prepared import PreparedSelect
from stackvol.db.schema import (
    flavors,
    projects,
    quota_classes,
    quota_limits,
    quota_locks,
    servers,
    snapshots,
    tasks,
    volume_types,
    volumes,
)
from stackvol.db.statuses import VolumeStatus
from stackvol.tasks.kinds import TaskKind


def volume_type_names(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(volume_types.c.name).order_by(volume_types.c.name))
                .scalars())


def project_exists(conn: Connection, project_id: str) -> bool:
    return conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)) \
        .first() is not None


# --- counting everything (for showing usage) ------------------------------------------------


def volumes_by_type(conn: Connection, project_id: str) -> list[tuple[str | None, int, int]]:
    """Per volume type: how many volumes the project has and their gigabytes."""
    return [(name, count, size) for name, count, size in conn.execute(
        sa.select(volumes.c.volume_type, sa.func.count(), sa.func.coalesce(
            sa.func.sum(volumes.c.size), 0))
        .where(volumes.c.project_id == project_id).group_by(volumes.c.volume_type)).tuples()]


def snapshots_by_type(conn: Connection, project_id: str) -> list[tuple[str | None, int, int]]:
    """Per type of their volumes: how many snapshots the project has and their gigabytes."""
    return [(name, count, size) for name, count, size in conn.execute(
        sa.select(volumes.c.volume_type, sa.func.count(), sa.func.coalesce(
            sa.func.sum(snapshots.c.size), 0))
        .join(volumes, volumes.c.id == snapshots.c.volume_id)
        .where(snapshots.c.project_id == project_id).group_by(volumes.c.volume_type)).tuples()]


def growing(conn: Connection, project_id: str,
            type_name: str | None = None) -> list[tuple[str | None, int]]:
    """Extensions under way, by volume type: they count at their new size (the row keeps the
    old one until done). Found through the ``status`` index: as many rows as extensions.
    The type is filtered here, not in SQL, lest the planner prefer the project's type index."""
    query = (sa.select(volumes.c.volume_type, tasks.c.payload, volumes.c.size)
             .join(volumes, volumes.c.id == tasks.c.resource_id)
             .where(tasks.c.kind == TaskKind.VOLUME_EXTEND, volumes.c.project_id == project_id,
                    volumes.c.status == VolumeStatus.EXTENDING))
    return [(name, int(payload.get("new_size", size)) - size)
            for name, payload, size in conn.execute(query).tuples()
            if type_name is None or name == type_name]


# --- counting against limits (for enforcing) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tally:
    count: int
    sums: tuple[int, ...]
    cut: bool  # stopped after bound + 1 rows: the figures are lower bounds, each over bound


def tally(conn: Connection, rows: sa.Select[Any], bound: int | None) -> Tally:
    """Count ``rows`` and sum each of their columns, reading at most ``bound`` + 1 rows.

    Cut off there, the count is over ``bound``, and so is each sum as long as every row adds
    at least 1 to it (sizes, vCPUs and RAM do). Should one not (a sum below the count), the rows
    are read again in full.
    """
    sub = (rows if bound is None else rows.limit(bound + 1)).subquery()
    row = conn.execute(sa.select(sa.func.count(),
                                 *(sa.func.coalesce(sa.func.sum(col), 0) for col in sub.c))).one()
    count, sums = int(row[0]), tuple(int(value) for value in row[1:])
    cut = bound is not None and count > bound
    if cut and any(total < count for total in sums):
        return tally(conn, rows, None)
    return Tally(count, sums, cut)


def volume_sizes(project_id: str, type_name: str | None) -> sa.Select[Any]:
    # Index-only on (project_id, volume_type, size), with or without the type.
    query = sa.select(volumes.c.size).where(volumes.c.project_id == project_id)
    if type_name is not None:
        query = query.where(volumes.c.volume_type == type_name)
    return query


def snapshot_sizes(project_id: str, type_name: str | None) -> sa.Select[Any]:
    query = sa.select(snapshots.c.size).where(snapshots.c.project_id == project_id)
    if type_name is not None:  # the type is the volume's: one primary-key probe per snapshot
        query = query.join(volumes, volumes.c.id == snapshots.c.volume_id).where(
            volumes.c.volume_type == type_name)
    return query


def server_flavors(project_id: str) -> sa.Select[Any]:
    """(vcpus, ram) of each of the project's servers (through their ``project_id`` index,
    each flavor by primary key)."""
    return (sa.select(flavors.c.vcpus, flavors.c.ram)
            .select_from(servers.outerjoin(flavors, flavors.c.id == servers.c.flavor_id))
            .where(servers.c.project_id == project_id))


def lock_project(conn: Connection, project_id: str) -> None:
    """Serialize the project's creates until the transaction ends."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: the transaction already holds the database's only write lock
    conn.execute(postgresql.insert(quota_locks).values(project_id=project_id)
                 .on_conflict_do_nothing())
    conn.execute(sa.select(quota_locks.c.project_id)
                 .where(quota_locks.c.project_id == project_id).with_for_update())


# --- limits ---------------------------------------------------------------------------------


# Prepared, and all of an owner's rows (a handful) filtered here: every create reads them,
# and an IN list of names would have to be compiled anew for each set of names.
_CLASS_LIMITS = PreparedSelect(
    sa.select(quota_classes.c.resource, quota_classes.c.hard_limit)
    .where(quota_classes.c.class_name == sa.bindparam("owner")))
_PROJECT_LIMITS = PreparedSelect(
    sa.select(quota_limits.c.resource, quota_limits.c.hard_limit)
    .where(quota_limits.c.project_id == sa.bindparam("owner")))


def class_limits(conn: Connection, class_name: str,
                 names: Iterable[str]) -> dict[str, int]:
    """The class's own limits of these resources."""
    return _limits_of(conn, _CLASS_LIMITS, class_name, names)


def project_limits(conn: Connection, project_id: str, names: Iterable[str]) -> dict[str, int]:
    """The project's own limits of these resources."""
    return _limits_of(conn, _PROJECT_LIMITS, project_id, names)


def _limits_of(conn: Connection, query: PreparedSelect, owner: str,
               names: Iterable[str]) -> dict[str, int]:
    wanted = set(names)
    return {name: limit for name, limit in prepared.run(conn, query, owner=owner)
            if name in wanted}


def save_project_limit(conn: Connection, project_id: str, name: str, limit: int,
                       now: dt.datetime) -> None:
    updated = conn.execute(
        quota_limits.update()
        .where(quota_limits.c.project_id == project_id, quota_limits.c.resource == name)
        .values(hard_limit=limit, updated_at=now)).rowcount
    if not updated:
        conn.execute(quota_limits.insert().values(
            project_id=project_id, resource=name, hard_limit=limit, created_at=now))


def save_class_limit(conn: Connection, class_name: str, name: str, limit: int,
                     now: dt.datetime) -> None:
    where = (quota_classes.c.class_name == class_name, quota_classes.c.resource == name)
    if not conn.execute(quota_classes.update().where(*where)
                        .values(hard_limit=limit, updated_at=now)).rowcount:
        conn.execute(quota_classes.insert().values(
            class_name=class_name, resource=name, hard_limit=limit, created_at=now))


def delete_project_limits(conn: Connection, project_id: str, names: Iterable[str],
                          others: bool = False) -> None:
    """Drop the project's own limits of these resources (with ``others``, of all the others)."""
    chosen = quota_limits.c.resource.in_(list(names))
    conn.execute(quota_limits.delete().where(quota_limits.c.project_id == project_id,
                                             sa.not_(chosen) if others else chosen))
