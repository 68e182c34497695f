"""The SQL of servers: small functions taking a Connection, called by api.py and manager.py.

They read and write rows and nothing else; which statement runs when, and in which
transaction, is the caller's business. Volume and attachment status writes are not here: they
go through ``stackvol.db.transitions`` as every status write does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db.schema import servers, snapshots, tasks, volume_attachments, volumes
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import AttachmentStatus, TaskState, VmState
from stackvol.services.flavors.api import flavors_by_id
from stackvol.services.servers.records import Server
from stackvol.timeutils import utcnow

_ORDER = (servers.c.created_at.desc(), servers.c.id.desc())
_LIVE = (AttachmentStatus.ATTACHED, AttachmentStatus.DETACHING)

# --- servers --------------------------------------------------------------------------------


def find(conn: Connection, server_id: str, project_id: str | None = None) -> Server | None:
    """The server's row (only if it belongs to ``project_id`` when one is given)."""
    query = sa.select(servers).where(servers.c.id == server_id)
    if project_id is not None:
        query = query.where(servers.c.project_id == project_id)
    row = conn.execute(query).first()
    return None if row is None else Server.from_row(row)


def load(conn: Connection, server_id: str) -> Server | None:
    """The server with its flavor and volumes, or ``None`` once it is gone."""
    server = find(conn, server_id)
    if server is not None:
        complete(conn, [server])
    return server


def complete(conn: Connection, found: list[Server]) -> None:
    """Attach each server's flavor and live volume attachments (two queries for the page)."""
    if not found:
        return
    by_flavor = flavors_by_id(conn, {s.flavor_id for s in found})
    rows = conn.execute(
        sa.select(volume_attachments.c.server_id, volume_attachments.c.volume_id,
                  volume_attachments.c.delete_on_termination)
        .where(volume_attachments.c.server_id.in_([s.id for s in found]),
               volume_attachments.c.status.in_(_LIVE))
        .order_by(volume_attachments.c.created_at, volume_attachments.c.id))
    attached: dict[str, list[tuple[str, bool]]] = {}
    for row in rows:
        attached.setdefault(row.server_id, []).append(
            (row.volume_id, bool(row.delete_on_termination)))
    for server in found:
        server.flavor = by_flavor.get(server.flavor_id)
        server.volumes = attached.get(server.id, [])


def newest_first(conn: Connection, project: str | None, marker: str | None) -> Iterator[Server]:
    """Servers (of ``project``, or all), newest first, after ``marker`` when one is given."""
    stmt = sa.select(servers).order_by(*_ORDER)
    if project is not None:
        stmt = stmt.where(servers.c.project_id == project)
    if marker is not None:
        stmt = stmt.where(_after_marker(conn, project, marker))
    for row in conn.execute(stmt):
        yield Server.from_row(row)


def _after_marker(conn: Connection, project: str | None, marker: str) -> sa.ColumnElement[bool]:
    query = sa.select(servers.c.created_at, servers.c.id).where(servers.c.id == marker)
    if project is not None:
        query = query.where(servers.c.project_id == project)
    row = conn.execute(query).first()
    if row is None:
        raise Invalid(f"marker [{marker}] not found")
    return sa.or_(servers.c.created_at < row.created_at,
                  sa.and_(servers.c.created_at == row.created_at, servers.c.id < row.id))


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(servers.insert().values(values))


def update(conn: Connection, server_id: str, values: dict[str, Any]) -> None:
    """Change columns a request may change in any state (never vm_state or task_state)."""
    conn.execute(servers.update().where(servers.c.id == server_id)
                 .values(updated_at=utcnow(), **values))


