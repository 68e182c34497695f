"""Every kind of durable task, as the ``tasks.kind`` column spells it, and the role that runs it.

A kind's value is its wire form: it is stored in the database, named by ``pause_at`` test hooks
and shown by the admin CLI, so a value never changes once released. Which worker role runs a
kind is written down here, in one table, rather than read off the name: a storage host runs
the work on its backend (volumes, snapshots, the connections it exports), a compute host the
work on its guests (servers and the attaching of disks to them).

Rows of kinds no longer listed (left by an older release) are never claimed: a worker claims
only the kinds it has handlers for, and handlers are registered by ``TaskKind``.
"""

from __future__ import annotations

from enum import StrEnum

# The worker roles that run tasks (see ``stackvol.tasks.roles``; ``all`` runs every kind and
# ``api`` none).
VOLUME = "volume"
COMPUTE = "compute"


class TaskKind(StrEnum):
    VOLUME_CREATE = "volume.create"
    VOLUME_DELETE = "volume.delete"
    VOLUME_EXTEND = "volume.extend"
    VOLUME_UPLOAD_IMAGE = "volume.upload_image"
    # A storage host makes or tears down the export a compute host attaches (the Nova side).
    VOLUME_INITIALIZE_CONNECTION = "volume.initialize_connection"
    VOLUME_TERMINATE_CONNECTION = "volume.terminate_connection"
    # The same, asked for by Cinder's API on behalf of a caller who waits for the answer.
    VOLUME_CALL_INITIALIZE_CONNECTION = "volume.call.initialize_connection"
    VOLUME_CALL_TERMINATE_CONNECTION = "volume.call.terminate_connection"
    SNAPSHOT_CREATE = "snapshot.create"
    SNAPSHOT_DELETE = "snapshot.delete"
    ATTACHMENT_ATTACH = "attachment.attach"
    ATTACHMENT_DETACH = "attachment.detach"
    SERVER_SPAWN = "server.spawn"
    SERVER_POWER = "server.power"
    SERVER_DELETE = "server.delete"

    @property
    def role(self) -> str:
        """The worker role that runs this kind (``volume`` or ``compute``)."""
        return _ROLE[self]


_ROLE: dict[TaskKind, str] = {
    TaskKind.VOLUME_CREATE: VOLUME,
    TaskKind.VOLUME_DELETE: VOLUME,
    TaskKind.VOLUME_EXTEND: VOLUME,
    TaskKind.VOLUME_UPLOAD_IMAGE: VOLUME,
    TaskKind.VOLUME_INITIALIZE_CONNECTION: VOLUME,
    TaskKind.VOLUME_TERMINATE_CONNECTION: VOLUME,
    TaskKind.VOLUME_CALL_INITIALIZE_CONNECTION: VOLUME,
    TaskKind.VOLUME_CALL_TERMINATE_CONNECTION: VOLUME,
    TaskKind.SNAPSHOT_CREATE: VOLUME,
    TaskKind.SNAPSHOT_DELETE: VOLUME,
    TaskKind.ATTACHMENT_ATTACH: COMPUTE,
    TaskKind.ATTACHMENT_DETACH: COMPUTE,
    TaskKind.SERVER_SPAWN: COMPUTE,
    TaskKind.SERVER_POWER: COMPUTE,
    TaskKind.SERVER_DELETE: COMPUTE,
}


def role_of(kind: str) -> str | None:
    """The role that runs ``kind``; None for a kind this release does not know."""
    try:
        return TaskKind(kind).role
    except ValueError:
        return None
