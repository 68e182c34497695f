"""The attachments' SQL: small functions on the caller's connection, shared by the API sides
(nova_api.py, cinder_api.py, connection_calls.py) and the worker side (manager.py).

Status writes are not here: they go through stackvol/db/transitions.py. Rows that are only
filtered by status (a connection stored on a row still ``attaching``, a ``detaching`` row
removed) compare the status without changing it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from stackvol.db import prepared
from stackvol.db.prepared import PreparedSelect, PreparedWrite, RawReader
from stackvol.db.schema import (
    connection_calls,
    qos_specs,
    servers,
    tasks,
    volume_attachments,
    volume_types,
    volumes,
)
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import AttachmentStatus
from stackvol.services.volumes.qos_specs import FRONT_END, scaled
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.timeutils import utcnow

_ORDER = (volume_attachments.c.created_at, volume_attachments.c.id)


class Stored(NamedTuple):
    """Where a volume's bytes are: its backend and the backend's name for them (and whether
    it is attached read-only: Cinder's admin metadata ``readonly``; and the front-end QoS
    specs of its type, which the hypervisor enforces)."""

    backend: str
    location: str
    readonly: bool = False
    qos_specs: Mapping[str, str] | None = None


# --- attachment rows --------------------------------------------------------------------------


def find(conn: Connection, attachment_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(volume_attachments).where(
        volume_attachments.c.id == attachment_id)).first()


@functools.cache
def _rows_of(owner: str, statuses: tuple[str, ...] | None, one_volume: bool) -> PreparedSelect:
    """Prepared once per shape (attaching and detaching read these in every request): the rows
    whose ``owner`` column (server_id, volume_id) is ``:owner``, in ``statuses`` (literals: a
    prepared query takes no IN list; None: any), of ``:volume_id`` only with ``one_volume``."""
    c = volume_attachments.c
    query = sa.select(volume_attachments).where(c[owner] == sa.bindparam("owner"))
    if statuses is not None:
        query = query.where(sa.or_(*(c.status == status for status in statuses)))
    if one_volume:
        query = query.where(c.volume_id == sa.bindparam("volume_id"))
    return PreparedSelect(query.order_by(*_ORDER))


def _attachments(conn: Connection, query: PreparedSelect, **params: Any) -> list[Attachment]:
    # The records list the table's columns in order (asserted in volumes/queries.py).
    return [Attachment(*row) for row in prepared.run(conn, query, **params)]


def on_server(conn: Connection, server_id: str, statuses: Iterable[str],
              volume_id: str | None = None) -> list[Attachment]:
    """The server's rows in ``statuses`` (of ``volume_id`` only, if given), oldest first."""
    query = _rows_of("server_id", tuple(statuses), volume_id is not None)
    params = {"volume_id": volume_id} if volume_id is not None else {}
    return _attachments(conn, query, owner=server_id, **params)


@functools.cache
def _devices_of(statuses: tuple[str, ...]) -> PreparedSelect:
    c = volume_attachments.c
    return PreparedSelect(sa.select(c.device).where(
        c.server_id == sa.bindparam("server_id"), c.device.is_not(None),
        sa.or_(*(c.status == status for status in statuses))))


def devices_on_server(conn: Connection, server_id: str, statuses: Iterable[str]) -> list[str]:
    """The devices the server's rows in ``statuses`` use: each attach picks a free one (only
    the column, not whole rows with their connection info decoded)."""
    return [row[0] for row in prepared.run(conn, _devices_of(tuple(statuses)),
                                           server_id=server_id)]


def of_volume(conn: Connection, volume_id: str,
              statuses: Iterable[str] | None = None) -> list[Attachment]:
    """The volume's rows (in ``statuses`` only, if given), oldest first."""
    query = _rows_of("volume_id", None if statuses is None else tuple(statuses), False)
    return _attachments(conn, query, owner=volume_id)


