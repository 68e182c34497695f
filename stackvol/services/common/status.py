"""Status values, as Nova and Cinder spell them on the wire: the servers' here, the volume,
snapshot and attachment ones re-exported from ``stackvol.db.statuses``."""

from __future__ import annotations

from enum import StrEnum

# The state machines' statuses live beside their transitions table (db/); imported from here
# by the services, as before.
from stackvol.db.statuses import AttachmentStatus, SnapshotStatus, VolumeStatus

__all__ = ["AttachmentStatus", "SnapshotStatus", "TaskState", "VmState", "VolumeStatus"]


class VmState(StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    ERROR = "error"
    DELETED = "deleted"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    SPAWNING = "spawning"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    DELETING = "deleting"
