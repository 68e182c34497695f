"""The storage driver interface: what the volume service needs from a backend.

Methods are blocking (they do I/O or run tools); the services call them in worker threads.
Every method is idempotent, because a task interrupted by a crash runs again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GiB = 1024**3


class StorageError(Exception):
    """The backend could not do what was asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """How a hypervisor reaches a volume (Cinder's ``connection_info``)."""

    driver_volume_type: str  # "file", "rbd", "iscsi", "nbd", ...
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"driver_volume_type": self.driver_volume_type, "data": dict(self.data)}


class StorageDriver(ABC):
    """One storage backend. ``location`` is the driver's own name for the bytes of a volume."""

    name: str

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> StorageDriver:
        """The driver of backend ``name`` from its ``[backends.NAME]`` options (less
        ``driver`` and ``volume_backend_name``); unknown or bad options raise ValueError."""
        raise NotImplementedError(f"{cls.__name__} cannot be configured as a backend")

    @abstractmethod
    def create_volume(self, volume_id: str, size_gb: int) -> str:
        """Create an empty (thin) volume of ``size_gb`` GiB; return its location."""

    @abstractmethod
    def delete_volume(self, volume_id: str, location: str | None) -> None:
        """Remove the volume's bytes; a volume already gone is not an error."""

    @abstractmethod
    def volume_exists(self, volume_id: str, location: str | None) -> bool:
        """Whether the backend holds bytes for this volume (used by recovery checks)."""

    @abstractmethod
    def connection_info(self, volume_id: str, location: str) -> ConnectionInfo:
        """What a compute driver needs to connect the volume to a server."""

    def initialize_connection(self, volume_id: str, location: str,
                              connector: Mapping[str, Any] | None) -> ConnectionInfo:
        """Connection info for one connector (Cinder's): the compute host that will connect.

        ``connector`` carries ``host`` (the compute host's name) and, for attachments made
        here, ``attachment_id``. A backend that must set something up per host (an export)
        does it now and tears it down in ``terminate_connection``.
        """
        return self.connection_info(volume_id, location)

    def terminate_connection(self, volume_id: str, location: str | None,
                             connector: Mapping[str, Any] | None) -> None:
        """Undo what ``initialize_connection`` set up for this connector (idempotent)."""
        return None

    def creates_quickly(self) -> bool:
        """Whether ``create_volume`` only makes a thin file's metadata (no data written, no
        tool, cluster or daemon to wait on): the services then call it on the event loop."""
        return False

    def connects_quickly(self, connector: Mapping[str, Any] | None) -> bool:
        """Whether ``initialize_connection`` and ``terminate_connection`` for ``connector``
        only compute (no export, daemon, cluster or disk to wait on): the services then call
        them on the event loop, as a thread hand-off costs more than the call."""
        return False

    def restore(self) -> None:
        """On start of the process serving this backend: bring back what it serves."""
        return None

    def capacity_gb(self) -> tuple[float, float] | None:
        """(total, free) GiB the backend can hold, if it can tell (Cinder's pool stats)."""
        return None

    def create_snapshot(self, snapshot_id: str, volume_id: str, volume_location: str) -> str:
        """Take a point-in-time copy of a volume; return the snapshot's location."""
        raise StorageError(f"{self.name} backend does not support snapshots")

    def delete_snapshot(self, snapshot_id: str, location: str | None) -> None:
        raise StorageError(f"{self.name} backend does not support snapshots")

    def create_volume_from_snapshot(
        self, volume_id: str, size_gb: int, snapshot_location: str
    ) -> str:
        raise StorageError(f"{self.name} backend cannot create volumes from snapshots")

    def create_cloned_volume(self, volume_id: str, size_gb: int, source_location: str) -> str:
        """Create a volume of ``size_gb`` GiB holding a copy of another volume's bytes (Cinder's
        clone, ``source_volid``); its location."""
        raise StorageError(f"{self.name} backend cannot clone volumes")

    def extend_volume(self, volume_id: str, location: str, new_size_gb: int) -> None:
        raise StorageError(f"{self.name} backend cannot extend volumes")

    def copy_image_to_volume(self, volume_id: str, size_gb: int, image_path: str,
                             image_format: str) -> str:
        """Create a volume of ``size_gb`` GiB holding an image's bytes (``image_format`` as
        QEMU names it: raw, qcow2, ...), converted to the volume's format; its location."""
        raise StorageError(f"{self.name} backend cannot create volumes from images")

    def copy_volume_to_image(self, volume_id: str, location: str, target: str,
                             image_format: str) -> None:
        """Write the volume's bytes to the file ``target`` as an image of ``image_format`` (as
        QEMU names it); the volume may be attached (a forced upload), so read it shared."""
        raise StorageError(f"{self.name} backend cannot copy volumes to images")