def count_of_volume(conn: Connection, volume_id: str, statuses: Iterable[str]) -> int:
    count: int = conn.execute(sa.select(sa.func.count()).where(
        volume_attachments.c.volume_id == volume_id,
        volume_attachments.c.status.in_(list(statuses)))).scalar_one()
    return count


def listed(conn: Connection, project_id: str | None, volume_id: str | None,
           status: str | None, server_id: str | None) -> list[Attachment]:
    """Cinder's attachment list, newest first; each filter given narrows it (``project_id``:
    the volume's project)."""
    query = (sa.select(volume_attachments)
             .join(volumes, volumes.c.id == volume_attachments.c.volume_id)
             .order_by(volume_attachments.c.created_at.desc(), volume_attachments.c.id.desc()))
    if project_id is not None:
        query = query.where(volumes.c.project_id == project_id)
    if volume_id:
        query = query.where(volume_attachments.c.volume_id == volume_id)
    if status:
        query = query.where(volume_attachments.c.status == status)
    if server_id:
        query = query.where(volume_attachments.c.server_id == server_id)
    return [Attachment.from_row(r) for r in conn.execute(query)]


# The chain's writes, prepared (compiled once per dialect): each attach and detach runs them.
_INSERT = PreparedWrite(lambda _: volume_attachments.insert())
_DELETE = PreparedWrite(lambda _: volume_attachments.delete().where(
    volume_attachments.c.id == sa.bindparam("attachment_id")))
_STORE_CONNECTION = PreparedWrite(lambda _: volume_attachments.update().where(
    volume_attachments.c.id == sa.bindparam("attachment_id"),
    volume_attachments.c.status == AttachmentStatus.ATTACHING.value).values(
    connection_info=sa.bindparam("info", type_=volume_attachments.c.connection_info.type),
    updated_at=sa.bindparam("now", type_=volume_attachments.c.updated_at.type)))
_DETACHING_VOLUME = PreparedSelect(sa.select(volume_attachments.c.volume_id).where(
    volume_attachments.c.id == sa.bindparam("attachment_id"),
    volume_attachments.c.status == AttachmentStatus.DETACHING.value))


def insert(conn: Connection, values: dict[str, Any]) -> Attachment:
    _INSERT.rowcount(conn, **values)
    return Attachment(**values)


def new_row(volume_id: str, server_id: str, device: str | None, status: str,
            **columns: Any) -> dict[str, Any]:
    """The values of a new row: fresh ids, nothing optional set unless given."""
    return {
        "id": str(uuid.uuid4()), "volume_id": volume_id, "server_id": server_id,
        "device": device, "status": status, "tag": None, "delete_on_termination": False,
        "boot_index": None, "bdm_uuid": str(uuid.uuid4()), "connection_info": None,
        "created_at": utcnow(), "updated_at": None, **columns,
    }


def delete(conn: Connection, attachment_id: str) -> None:
    _DELETE.rowcount(conn, attachment_id=attachment_id)


def set_delete_on_termination(conn: Connection, attachment_id: str, value: bool) -> None:
    conn.execute(volume_attachments.update().where(volume_attachments.c.id == attachment_id)
                 .values(delete_on_termination=value, updated_at=utcnow()))


def store_connection(conn: Connection, attachment_id: str, info: dict[str, Any]) -> bool:
    """Keep ``info`` on a row still ``attaching``; False when the row ended meanwhile."""
    return _STORE_CONNECTION.rowcount(conn, attachment_id=attachment_id, info=info,
                                      now=utcnow()) == 1


def detaching_volume(conn: Connection, attachment_id: str) -> str | None:
    """The volume of a row still ``detaching``, or None."""
    found = prepared.run(conn, _DETACHING_VOLUME, attachment_id=attachment_id)
    return found[0][0] if found else None


