"""The storage driver interface: what the volume service needs from a backend.

Methods are blocking (they do I/O or run tools); the services call them in worker threads.
Every method is idempotent, because a task interrupted by a crash runs again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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

    def create_snapshot(self, snapshot_id: str, volume_id: str, volume_location: str) -> str:
        """Take a point-in-time copy of a volume; return the snapshot's location."""
        raise StorageError(f"{self.name} backend does not support snapshots")

    def delete_snapshot(self, snapshot_id: str, location: str | None) -> None:
        raise StorageError(f"{self.name} backend does not support snapshots")

    def create_volume_from_snapshot(
        self, volume_id: str, size_gb: int, snapshot_location: str
    ) -> str:
        raise StorageError(f"{self.name} backend cannot create volumes from snapshots")

    def extend_volume(self, volume_id: str, location: str, new_size_gb: int) -> None:
        raise StorageError(f"{self.name} backend cannot extend volumes")
