"""The SQL of the operator's tools: os-services state and host usage (``hosts``), the repair
of stuck resources (``repair``) and the reset to a bootstrapped cloud (``reset``).

Small functions of a ``Connection``; the policy, the decisions and the driver calls stay in the
modules beside this one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db import prepared
from stackvol.db.prepared import PreparedSelect
from stackvol.db.schema import (
    application_credentials,
    connection_calls,
    images,
    key_pairs,
    projects,
    quota_limits,
    role_assignments,
    roles,
    servers,
    service_states,
    services,
    snapshots,
    tasks,
    transfers,
    users,
    volume_attachments,
    volume_type_projects,
    volumes,
)
from stackvol.timeutils import utcnow

# --- os-services and os-hosts ---------------------------------------------------------------


# Prepared: every volume create asks where it may not go.
_DISABLED_HOSTS = PreparedSelect(sa.select(service_states.c.host).where(
    service_states.c.binary == sa.bindparam("binary"), service_states.c.disabled))


def disabled_hosts(conn: Connection, binary: str) -> set[str]:
    """The hosts of ``binary`` an admin disabled (or froze)."""
    return {host for host, in prepared.run(conn, _DISABLED_HOSTS, binary=binary)}


def process_placements(conn: Connection) -> list[tuple[str, str, str | None]]:
    """Every known process's (role, host, backend)."""
    return [(r.role, r.host, r.backend) for r in conn.execute(
        sa.select(services.c.role, services.c.host, services.c.backend))]


def service_states_by_key(conn: Connection) -> dict[tuple[str, str], Any]:
    """The recorded state rows, by (binary, host)."""
    return {(row.binary, row.host): row for row in conn.execute(sa.select(service_states))}


def save_service_state(conn: Connection, binary: str, host: str, **values: Any) -> None:
    """Update the (binary, host) state row, or add it the first time."""
    values["updated_at"] = utcnow()
    updated = conn.execute(service_states.update().where(
        service_states.c.binary == binary, service_states.c.host == host)
        .values(values)).rowcount
    if not updated:
        conn.execute(service_states.insert().values(binary=binary, host=host, **values))


def _per_project(conn: Connection, query: sa.Select[Any]) -> dict[str, tuple[int, int]]:
    return {project_id: (count, gb)
            for project_id, count, gb in conn.execute(query).tuples()}


def volumes_on_backend(conn: Connection, backend: str) -> dict[str, tuple[int, int]]:
    """Per project: how many volumes ``backend`` holds and their gigabytes."""
    return _per_project(conn, sa.select(
        volumes.c.project_id, sa.func.count().label("count"),
        sa.func.coalesce(sa.func.sum(volumes.c.size), 0).label("gb"))
        .where(volumes.c.backend == backend).group_by(volumes.c.project_id))


def snapshots_on_backend(conn: Connection, backend: str) -> dict[str, tuple[int, int]]:
    """Per project: how many snapshots of volumes on ``backend`` there are, and their size."""
    return _per_project(conn, sa.select(
        snapshots.c.project_id, sa.func.count().label("count"),
        sa.func.coalesce(sa.func.sum(snapshots.c.size), 0).label("gb"))
        .join(volumes, volumes.c.id == snapshots.c.volume_id)
        .where(volumes.c.backend == backend).group_by(snapshots.c.project_id))


# --- repair ---------------------------------------------------------------------------------


def volume_row(conn: Connection, volume_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(volumes).where(volumes.c.id == volume_id)).first()


def attachment_rows(conn: Connection, volume_id: str) -> Sequence[Row[Any]]:
    """The volume's attachments, oldest first."""
    return conn.execute(sa.select(volume_attachments).where(
        volume_attachments.c.volume_id == volume_id)
        .order_by(volume_attachments.c.created_at)).all()


def leased_tasks(conn: Connection,
                 resource_ids: Iterable[str]) -> list[tuple[str, str, dt.datetime]]:
    """(kind, owner, lease_until) of the running tasks on these resources a worker holds."""
    return [(r.kind, r.owner, r.lease_until) for r in conn.execute(
        sa.select(tasks.c.kind, tasks.c.owner, tasks.c.lease_until).where(
            tasks.c.resource_id.in_(list(resource_ids)), tasks.c.state == "running",
            tasks.c.lease_until > utcnow()))]