# Prepared (compiled once): every step of the attach chain starts with this read. The QoS spec
# of the volume's type comes in the same query (outer joins: most volumes have none).
_ATTACHMENT_AND_VOLUME = PreparedSelect(
    sa.select(volume_attachments, volumes.c.backend, volumes.c.provider_location,
              volumes.c.admin_metadata, volumes.c.size.label("volume_size"),
              qos_specs.c.consumer.label("qos_consumer"), qos_specs.c.specs.label("qos_specs"))
    .select_from(volume_attachments
                 .join(volumes, volumes.c.id == volume_attachments.c.volume_id)
                 .outerjoin(volume_types, volume_types.c.name == volumes.c.volume_type)
                 .outerjoin(qos_specs, qos_specs.c.id == volume_types.c.qos_specs_id))
    .where(volume_attachments.c.id == sa.bindparam("attachment_id")).limit(1))


def attachment_and_volume(reader: RawReader,
                          attachment_id: str) -> tuple[Attachment, Stored] | None:
    """A row with where its volume's bytes are (for the drivers that connect it), and the
    front-end QoS specs of its type (``qos_specs.front_end_specs``)."""
    rows = reader.rows(_ATTACHMENT_AND_VOLUME, attachment_id=attachment_id)
    if not rows:
        return None
    mapping = _ATTACHMENT_AND_VOLUME.record._make(rows[0])._asdict()
    readonly = (mapping.pop("admin_metadata") or {}).get("readonly") == "True"
    size, consumer, specs = (mapping.pop("volume_size"), mapping.pop("qos_consumer"),
                             mapping.pop("qos_specs"))
    front_end = scaled(specs or {}, size) if consumer in FRONT_END else None
    stored = Stored(mapping.pop("backend"), mapping.pop("provider_location"), readonly,
                    front_end)
    return Attachment(**mapping), stored


def connection_queued(conn: Connection, attachment_id: str) -> bool:
    """Whether a ``volume.initialize_connection`` task for the row is queued (or running)."""
    return bool(conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
        tasks.c.kind == TaskKind.VOLUME_INITIALIZE_CONNECTION,
        tasks.c.resource_id == attachment_id)).scalar_one())


# --- the servers and volumes they join ------------------------------------------------------


_SERVER = sa.select(servers.c.id, servers.c.project_id, servers.c.vm_state,
                    servers.c.task_state, servers.c.locked, servers.c.host).where(
    servers.c.id == sa.bindparam("server_id"))
_SERVER_BY_LOCK = {False: PreparedSelect(_SERVER), True: PreparedSelect(_SERVER.with_for_update())}


def server(conn: Connection, server_id: str, lock: bool = False) -> Any | None:
    """What attaching needs of a server (id, project_id, vm_state, task_state, locked, host);
    ``lock``: its row locked (``FOR UPDATE``)."""
    found = prepared.records(conn, _SERVER_BY_LOCK[lock], server_id=server_id)
    return found[0] if found else None


def server_host(conn: Connection, server_id: str) -> Row[Any] | None:
    """The server's ``host`` column, or None when there is no such server of ours."""
    return conn.execute(sa.select(servers.c.host).where(servers.c.id == server_id)).first()


def server_owner(conn: Connection, server_id: str) -> str | None:
    owner: str | None = conn.execute(sa.select(servers.c.project_id).where(
        servers.c.id == server_id)).scalar()
    return owner


_VOLUME = PreparedSelect(sa.select(volumes.c.id, volumes.c.status, volumes.c.project_id,
                                   volumes.c.backend)
                         .where(volumes.c.id == sa.bindparam("volume_id")))


def volume(conn: Connection, volume_id: str) -> Any | None:
    """What attaching needs of a volume: id, status, project, backend."""
    found = prepared.records(conn, _VOLUME, volume_id=volume_id)
    return found[0] if found else None


def volume_status(conn: Connection, volume_id: str) -> str:
    status: str = conn.execute(sa.select(volumes.c.status).where(
        volumes.c.id == volume_id)).scalar_one()
    return status