def cas_state(conn: Connection, server_id: str, vm_states: Iterable[str] | None,
              task_states: Iterable[str | None] | None, **values: Any) -> bool:
    """Update a server only if its (vm_state, task_state) is still one expected; True if so."""
    cond = [servers.c.id == server_id]
    if vm_states is not None:
        cond.append(servers.c.vm_state.in_(list(vm_states)))
    if task_states is not None:
        wanted = list(task_states)
        named = [t for t in wanted if t is not None]
        either = [servers.c.task_state.in_(named)] if named else []
        if None in wanted:
            either.append(servers.c.task_state.is_(None))
        cond.append(sa.or_(*either))
    result = conn.execute(servers.update().where(*cond).values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def mark_deleting(conn: Connection, server_id: str) -> bool:
    """task_state → ``deleting`` from anything else; False if a delete already runs."""
    result = conn.execute(
        servers.update()
        .where(servers.c.id == server_id,
               sa.or_(servers.c.task_state.is_(None),
                      servers.c.task_state != TaskState.DELETING.value))
        .values(task_state=TaskState.DELETING.value, updated_at=utcnow()))
    return result.rowcount == 1


def remove_deleting(conn: Connection, server_id: str) -> None:
    """Drop the row of a server whose delete has finished (still ``deleting``)."""
    conn.execute(servers.delete().where(servers.c.id == server_id,
                                        servers.c.task_state == TaskState.DELETING.value))


def build_state(conn: Connection, server_id: str) -> Row[Any] | None:
    """(vm_state, task_state, host) of a server, or ``None`` once it is gone."""
    return conn.execute(sa.select(servers.c.vm_state, servers.c.task_state,
                                  servers.c.host).where(servers.c.id == server_id)).first()


def all_ids(conn: Connection) -> set[str]:
    return set(conn.execute(sa.select(servers.c.id)).scalars())


def task_resources(conn: Connection) -> set[str]:
    """The ids of every resource some queued or running task will still act on."""
    return set(conn.execute(sa.select(tasks.c.resource_id)).scalars())


def idle_on_host(conn: Connection, host: str) -> list[Row[Any]]:
    """The host's active or stopped servers with no task running (what power sync checks)."""
    return list(conn.execute(
        sa.select(servers.c.id, servers.c.vm_state, servers.c.power_state, servers.c.updated_at)
        .where(servers.c.host == host, servers.c.task_state.is_(None),
               servers.c.vm_state.in_([VmState.ACTIVE.value, VmState.STOPPED.value]))))


def update_if_unchanged(conn: Connection, row: Any, values: dict[str, Any]) -> bool:
    """Update an idle server only if it is still as ``row`` read it (``updated_at`` too)."""
    same = (servers.c.updated_at.is_(None) if row.updated_at is None
            else servers.c.updated_at == row.updated_at)
    result = conn.execute(servers.update().where(
        servers.c.id == row.id, servers.c.vm_state == row.vm_state,
        servers.c.task_state.is_(None), same).values(updated_at=utcnow(), **values))
    return result.rowcount == 1


# --- the server's volumes -------------------------------------------------------------------


def attaching(conn: Connection, server_id: str) -> list[Row[Any]]:
    """The server's ``attaching`` rows, each with its volume's status, backend and location."""
    return list(conn.execute(
        sa.select(volume_attachments, volumes.c.status.label("volume_status"),
                  volumes.c.backend, volumes.c.provider_location)
        .join(volumes, volumes.c.id == volume_attachments.c.volume_id)
        .where(volume_attachments.c.server_id == server_id,
               volume_attachments.c.status == AttachmentStatus.ATTACHING)
        .order_by(volume_attachments.c.created_at, volume_attachments.c.id)))


def all_attachments(conn: Connection) -> list[Attachment]:
    """Every attachment row, of every server (what start-up reconciliation compares)."""
    return [Attachment.from_row(row) for row in conn.execute(sa.select(volume_attachments))]


def delete_attachment(conn: Connection, attachment_id: str) -> None:
    conn.execute(volume_attachments.delete().where(volume_attachments.c.id == attachment_id))


def attachments_of(conn: Connection, server_id: str) -> list[Row[Any]]:
    """Every attachment row of the server (what ends with it)."""
    return list(conn.execute(
        sa.select(volume_attachments.c.id, volume_attachments.c.volume_id,
                  volume_attachments.c.delete_on_termination,
                  volume_attachments.c.connection_info)
        .where(volume_attachments.c.server_id == server_id)))


def delete_attachments(conn: Connection, server_id: str) -> None:
    conn.execute(volume_attachments.delete().where(volume_attachments.c.server_id == server_id))


def holders(conn: Connection, volume_id: str) -> int:
    """How many attachment rows still hold the volume."""
    return conn.execute(sa.select(sa.func.count()).where(
        volume_attachments.c.volume_id == volume_id)).scalar_one()


def volume_backend(conn: Connection, volume_id: str) -> str:
    return conn.execute(sa.select(volumes.c.backend).where(
        volumes.c.id == volume_id)).scalar_one()


def volume_image_metadata(conn: Connection, volume_id: str) -> dict[str, Any]:
    """The image properties a volume made from an image carries (empty for the others)."""
    return conn.execute(sa.select(volumes.c.image_metadata).where(
        volumes.c.id == volume_id)).scalar() or {}


def volume_owner(conn: Connection, volume_id: str) -> Row[Any] | None:
    """(id, project_id) of a volume, or ``None``."""
    return conn.execute(sa.select(volumes.c.id, volumes.c.project_id).where(
        volumes.c.id == volume_id)).first()


def snapshot_owner(conn: Connection, snapshot_id: str) -> Row[Any] | None:
    """(size, project_id) of a snapshot, or ``None``."""
    return conn.execute(sa.select(snapshots.c.size, snapshots.c.project_id).where(
        snapshots.c.id == snapshot_id)).first()
