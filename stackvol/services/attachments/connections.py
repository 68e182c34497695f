"""Connections between a volume and a host, as both sides of attaching speak of them.

The API sides queue the steps of the attach chain inside the caller's transaction (have the
backend make a connection, tear one down); the storage host makes the connection with its
driver (``connection_info``). Servers (boot from volume) and volumes (force delete) queue the
same steps, so they live here, with neither side.

Each step is queued through an ``Enqueue``: the worker's (``Worker.enqueue``) when the caller
has one, so a step this process runs itself starts at the commit that queued it (no claim, no
poll), else the bare queue (``stackvol.tasks.queue.enqueue``), found by a claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from stackvol.services.attachments import queries
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Attachment
from stackvol.storage.base import StorageError
from stackvol.storage.registry import Backends
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind

ATTACH_MODES = ("rw", "ro")


class Enqueue(Protocol):
    """Queues a task inside the caller's transaction (``Worker.enqueue``, ``queue.enqueue``)."""

    def __call__(self, conn: Connection, kind: TaskKind, resource_id: str,
                 payload: dict[str, Any] | None = None, target: str | None = None) -> None: ...


def connector(host: str | None, attachment_id: str) -> dict[str, Any]:
    """Who connects (Cinder's connector): the compute host, and for which attachment."""
    return {"host": host, "attachment_id": attachment_id}


def made_for(connector: Mapping[str, Any] | None,
             attachment_id: str | None) -> dict[str, Any] | None:
    """The part of a client's connector the driver needs: the host, and for which attachment
    (the holder of an export)."""
    if not connector or not connector.get("host"):
        return None
    return {"host": connector["host"], "attachment_id": attachment_id}


def connection_info(backends: Backends, backend: str, volume_id: str, location: str,
                    mode: str | None, made_for: Mapping[str, Any] | None,
                    qos_specs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Blocking: the driver's connection for ``made_for`` (Cinder's connector), with the
    access mode and the front-end QoS specs the hypervisor applies (volumes/qos_specs);
    ``Invalid`` when the backend cannot make it."""
    try:
        info = backends.get(backend).initialize_connection(volume_id, location,
                                                           made_for).as_dict()
    except StorageError as exc:  # e.g. a backend no longer configured
        raise Invalid(f"Invalid volume: cannot connect volume {volume_id}: {exc}") from exc
    info["data"]["access_mode"] = mode if mode in ATTACH_MODES else "rw"
    info["data"]["qos_specs"] = dict(qos_specs) if qos_specs else None  # as Cinder's
    if made_for:  # kept for whoever ends the connection (as Nova keeps it)
        info["connector"] = dict(made_for)
    return info


def exporter(info: Mapping[str, Any] | None) -> str | None:
    """The storage host serving a connection (an export), if one does."""
    found: str | None = ((info or {}).get("data") or {}).get("exporter")
    return found


def storage_host(info: Mapping[str, Any] | None, backend: str) -> str:
    """The task target that tears ``info`` down: the host serving its export, else any."""
    serving = exporter(info)
    return f"{serving}@{backend}" if serving else backend


# --- the chain's tasks, queued inside the caller's transaction --------------------------------


def request_connection(conn: Connection, attachment_id: str, backend: str, host: str | None,
                       attach: bool = True, enqueue: Enqueue = taskq.enqueue) -> None:
    """Have the volume's backend make the connection for ``host`` (then attach, unless the
    spawn of a server booting from the volume connects it)."""
    enqueue(conn, TaskKind.VOLUME_INITIALIZE_CONNECTION, attachment_id,
            {"connector": connector(host, attachment_id), "attach": attach}, target=backend)


def connection_ready(conn: Connection, attachment: Attachment, backend: str, host: str) -> bool:
    """Whether a boot volume's connection is made for ``host``; if not, have it made (once).

    Raises ``Invalid`` when its backend could not make it (the build fails with the reason).
    """
    info = attachment.connection_info
    if info and info.get("error"):
        raise Invalid(f"Volume {attachment.volume_id} cannot be connected: {info['error']}")
    if info:
        return True
    if not queries.connection_queued(conn, attachment.id):
        request_connection(conn, attachment.id, backend, host, attach=False)
    return False


def terminate_connection(conn: Connection, attachment_id: str, volume_id: str, backend: str,
                         info: dict[str, Any], release: bool = False,
                         enqueue: Enqueue = taskq.enqueue) -> None:
    """Have the storage host that made ``info`` tear it down; with ``release`` the detaching
    row then ends and its volume is available."""
    enqueue(conn, TaskKind.VOLUME_TERMINATE_CONNECTION, attachment_id,
            {"volume_id": volume_id, "backend": backend, "connection_info": info,
             "release": release},
            target=storage_host(info, backend))


def release_connection(conn: Connection, row: Any, enqueue: Enqueue = taskq.enqueue) -> None:
    """An attachment row was just removed: tear down the connection it held, if any."""
    info = row.connection_info
    if not info or "driver_volume_type" not in info:
        return
    backend = queries.volume_backend(conn, row.volume_id)
    if backend:
        terminate_connection(conn, row.id, row.volume_id, backend, info, enqueue=enqueue)