def volume_backend(conn: Connection, volume_id: str) -> str | None:
    backend: str | None = conn.execute(sa.select(volumes.c.backend).where(
        volumes.c.id == volume_id)).scalar()
    return backend


_LOCATION = PreparedSelect(sa.select(volumes.c.provider_location)
                           .where(volumes.c.id == sa.bindparam("volume_id")))


def volume_location(reader: RawReader, volume_id: str) -> str | None:
    """Where the volume's bytes are (prepared: a step of the detach chain reads it)."""
    rows = reader.rows(_LOCATION, volume_id=volume_id)
    return rows[0][0] if rows else None


# --- connection calls (connection_calls.py) ---------------------------------------------------

# A call's states: waiting for a storage host; answered; failed; given up by its caller.
WAITING, DONE, FAILED, ABANDONED = "waiting", "done", "failed", "abandoned"
_CALL_KINDS = (TaskKind.VOLUME_CALL_INITIALIZE_CONNECTION,
               TaskKind.VOLUME_CALL_TERMINATE_CONNECTION)


def insert_call(conn: Connection, kind: str, volume_id: str, host: str | None,
                attachment_id: str | None) -> str:
    call_id = str(uuid.uuid4())
    conn.execute(connection_calls.insert().values(
        id=call_id, kind=kind, volume_id=volume_id, attachment_id=attachment_id, host=host,
        state=WAITING, result=None, created_at=utcnow(), updated_at=None))
    return call_id


def _exports(volume_id: str, host: str) -> tuple[Any, ...]:
    """The answered legacy initialize calls for ``host`` (no attachment): the records of the
    connections (exports) they made, kept until a terminate ends them."""
    return (connection_calls.c.volume_id == volume_id, connection_calls.c.host == host,
            connection_calls.c.kind == "initialize", connection_calls.c.state == DONE,
            connection_calls.c.attachment_id.is_(None))


def last_export(conn: Connection, volume_id: str, host: str) -> Any:
    """The connection info the latest of those calls answered with, or None."""
    return conn.execute(sa.select(connection_calls.c.result).where(*_exports(volume_id, host))
                        .order_by(connection_calls.c.created_at.desc())).scalars().first()


def forget_exports(conn: Connection, volume_id: str, host: str) -> None:
    conn.execute(connection_calls.delete().where(*_exports(volume_id, host)))


def call_state(conn: Connection, call_id: str) -> str:
    """A call's state; one that is gone was given up (and forgotten)."""
    found: str | None = conn.execute(sa.select(connection_calls.c.state)
                                     .where(connection_calls.c.id == call_id)).scalar()
    return found or ABANDONED


def find_call(conn: Connection, call_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(connection_calls).where(
        connection_calls.c.id == call_id)).first()


def delete_call(conn: Connection, call_id: str) -> None:
    conn.execute(connection_calls.delete().where(connection_calls.c.id == call_id))


def answer_call(conn: Connection, call_id: str, was: str, state: str, result: Any) -> bool:
    """Move the call from ``was`` to ``state`` with ``result``; False if it was not ``was``."""
    return conn.execute(connection_calls.update().where(
        connection_calls.c.id == call_id, connection_calls.c.state == was)
        .values(state=state, result=result, updated_at=utcnow())).rowcount == 1


def forget_abandoned(conn: Connection, call_id: str) -> None:
    conn.execute(connection_calls.delete().where(connection_calls.c.id == call_id,
                                                 connection_calls.c.state == ABANDONED))


def cancel_unclaimed(conn: Connection, call_id: str) -> bool:
    """Remove the call's task if no worker claimed it yet; whether it was removed."""
    return conn.execute(tasks.delete().where(
        tasks.c.resource_id == call_id, tasks.c.kind.in_(_CALL_KINDS),
        tasks.c.state == taskq.PENDING)).rowcount > 0
