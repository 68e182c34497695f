"""The worker side of servers: what a compute host's worker does with a server's task.

api.py records the request (the compare-and-swap that starts it, committed with its task);
here the task is run — the driver call, then the compare-and-swap that ends it — or failed:

spawn   building/spawning → claim the mapped volumes → driver.spawn, connect them → active
power   …/powering-off, powering-on, rebooting(_hard) → the driver call → stopped or active
delete  */deleting → driver.destroy, disconnect → row removed, its volumes released

Each handler first re-reads the server and does nothing if the request was superseded (the
server deleted, or a hard reboot taking over), since a task may run again after a crash.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.transitions import VOLUME, move
from stackvol.services.attachments.connections import connection_ready, release_connection
from stackvol.services.attachments.nova_api import AttachmentService
from stackvol.services.attachments.queries import Stored
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import TaskState, VmState, VolumeStatus
from stackvol.services.servers import image_boot
from stackvol.services.servers import queries as q
from stackvol.services.servers.block_devices import ROOT_DEVICE
from stackvol.services.servers.records import POWER_OPS, PowerOp, Server, fault
from stackvol.services.volumes.qos_specs import front_end_specs
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.timeutils import utcnow
from stackvol.virt.base import BootImage, ComputeDriver, InstanceSpec, PowerState

log = logging.getLogger(__name__)

Mapped = list[tuple[Attachment, Stored]]  # a server's volumes with where their bytes are

# Volume statuses a server's attachment may leave its volume in when the server goes.
_HELD = (VolumeStatus.IN_USE, VolumeStatus.ATTACHING, VolumeStatus.DETACHING,
         VolumeStatus.RESERVED)


class ServerManager:
    """Runs the ``server.*`` tasks on the host of their server."""

    def __init__(self, db: Database, compute: ComputeDriver, worker: Worker,
                 attachments: AttachmentService, pause: PauseHook,
                 volume_wait_seconds: float) -> None:
        self.db = db
        self.compute = compute
        self.worker = worker
        self.attachments = attachments
        self.pause = pause
        self.volume_wait_seconds = volume_wait_seconds  # Nova: block_device_allocate_retries
        worker.register(TaskKind.SERVER_SPAWN, Handler(self._run_spawn, self._fail_spawn))
        worker.register(TaskKind.SERVER_POWER, Handler(self._run_power, self._fail_power))
        worker.register(TaskKind.SERVER_DELETE, Handler(self._run_delete, self._fail_delete))

    # --- spawn ----------------------------------------------------------------------------

    async def _run_spawn(self, task: Task) -> None:
        server = await self.db.read(q.load, task.resource_id)
        if server is None or server.vm_state != VmState.BUILDING:
            await self.db.run(taskq.finish, task)
            return
        moved = await self.db.run(q.cas_state, server.id, [VmState.BUILDING],
                                  [TaskState.SCHEDULING, TaskState.SPAWNING],
                                  task_state=TaskState.SPAWNING.value)
        if not moved:  # deleting already
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at("server.spawn")
        mapped = await self._claim_volumes(server.id)
        if mapped is None:  # deleted while its volumes were being made
            await self.db.run(taskq.finish, task)
            return
        spec = await self._instance_spec(server, mapped)
        try:
            await asyncio.to_thread(self.compute.spawn, spec)
            await self.pause.at("server.spawn.volumes")
            connected = [(att, await asyncio.to_thread(self.attachments.connect, att, stored))
                         for att, stored in mapped]
        except Exception:
            # As Nova does after a failed build: nothing of it stays on the hypervisor.
            await asyncio.to_thread(self.compute.destroy, server.id)
            raise
        if await self.db.run(_spawned, task, connected):
            log.info("server %s active", server.id)
        else:  # deleted while it was being built: take back what was just made
            await asyncio.to_thread(self.compute.destroy, server.id)

    async def _instance_spec(self, server: Server, mapped: Mapped) -> InstanceSpec:
        """What the driver builds: the flavor's sizes, the image, the boot volume if any."""
        flavor = server.flavor
        boot_image = await self.db.read(_boot_image, server, [att for att, _ in mapped])
        return InstanceSpec(server_id=server.id, name=server.name,
                            vcpus=flavor.vcpus if flavor else 1,
                            memory_mb=flavor.ram if flavor else 512,
                            disk_gb=flavor.disk if flavor else 0, image_ref=server.image_ref,
                            root_volume=self._root_volume(mapped), boot_image=boot_image)

    def _root_volume(self, mapped: Mapped) -> dict[str, Any] | None:
        """The boot volume's connection info, for a driver that boots from it."""
        for attachment, stored in mapped:
            if attachment.device == ROOT_DEVICE:
                return self.attachments.connection_info(attachment, stored)
        return None

    async def _claim_volumes(self, server_id: str) -> Mapped | None:
        """Wait for the server's new volumes, claim them; its volumes and their locations."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.volume_wait_seconds
        delay = 0.02
        while True:
            building, mapped = await self.db.run(_claim_mapped_volumes, server_id)
            self.worker.wake()  # it may have queued connections for this worker
            if not building:
                return None
            if mapped is not None:
                return mapped
            if loop.time() > deadline:
                raise Invalid(f"Volumes of server {server_id} were not created in "
                              f"{self.volume_wait_seconds:.0f} seconds")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    @staticmethod
    def _fail_spawn(conn: Connection, task: Task, reason: str) -> None:
        if q.cas_state(conn, task.resource_id, [VmState.BUILDING],
                       [TaskState.SCHEDULING, TaskState.SPAWNING],
                       vm_state=VmState.ERROR.value, task_state=None,
                       power_state=int(PowerState.NOSTATE), fault=fault(reason)):
            release_volumes(conn, task.resource_id)  # the failed build holds no volume

    # --- power ----------------------------------------------------------------------------

    async def _run_power(self, task: Task) -> None:
        op = POWER_OPS[task.payload["op"]]
        server = await self.db.read(q.load, task.resource_id)
        if server is None or server.task_state != op.task_state:
            await self.db.run(taskq.finish, task)  # superseded (deleted, or a hard reboot)
            return
        await self.pause.at(f"server.{task.payload['op']}")
        await asyncio.to_thread(op.call, self.compute, server.id)
        await self.db.run(_powered, task, op)
        log.info("server %s %s done", server.id, task.payload["op"])

    @staticmethod
    def _fail_power(conn: Connection, task: Task, reason: str) -> None:
        op = POWER_OPS[task.payload["op"]]
        q.cas_state(conn, task.resource_id, None, [op.task_state], task_state=None,
                    fault=fault(reason))

    # --- delete ---------------------------------------------------------------------------

    async def _run_delete(self, task: Task) -> None:
        server = await self.db.read(q.load, task.resource_id)
        if server is None or server.task_state != TaskState.DELETING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at("server.delete")
        # As Nova: the guest goes first (a live unplug would need its cooperation), then
        # whatever connection the driver still holds for it.
        await asyncio.to_thread(self.compute.destroy, server.id)
        await asyncio.to_thread(self._disconnect_all, server.id)
        await self.db.run(_deleted, task)
        log.info("server %s deleted", server.id)

    def _disconnect_all(self, server_id: str) -> None:
        """Blocking: the driver lets go of every volume it still holds for the server."""
        for volume_id in self.compute.attached_volumes(server_id):
            self.compute.detach_volume(server_id, volume_id)

    @staticmethod
    def _fail_delete(conn: Connection, task: Task, reason: str) -> None:
        q.cas_state(conn, task.resource_id, None, [TaskState.DELETING],
                    vm_state=VmState.ERROR.value, task_state=None, fault=fault(reason))


# --- the compare-and-swaps that end a task (each commits with the task's finish) -------------


def _spawned(conn: Connection, task: Task,
             connected: list[tuple[Attachment, dict[str, Any]]]) -> bool:
    moved = q.cas_state(conn, task.resource_id, [VmState.BUILDING], [TaskState.SPAWNING],
                        vm_state=VmState.ACTIVE.value, task_state=None,
                        power_state=int(PowerState.RUNNING), launched_at=utcnow(),
                        root_device_name=ROOT_DEVICE)
    if moved:
        for attachment, info in connected:
            AttachmentService.mark_attached(conn, attachment, info)
    taskq.finish(conn, task)
    return moved


def _powered(conn: Connection, task: Task, op: PowerOp) -> None:
    q.cas_state(conn, task.resource_id, None, [op.task_state], vm_state=str(op.end_vm),
                task_state=None, power_state=int(op.end_power))
    taskq.finish(conn, task)


def _deleted(conn: Connection, task: Task) -> None:
    release_volumes(conn, task.resource_id)
    q.remove_deleting(conn, task.resource_id)
    taskq.finish(conn, task)


# --- the server's volumes -------------------------------------------------------------------


def _boot_image(conn: Connection, server: Server, mapped: list[Attachment]) -> BootImage | None:
    """What the driver boots: the root volume's image if it has a root volume, else the
    server's image (``None``: the driver's built-in guest)."""
    root = next((att.volume_id for att in mapped if att.device == ROOT_DEVICE), None)
    root_image = None if root is None else q.volume_image_metadata(conn, root)
    return image_boot.boot_image(conn, server.image_ref, root_image)


def _claim_mapped_volumes(conn: Connection, server_id: str) -> tuple[bool, Mapped | None]:
    """(still building?, the server's mapped volumes once every one is claimed, else None).

    New volumes move available → attaching here; one that ended in any other status (an
    error while creating, or deleted meanwhile) fails the build. Claimed volumes then wait for
    their backend to make the connection for this server's host.
    """
    state = q.build_state(conn, server_id)
    if state is None or (state.vm_state, state.task_state) != (VmState.BUILDING,
                                                               TaskState.SPAWNING):
        return False, None
    mapped: Mapped = []
    waiting = False
    for row in q.attaching(conn, server_id):
        values = dict(row._mapping)
        status = values.pop("volume_status")
        stored = Stored(values.pop("backend"), values.pop("provider_location"),
                        qos_specs=front_end_specs(conn, values["volume_id"]))
        attachment = Attachment(**values)
        if status == VolumeStatus.CREATING:
            waiting = True
            continue
        if status == VolumeStatus.AVAILABLE and move(
                conn, VOLUME, attachment.volume_id, [VolumeStatus.AVAILABLE],
                VolumeStatus.ATTACHING):
            status = VolumeStatus.ATTACHING
        if status != VolumeStatus.ATTACHING:
            raise Invalid(f"Volume {attachment.volume_id} is {status} and cannot be attached "
                          f"to server {server_id}")
        if not connection_ready(conn, attachment, stored.backend, state.host):
            waiting = True
        mapped.append((attachment, stored))
    return True, None if waiting else mapped


def release_volumes(conn: Connection, server_id: str) -> None:
    """The server is gone: drop its attachments; volumes become available, or are deleted."""
    rows = q.attachments_of(conn, server_id)
    q.delete_attachments(conn, server_id)
    for row in rows:  # exports made for the server's host end with it
        release_connection(conn, row)
    for row in rows:
        if q.holders(conn, row.volume_id):
            continue
        if row.delete_on_termination and move(conn, VOLUME, row.volume_id, _HELD,
                                              VolumeStatus.DELETING):
            taskq.enqueue(conn, TaskKind.VOLUME_DELETE, row.volume_id,
                          target=q.volume_backend(conn, row.volume_id))
        else:
            move(conn, VOLUME, row.volume_id, _HELD, VolumeStatus.AVAILABLE)
