"""Status values of the volume, snapshot and attachment state machines, as Cinder and Nova spell
them on the wire (the rows store them as is). The moves between them are in ``transitions``."""

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
    # Only an admin's os-reset_status sets these (Cinder's names; stackvol never manages,
    # backs up or restores, and no other action accepts a volume in them).
    MAINTENANCE = "maintenance"
    MANAGING = "managing"
    ERROR_MANAGING = "error_managing"
    RESTORING_BACKUP = "restoring-backup"
    ERROR_RESTORING = "error_restoring"


class SnapshotStatus(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    # Only an admin's os-reset_status sets these (Cinder's names).
    UNMANAGING = "unmanaging"
    BACKING_UP = "backing-up"
    RESTORING = "restoring"


class AttachmentStatus(StrEnum):
    RESERVED = "reserved"  # Cinder's attachment API: created without a connector yet
    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"
