"""The compute driver interface: what the server and attachment services need from a hypervisor.

Methods are blocking and idempotent (a task interrupted by a crash runs again); the services
call them in worker threads, except the volume calls a driver says are quick
(``attaches_quickly``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from stackvol.storage.qemu_img import QEMU_FORMATS


class PowerState(IntEnum):
    """A guest's power state as Nova numbers it (``OS-EXT-STS:power_state``)."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


class ComputeError(Exception):
    """The hypervisor could not do what was asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ImageFile:
    """An image's bytes in the image store, as the compute host reads them."""

    id: str
    path: str
    disk_format: str  # Glance's name: qcow2, raw, aki, ari, ami, vmdk, ...

    @property
    def qemu_format(self) -> str:
        """The format as QEMU names it (kernel, ramdisk, AMI and ISO images are plain bytes)."""
        return QEMU_FORMATS.get(self.disk_format, "raw")


@dataclass(frozen=True, slots=True)
class BootImage:
    """What a server boots from an image.

    ``disk``: the image whose copy-on-write overlay is the root disk ``vda`` (``None`` when
    the root is a volume already holding the image's bytes). With ``kernel`` (AMI style: the
    image's ``kernel_id``/``ramdisk_id`` properties) the kernel is booted directly, with
    ``cmdline`` (``os_command_line``) if given; without, the root disk boots by BIOS.
    """

    id: str
    disk: ImageFile | None = None
    virtual_size: int = 0  # bytes; the root disk is at least this big
    kernel: ImageFile | None = None
    ramdisk: ImageFile | None = None
    cmdline: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """What a driver needs to build a server."""

    server_id: str
    name: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    image_ref: str | None
    # Boot from volume: the root volume's connection info, for drivers that boot from a disk
    # given at build time (the services still connect it as ``/dev/vda`` afterwards).
    root_volume: dict[str, Any] | None = None
    # The image to boot; None: the driver's built-in guest (for drivers that have one).
    boot_image: BootImage | None = None


class ComputeDriver(ABC):
    name: str
    host: str
    # How often the services should read back power states that can change without being
    # asked (a hypervisor whose guests can die or power off); 0: they never do.
    power_sync_seconds: float = 0.0

    @abstractmethod
    def spawn(self, spec: InstanceSpec) -> None:
        """Create and start the server; return once it runs."""

    @abstractmethod
    def destroy(self, server_id: str) -> None:
        """Stop and remove the server; a server already gone is not an error."""

    @abstractmethod
    def power_off(self, server_id: str) -> None: ...

    @abstractmethod
    def power_on(self, server_id: str) -> None: ...

    @abstractmethod
    def reboot(self, server_id: str, hard: bool) -> None: ...

    @abstractmethod
    def power_state(self, server_id: str) -> PowerState:
        """The hypervisor's view of the server (``NOSTATE`` if it does not know it)."""

    @abstractmethod
    def attach_volume(self, server_id: str, volume_id: str, connection_info: dict[str, Any],
                      device: str) -> None:
        """Connect a volume to the server as ``device``; return once the server has it."""

    @abstractmethod
    def detach_volume(self, server_id: str, volume_id: str) -> None:
        """Disconnect a volume; a volume not connected is not an error."""

    def attaches_quickly(self, connection_info: dict[str, Any]) -> bool:
        """Whether ``attach_volume`` and ``detach_volume`` of a volume so connected return
        in well under a millisecond, waiting on nothing but a local file: the services then
        call them on the event loop, as a thread hand-off costs more than the call."""
        return False

    @abstractmethod
    def attached_volumes(self, server_id: str) -> dict[str, str]:
        """Volumes the hypervisor has connected to the server: volume id -> device."""

    @abstractmethod
    def servers(self) -> list[str]:
        """Every server the hypervisor holds (start-up recovery compares them with the database)."""

    def console_output(self, server_id: str) -> str:
        """The server's console log (the newest part of it)."""
        raise NotImplementedError
