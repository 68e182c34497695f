"""Status values of the state machines, as Nova and Cinder spell them on the wire."""

from __future__ import annotations

from enum import StrEnum


class VolumeStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    EXTENDING = "extending"
    ERROR_EXTENDING = "error_extending"
    RESERVED = "reserved"
    AWAITING_TRANSFER = "awaiting-transfer"  # offered to another project (a transfer)
    UPLOADING = "uploading"  # its bytes being copied into an image


class SnapshotStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"


class AttachmentStatus(StrEnum):
    RESERVED = "reserved"  # Cinder's attachment API: created without a connector yet
    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"


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