def delete_tasks(conn: Connection, resource_ids: Iterable[str]) -> int:
    """Drop the queued and running work on these resources; how many tasks went."""
    return conn.execute(tasks.delete().where(
        tasks.c.resource_id.in_(list(resource_ids)))).rowcount


def delete_attachments(conn: Connection, attachment_ids: Iterable[str]) -> None:
    conn.execute(volume_attachments.delete().where(
        volume_attachments.c.id.in_(list(attachment_ids))))


def all_tasks(conn: Connection) -> Sequence[Row[Any]]:
    """(resource_id, kind, state, owner) of every task."""
    return conn.execute(sa.select(tasks.c.resource_id, tasks.c.kind, tasks.c.state,
                                  tasks.c.owner)).all()


# The tables repair looks into, by the kind of resource, with what names its project.
STATUS_TABLES: tuple[tuple[str, sa.Table, Any], ...] = (
    ("volume", volumes, volumes.c.project_id),
    ("snapshot", snapshots, snapshots.c.project_id),
    ("attachment", volume_attachments, sa.null()),
)


def rows_in_status(conn: Connection, table: sa.Table, project: Any,
                   statuses: list[str]) -> Sequence[Row[Any]]:
    """(id, status, project_id, since) of the rows in one of ``statuses``; ``since`` is the
    last change (or the creation)."""
    return conn.execute(sa.select(
        table.c.id, table.c.status, project.label("project_id"),
        sa.func.coalesce(table.c.updated_at, table.c.created_at).label("since"))
        .where(table.c.status.in_(statuses))).all()


# --- reset ----------------------------------------------------------------------------------


def server_ids(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(servers.c.id)).scalars())


def snapshot_locations(conn: Connection) -> list[tuple[str, str, str | None]]:
    """(id, backend, provider_location) of every snapshot."""
    return [(r.id, r.backend, r.provider_location) for r in conn.execute(
        sa.select(snapshots.c.id, volumes.c.backend, snapshots.c.provider_location)
        .join(volumes, volumes.c.id == snapshots.c.volume_id))]


def volume_locations(conn: Connection) -> list[tuple[str, str, str | None]]:
    """(id, backend, provider_location) of every volume."""
    return [(r.id, r.backend, r.provider_location) for r in conn.execute(
        sa.select(volumes.c.id, volumes.c.backend, volumes.c.provider_location))]


def image_locations(conn: Connection, keep_image: str) -> list[tuple[str, str | None]]:
    """(id, location) of every image but ``keep_image``."""
    return [(r.id, r.location) for r in conn.execute(
        sa.select(images.c.id, images.c.location).where(images.c.id != keep_image))]


def delete_all_but(conn: Connection, keep_image: str, keep_names: Sequence[str],
                   keep_roles: Sequence[str]) -> dict[str, int]:
    """Delete every row but the image ``keep_image``, the users and projects named
    ``keep_names`` (with their role assignments and type access) and the roles
    ``keep_roles``; how many rows of each kind went. Children before their parents."""
    kept_users = sa.select(users.c.id).where(users.c.name.in_(keep_names))
    kept_projects = sa.select(projects.c.id).where(projects.c.name.in_(keep_names))
    steps: list[tuple[str, Any]] = [
        ("tasks", tasks.delete()),
        ("connection calls", connection_calls.delete()),
        ("transfers", transfers.delete()),
        ("attachments", volume_attachments.delete()),
        ("snapshots", snapshots.delete()),
        ("volumes", volumes.delete()),
        ("servers", servers.delete()),
        ("key pairs", key_pairs.delete()),
        ("images", images.delete().where(images.c.id != keep_image)),
        ("project quotas", quota_limits.delete()),
        ("application credentials", application_credentials.delete()),
        ("role assignments", role_assignments.delete().where(sa.or_(
            role_assignments.c.user_id.not_in(kept_users),
            role_assignments.c.project_id.not_in(kept_projects)))),
        ("users", users.delete().where(users.c.name.not_in(keep_names))),
        ("type access", volume_type_projects.delete().where(
            volume_type_projects.c.project_id.not_in(kept_projects))),
        ("projects", projects.delete().where(projects.c.name.not_in(keep_names))),
        ("roles", roles.delete().where(roles.c.name.not_in(keep_roles))),
    ]
    return {name: conn.execute(statement).rowcount for name, statement in steps}
