"""Servers: building, powering and deleting them on a compute driver, with Nova's state machine.

A server's ``vm_state`` says what it is (building, active, stopped, error) and its ``task_state``
what is being done to it (spawning, powering-off, rebooting, deleting...). Every request moves the
pair with a compare-and-swap committed with the durable task that finishes the work, so two
requests cannot both win, and a crash resumes the work instead of stranding the server:

create  → building/scheduling → (task) building/spawning → driver.spawn → active
stop    → active/powering-off → driver.power_off → stopped
start   → stopped/powering-on → driver.power_on → active
reboot  → active/rebooting (or …/rebooting_hard) → driver.reboot → active
delete  → */deleting → driver.destroy → row removed, its volumes released

Boot from volume: the volumes of the block device mappings are reserved (an existing volume moves
available → attaching) or created (a new ``creating`` volume and its ``volume.create`` task) in
the transaction that records the server, each with an ``attaching`` attachment row. The spawn
task waits for new volumes to be available, claims them, builds the server and connects every
volume through the driver, then marks server, attachments and volumes done in one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import secrets
import string
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import servers, snapshots, volume_attachments, volumes
from stackvol.db.transitions import VOLUME, move
from stackvol.services.attachments.nova_side import (
    DEVICE_RE,
    AttachmentService,
    Stored,
    connection_ready,
    next_device,
    release_connection,
)
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Forbidden, Invalid, NotFound
from stackvol.services.common.records import Attachment
from stackvol.services.common.status import (
    AttachmentStatus,
    TaskState,
    VmState,
    VolumeStatus,
)
from stackvol.services.servers import image_boot, keypairs, recovery
from stackvol.services.servers.block_devices import ROOT_DEVICE, BlockDevice, parse
from stackvol.services.servers.flavors import Flavor, flavors_by_id, load_flavor
from stackvol.services.volumes.api import VolumeService, VolumeSpec
from stackvol.services.volumes.qos_specs import front_end_specs
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.queue import Task
from stackvol.tasks.worker import Handler, PauseHook, Worker
from stackvol.timeutils import utcnow
from stackvol.virt.base import BootImage, ComputeDriver, InstanceSpec, PowerState

log = logging.getLogger(__name__)

DEFAULT = "default"  # the task_state key for "no task running" in the status map

_REBOOT = {"rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
           "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
           "reboot_started_hard": "HARD_REBOOT"}
_REBUILD = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD",
            "rebuild_spawning": "REBUILD"}
_RESIZE = {"resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE",
           "resize_finish": "RESIZE"}
# Nova's (vm_state, task_state) → status table (nova/api/openstack/common.py).
STATE_MAP: dict[str, dict[str, str]] = {
    "active": {DEFAULT: "ACTIVE", **_REBOOT, **_REBUILD, **_RESIZE,
               "updating_password": "PASSWORD", "migrating": "MIGRATING"},
    "building": {DEFAULT: "BUILD"},
    "stopped": {DEFAULT: "SHUTOFF", **_RESIZE, **_REBUILD},
    "resized": {DEFAULT: "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    "paused": {DEFAULT: "PAUSED", "migrating": "MIGRATING"},
    "suspended": {DEFAULT: "SUSPENDED"},
    "rescued": {DEFAULT: "RESCUE"},
    "error": {DEFAULT: "ERROR", **_REBUILD},
    "deleted": {DEFAULT: "DELETED"},
    "soft-delete": {DEFAULT: "SOFT_DELETED"},
    "shelved": {DEFAULT: "SHELVED"},
    "shelved_offloaded": {DEFAULT: "SHELVED_OFFLOADED"},
}
# Task states a hard reboot may interrupt (Nova's task_states.ALLOW_REBOOT).
ALLOW_REBOOT = (None, "rebooting", "reboot_pending", "reboot_started", "resuming",
                "rebooting_hard", "unpausing", "pausing", "suspending")


def status_from_state(vm_state: str, task_state: str | None) -> str:
    table = STATE_MAP.get(vm_state, {DEFAULT: "UNKNOWN"})
    return table.get(task_state or DEFAULT, table[DEFAULT])


def states_for_status(status: str) -> tuple[set[str], set[str]]:
    """The vm_states and task_states (``DEFAULT`` meaning any) a status filter selects."""
    vm_states: set[str] = set()
    task_states: set[str] = set()
    for vm_state, table in STATE_MAP.items():
        for task_state, mapped in table.items():
            if mapped.lower() == status.lower():
                vm_states.add(vm_state)
                task_states.add(task_state)
    return vm_states, task_states


@dataclass(slots=True)
class Server:
    id: str
    project_id: str
    user_id: str
    name: str
    description: str | None
    vm_state: str
    task_state: str | None
    power_state: int
    flavor_id: str
    image_ref: str | None
    host: str | None
    availability_zone: str | None
    key_name: str | None
    metadata: dict[str, str]
    access_ipv4: str | None
    access_ipv6: str | None
    config_drive: str
    user_data: str | None
    locked: bool
    fault: dict[str, Any] | None
    launched_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    hostname: str | None
    node: str | None
    reservation_id: str | None
    root_device_name: str | None
    auto_disk_config: bool
    locked_reason: str | None
    pinned_availability_zone: str | None
    tags: list[str] | None
    security_groups: list[str] | None
    networks: Any
    block_device_mapping: list[dict[str, Any]] | None
    scheduler_hints: dict[str, Any] | None
    trusted_certs: list[str] | None
    # Filled from other tables: live volume attachments (volume id, delete_on_termination).
    volumes: list[tuple[str, bool]] = field(default_factory=list)
    flavor: Flavor | None = None

    @classmethod
    def from_row(cls, row: Any) -> Server:
        mapping = row._mapping
        return cls(**{f.name: mapping.get(f.name) for f in _ROW_FIELDS})

    @property
    def status(self) -> str:
        return status_from_state(self.vm_state, self.task_state)

    @property
    def addresses(self) -> dict[str, list[dict[str, Any]]]:
        """Simulated networking: one fixed IPv4 per requested port on ``private``, none for
        ``networks: none``, and none shown while building (as Nova hides them then)."""
        if self.vm_state == VmState.BUILDING or self.networks == "none":
            return {}
        ports = self.networks if isinstance(self.networks, list) and self.networks else [{}]
        out = []
        for index, port in enumerate(ports):
            seed = hashlib.sha256(f"{self.id}/{index}".encode()).digest()
            addr = port.get("fixed_ip") or f"10.{seed[0]}.{seed[1]}.{seed[2] % 253 + 2}"
            mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in seed[3:6])
            out.append({"addr": addr, "version": 6 if ":" in addr else 4, "mac": mac})
        return {"private": out}

    @property
    def host_status(self) -> str:
        """Nova's view of the compute service: one process, so it is up whenever it has one."""
        return "UP" if self.host else ""


_ROW_FIELDS = [f for f in fields(Server) if f.name not in ("volumes", "flavor")]
_ORDER = (servers.c.created_at.desc(), servers.c.id.desc())


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """A create request, already validated for shape by the face that received it."""

    name: str
    flavor_id: str
    image_ref: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    key_name: str | None = None
    networks: Any = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    block_device_mapping: list[dict[str, Any]] = field(default_factory=list)  # v2 syntax
    legacy_block_device_mapping: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=lambda: ["default"])
    user_data: str | None = None
    config_drive: bool = False
    access_ipv4: str | None = None
    access_ipv6: str | None = None
    auto_disk_config: bool = False
    admin_pass: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    trusted_certs: list[str] | None = None
    hostname: str | None = None
    min_count: int = 1
    max_count: int = 1


@dataclass(frozen=True, slots=True)
class ServerQuery:
    """A list request: raw filters, and which of them a non-admin may use at this version."""

    filters: dict[str, str] = field(default_factory=dict)
    user_filters: frozenset[str] = frozenset()
    all_projects: bool = False
    limit: int = 1000
    marker: str | None = None
    strict_status: bool = False  # 2.38+: an unknown status is 400 instead of an empty list


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which policy-guarded parts of the server view the caller may see."""

    host_attributes: bool
    host_status: bool


@dataclass(frozen=True, slots=True)
class PowerOp:
    """One power action: where it may start, its task_state, the driver call, where it ends."""

    action: str  # the verb in Nova's conflict message
    from_vm: tuple[str, ...]
    from_task: tuple[str | None, ...]
    task_state: str
    call: Callable[[ComputeDriver, str], None]
    end_vm: str
    end_power: PowerState


POWER_OPS: dict[str, PowerOp] = {
    "stop": PowerOp("stop", (VmState.ACTIVE, VmState.ERROR), (None,), TaskState.POWERING_OFF,
                    lambda d, s: d.power_off(s), VmState.STOPPED, PowerState.SHUTDOWN),
    "start": PowerOp("start", (VmState.STOPPED,), (None,), TaskState.POWERING_ON,
                     lambda d, s: d.power_on(s), VmState.ACTIVE, PowerState.RUNNING),
    "reboot": PowerOp("reboot", (VmState.ACTIVE,), (None,), TaskState.REBOOTING,
                      lambda d, s: d.reboot(s, False), VmState.ACTIVE, PowerState.RUNNING),
    "reboot_hard": PowerOp("reboot", (VmState.ACTIVE, VmState.STOPPED, "paused", "suspended",
                                      VmState.ERROR), ALLOW_REBOOT, TaskState.REBOOTING_HARD,
                           lambda d, s: d.reboot(s, True), VmState.ACTIVE, PowerState.RUNNING),
}


def cas_server(conn: Connection, server_id: str, vm_states: Iterable[str] | None,
               task_states: Iterable[str | None] | None, **values: Any) -> bool:
    """Update a server only if its (vm_state, task_state) is still one expected; True if so."""
    cond = [servers.c.id == server_id]
    if vm_states is not None:
        cond.append(servers.c.vm_state.in_(list(vm_states)))
    if task_states is not None:
        wanted = list(task_states)
        named = [t for t in wanted if t is not None]
        either = [servers.c.task_state.in_(named)] if named else []
        if None in wanted:
            either.append(servers.c.task_state.is_(None))
        cond.append(sa.or_(*either))
    result = conn.execute(servers.update().where(*cond).values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def sanitize_hostname(name: str, default: str) -> str:
    """Nova's ``sanitize_hostname``: a DNS label made from the display name."""
    text = re.sub(r"[ _]", "-", name.lower())
    text = re.sub(r"[^\w.-]+", "", text, flags=re.ASCII)
    text = text[:63].strip(".-")
    return text or default


def generate_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def fault(message: str, code: int = 500) -> dict[str, Any]:
    return {"code": code, "message": message[:255], "details": message,
            "created": utcnow().isoformat()}


class ServerService:
    def __init__(self, db: Database, compute: ComputeDriver, worker: Worker,
                 volumes: VolumeService, attachments: AttachmentService,
                 availability_zones: tuple[str, ...] = ("nova",),
                 pause: PauseHook | None = None, volume_wait_seconds: float = 180.0,
                 place: Callable[[Connection], str] | None = None) -> None:
        self.db = db
        self.compute = compute
        # Which compute host a new server goes to (an API-only process asks the live ones).
        self.place = place or (lambda _conn: compute.host)
        self.worker = worker
        self.volumes = volumes
        self.attachments = attachments
        self.volume_wait_seconds = volume_wait_seconds  # Nova: block_device_allocate_retries
        self.availability_zones = availability_zones
        self.pause = pause or PauseHook("")
        worker.register(TaskKind.SERVER_SPAWN, Handler(self._run_spawn, self._fail_spawn))
        worker.register(TaskKind.SERVER_POWER, Handler(self._run_power, self._fail_power))
        worker.register(TaskKind.SERVER_DELETE, Handler(self._run_delete, self._fail_delete))

    async def reconcile(self) -> None:
        """At start-up, before the worker: make the hypervisor agree with the database."""
        await recovery.reconcile(self.db, self.compute)

    # --- reads ----------------------------------------------------------------------------

    @staticmethod
    def visibility(ctx: RequestContext) -> Visibility:
        return Visibility(host_attributes=policy.allowed(ctx, "server:show_host_attributes"),
                          host_status=policy.allowed(ctx, "server:show_host_status"))

    @staticmethod
    def _row(conn: Connection, ctx: RequestContext, server_id: str) -> Server:
        query = sa.select(servers).where(servers.c.id == server_id)
        if not ctx.is_admin:
            query = query.where(servers.c.project_id == ctx.project_id)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"Instance {server_id} could not be found.")
        return Server.from_row(row)

    def _load(self, conn: Connection, ctx: RequestContext, server_id: str) -> Server:
        server = self._row(conn, ctx, server_id)
        _complete(conn, [server])
        return server

    async def get(self, ctx: RequestContext, server_id: str) -> Server:
        server = await self.db.read(self._load, ctx, server_id)
        policy.authorize(ctx, "server:show", server.project_id)
        return server

    async def list(self, ctx: RequestContext, query: ServerQuery) -> list[Server]:
        """One page of servers, newest first, filtered as Nova filters them."""
        policy.authorize(ctx, "server:list", ctx.project_id)
        filters = dict(query.filters)
        if not policy.allowed(ctx, "server:allow_all_filters"):
            filters = {k: v for k, v in filters.items() if k in query.user_filters}
        project: str | None = ctx.project_id
        if query.all_projects:
            if not policy.allowed(ctx, "server:list_all_projects"):
                raise Forbidden("Policy doesn't allow os_compute_api:servers:index:"
                                "get_all_tenants to be performed.")
            project = filters.get("project_id") or filters.get("tenant_id")
        filters.pop("project_id", None)
        filters.pop("tenant_id", None)
        match = _matcher(filters, query.strict_status)
        if match is None:
            return []
        return await self.db.read(self._list, project, query, match)

    @staticmethod
    def _list(conn: Connection, project: str | None, query: ServerQuery,
              match: Callable[[Server], bool]) -> list[Server]:
        stmt = sa.select(servers).order_by(*_ORDER)
        if project is not None:
            stmt = stmt.where(servers.c.project_id == project)
        if query.marker is not None:
            stmt = stmt.where(_after_marker(conn, project, query.marker))
        found: list[Server] = []
        for row in conn.execute(stmt):
            server = Server.from_row(row)
            if match(server):
                found.append(server)
                if len(found) >= query.limit:
                    break
        _complete(conn, found)
        return found

    # --- create ---------------------------------------------------------------------------

    def _check_spec(self, spec: ServerSpec) -> list[BlockDevice]:
        """Checks that need no database; the volume-backed block devices of the request."""
        zone = (spec.availability_zone or "").split(":", 1)[0]
        if spec.availability_zone is not None and zone not in self.availability_zones:
            raise Invalid("The requested availability zone is not available")
        devices = parse(spec.block_device_mapping, spec.legacy_block_device_mapping,
                        spec.image_ref)
        if spec.min_count > spec.max_count:
            raise Invalid("min_count must be <= max_count")
        return [d for d in devices if d.is_volume]

    async def create(self, ctx: RequestContext, spec: ServerSpec) -> tuple[list[Server], str]:
        """Record the server(s) as building and queue their spawning; answer at once."""
        policy.authorize(ctx, "server:create", ctx.project_id)
        devices = self._check_spec(spec)
        created = await self.db.run(self._insert, ctx, spec, devices)
        self.worker.wake()
        log.info("server(s) %s building", ", ".join(s.id for s in created))
        return created, spec.admin_pass or generate_password()

    def _insert(self, conn: Connection, ctx: RequestContext, spec: ServerSpec,
                devices: list[BlockDevice]) -> list[Server]:
        try:
            flavor = load_flavor(conn, spec.flavor_id)
        except NotFound as exc:
            raise Invalid(exc.message) from None
        _check_root_device(conn, ctx, devices)
        keypairs.check_key_name(conn, ctx.user_id, spec.key_name)
        if spec.image_ref:
            image_boot.check_server_image(conn, ctx, spec.image_ref, flavor,
                                          volume_backed=any(d.is_root for d in devices))
        count = spec.max_count
        if self.volumes.quotas is not None:  # counted in this transaction, as Nova does
            count = self.volumes.quotas.allowed_servers(conn, ctx.project_id, flavor.vcpus,
                                                        flavor.ram, spec.min_count, count)
        now = utcnow()
        reservation = "r-" + secrets.token_hex(4)
        host = self.place(conn)
        created = []
        for index in range(count):
            server_id = str(uuid.uuid4())
            name = spec.name if count == 1 else f"{spec.name}-{index + 1}"
            values = self._row_values(ctx, spec, server_id, name, now)
            values["reservation_id"] = reservation
            values["host"] = values["node"] = host
            if any(d.is_root for d in devices):
                values["root_device_name"] = ROOT_DEVICE
            conn.execute(servers.insert().values(values))
            self._map_volumes(conn, ctx, server_id, values["availability_zone"], devices)
            taskq.enqueue(conn, TaskKind.SERVER_SPAWN, server_id, target=host)
            server = Server(**values)
            server.flavor = flavor
            created.append(server)
        return created

    def _row_values(self, ctx: RequestContext, spec: ServerSpec, server_id: str, name: str,
                    now: dt.datetime) -> dict[str, Any]:
        zone = (spec.availability_zone or "").split(":", 1)[0] or None
        hostname = spec.hostname or sanitize_hostname(name, f"Server-{server_id}")
        return {
            "id": server_id, "project_id": ctx.project_id, "user_id": ctx.user_id,
            "name": name, "description": spec.description,
            "vm_state": VmState.BUILDING.value, "task_state": TaskState.SCHEDULING.value,
            "power_state": int(PowerState.NOSTATE), "flavor_id": spec.flavor_id,
            "image_ref": spec.image_ref or None, "host": self.compute.host,
            "node": self.compute.host, "availability_zone": zone or self.availability_zones[0],
            "pinned_availability_zone": zone, "key_name": spec.key_name,
            "metadata": dict(spec.metadata), "access_ipv4": spec.access_ipv4,
            "access_ipv6": spec.access_ipv6, "config_drive": "True" if spec.config_drive else "",
            "user_data": spec.user_data, "locked": False, "locked_reason": None, "fault": None,
            "launched_at": None, "created_at": now, "updated_at": None, "hostname": hostname,
            "reservation_id": None, "root_device_name": None,
            "auto_disk_config": spec.auto_disk_config, "tags": list(spec.tags),
            "security_groups": list(spec.security_groups), "networks": spec.networks,
            "block_device_mapping": list(spec.block_device_mapping
                                         or spec.legacy_block_device_mapping),
            "scheduler_hints": dict(spec.scheduler_hints), "trusted_certs": spec.trusted_certs,
        }

    def _map_volumes(self, conn: Connection, ctx: RequestContext, server_id: str, zone: str,
                     devices: list[BlockDevice]) -> None:
        """Reserve or create each mapped volume, with its ``attaching`` row, in this transaction.

        A volume that is not available (or a second server of one request wanting the same
        volume) fails the whole request, so no server is left half-mapped.
        """
        used = {ROOT_DEVICE}
        for device in sorted(devices, key=lambda d: not d.is_root):
            name = ROOT_DEVICE if device.is_root else _device_name(device.device_name, used)
            used.add(name)
            boot_index = device.boot_index if device.boot_index is not None else -1
            if device.source_type == "volume":
                volume_id = _visible_volume(conn, ctx, device)
                self.attachments.reserve_in(conn, server_id, volume_id, name, device.tag,
                                            device.delete_on_termination, boot_index)
                continue
            volume_id = self._new_volume(conn, ctx, server_id, zone, device)
            self.attachments.reserve_in(conn, server_id, volume_id, name, device.tag,
                                        device.delete_on_termination, boot_index, claim=False)

    def _new_volume(self, conn: Connection, ctx: RequestContext, server_id: str, zone: str,
                    device: BlockDevice) -> str:
        """A volume made for the server (Nova asks Cinder for it at spawn time)."""
        size = device.volume_size
        snapshot_id = None
        if device.source_type == "snapshot":
            snapshot_id = device.uuid
            snapshot_size = _snapshot_size(conn, ctx, device)  # Nova's lookup and faults
            size = size or snapshot_size
        image_id = None
        if device.source_type == "image" and device.uuid:
            image_id = device.uuid
            image_boot.check_bdm_image(conn, ctx, image_id, size or 0)  # Nova's faults first
        name = f"{server_id}-blank-vol" if device.source_type == "blank" else ""
        spec = VolumeSpec(size=size or 0, display_name=name, display_description="",
                          availability_zone=zone, snapshot_id=snapshot_id, image_id=image_id)
        self.volumes._check_spec(spec)
        return self.volumes._insert(conn, ctx, spec).id

    async def _run_spawn(self, task: Task) -> None:
        server = await self.db.read(_maybe_load, task.resource_id)
        if server is None or server.vm_state != VmState.BUILDING:
            await self.db.run(taskq.finish, task)
            return
        moved = await self.db.run(cas_server, server.id, [VmState.BUILDING],
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
        flavor = server.flavor
        boot_image = await self.db.read(_boot_image, server, [att for att, _ in mapped])
        spec = InstanceSpec(server_id=server.id, name=server.name,
                            vcpus=flavor.vcpus if flavor else 1,
                            memory_mb=flavor.ram if flavor else 512,
                            disk_gb=flavor.disk if flavor else 0, image_ref=server.image_ref,
                            root_volume=self._root_volume(mapped), boot_image=boot_image)
        try:
            await asyncio.to_thread(self.compute.spawn, spec)
            await self.pause.at("server.spawn.volumes")
            connected = [(att, await asyncio.to_thread(self.attachments.connect, att, stored))
                         for att, stored in mapped]
        except Exception:
            # As Nova does after a failed build: nothing of it stays on the hypervisor.
            await asyncio.to_thread(self.compute.destroy, server.id)
            raise
        if await self.db.run(self._spawned, task, connected):
            log.info("server %s active", server.id)
        else:  # deleted while it was being built: take back what was just made
            await asyncio.to_thread(self.compute.destroy, server.id)

    def _root_volume(self, mapped: list[tuple[Attachment, Stored]]) -> dict[str, Any] | None:
        """The boot volume's connection info, for a driver that boots from it."""
        for attachment, stored in mapped:
            if attachment.device == ROOT_DEVICE:
                return self.attachments.connection_info(attachment, stored)
        return None

    async def _claim_volumes(self, server_id: str) -> list[tuple[Attachment, Stored]] | None:
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
    def _spawned(conn: Connection, task: Task,
                 connected: list[tuple[Attachment, dict[str, Any]]]) -> bool:
        moved = cas_server(conn, task.resource_id, [VmState.BUILDING], [TaskState.SPAWNING],
                           vm_state=VmState.ACTIVE.value, task_state=None,
                           power_state=int(PowerState.RUNNING), launched_at=utcnow(),
                           root_device_name=ROOT_DEVICE)
        if moved:
            for attachment, info in connected:
                AttachmentService.mark_attached(conn, attachment, info)
        taskq.finish(conn, task)
        return moved

    @staticmethod
    def _fail_spawn(conn: Connection, task: Task, reason: str) -> None:
        if cas_server(conn, task.resource_id, [VmState.BUILDING],
                      [TaskState.SCHEDULING, TaskState.SPAWNING], vm_state=VmState.ERROR.value,
                      task_state=None, power_state=int(PowerState.NOSTATE),
                      fault=fault(reason)):
            _release_volumes(conn, task.resource_id)  # the failed build holds no volume

    # --- update ---------------------------------------------------------------------------

    async def update(self, ctx: RequestContext, server_id: str,
                     changes: dict[str, Any]) -> Server:
        """Nova's PUT: rename, describe, re-address or re-host-name a server in any state."""
        return await self.db.run(self._update, ctx, server_id, changes)

    def _update(self, conn: Connection, ctx: RequestContext, server_id: str,
                changes: dict[str, Any]) -> Server:
        server = self._row(conn, ctx, server_id)
        policy.authorize(ctx, "server:update", server.project_id)
        columns = {"name": "name", "description": "description", "hostname": "hostname",
                   "accessIPv4": "access_ipv4", "accessIPv6": "access_ipv6"}
        values = {col: changes[key] for key, col in columns.items() if key in changes}
        if "OS-DCF:diskConfig" in changes:
            values["auto_disk_config"] = changes["OS-DCF:diskConfig"] == "AUTO"
        if values:
            conn.execute(servers.update().where(servers.c.id == server_id)
                         .values(updated_at=utcnow(), **values))
        return self._load(conn, ctx, server_id)

    # --- power actions --------------------------------------------------------------------

    async def act(self, ctx: RequestContext, server_id: str, op_name: str) -> None:
        """Start a power action (``stop``, ``start``, ``reboot``, ``reboot_hard``) or 409."""
        await self.db.run(self._begin_power, ctx, server_id, POWER_OPS[op_name], op_name)
        self.worker.wake()

    def _begin_power(self, conn: Connection, ctx: RequestContext, server_id: str, op: PowerOp,
                     op_name: str) -> None:
        server = self._row(conn, ctx, server_id)
        policy.authorize(ctx, "server:action", server.project_id)
        _check_unlocked(server)
        if not cas_server(conn, server_id, op.from_vm, op.from_task, task_state=op.task_state):
            current = self._row(conn, ctx, server_id)
            raise _invalid_state(op.action, current, op.from_vm)
        taskq.enqueue(conn, TaskKind.SERVER_POWER, server_id, {"op": op_name}, target=server.host)

    async def _run_power(self, task: Task) -> None:
        op = POWER_OPS[task.payload["op"]]
        server = await self.db.read(_maybe_load, task.resource_id)
        if server is None or server.task_state != op.task_state:
            await self.db.run(taskq.finish, task)  # superseded (deleted, or a hard reboot)
            return
        await self.pause.at(f"server.{task.payload['op']}")
        await asyncio.to_thread(op.call, self.compute, server.id)
        await self.db.run(self._powered, task, op)
        log.info("server %s %s done", server.id, task.payload["op"])

    @staticmethod
    def _powered(conn: Connection, task: Task, op: PowerOp) -> None:
        cas_server(conn, task.resource_id, None, [op.task_state], vm_state=str(op.end_vm),
                   task_state=None, power_state=int(op.end_power))
        taskq.finish(conn, task)

    @staticmethod
    def _fail_power(conn: Connection, task: Task, reason: str) -> None:
        op = POWER_OPS[task.payload["op"]]
        cas_server(conn, task.resource_id, None, [op.task_state], task_state=None,
                   fault=fault(reason))

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, server_id: str) -> None:
        """Move the server to task_state ``deleting`` and queue its destruction (idempotent)."""
        await self.db.run(self._begin_delete, ctx, server_id)
        self.worker.wake()

    def _begin_delete(self, conn: Connection, ctx: RequestContext, server_id: str) -> None:
        server = self._row(conn, ctx, server_id)
        policy.authorize(ctx, "server:delete", server.project_id)
        _check_unlocked(server)
        result = conn.execute(
            servers.update()
            .where(servers.c.id == server_id,
                   sa.or_(servers.c.task_state.is_(None),
                          servers.c.task_state != TaskState.DELETING.value))
            .values(task_state=TaskState.DELETING.value, updated_at=utcnow()))
        if result.rowcount == 1:
            taskq.enqueue(conn, TaskKind.SERVER_DELETE, server_id, target=server.host)

    async def _run_delete(self, task: Task) -> None:
        server = await self.db.read(_maybe_load, task.resource_id)
        if server is None or server.task_state != TaskState.DELETING:
            await self.db.run(taskq.finish, task)
            return
        await self.pause.at("server.delete")
        # As Nova: the guest goes first (a live unplug would need its cooperation), then
        # whatever connection the driver still holds for it.
        await asyncio.to_thread(self.compute.destroy, server.id)
        await asyncio.to_thread(self._disconnect_all, server.id)
        await self.db.run(self._deleted, task)
        log.info("server %s deleted", server.id)

    def _disconnect_all(self, server_id: str) -> None:
        """Blocking: the driver lets go of every volume it still holds for the server."""
        for volume_id in self.compute.attached_volumes(server_id):
            self.compute.detach_volume(server_id, volume_id)

    @staticmethod
    def _deleted(conn: Connection, task: Task) -> None:
        _release_volumes(conn, task.resource_id)
        conn.execute(servers.delete().where(servers.c.id == task.resource_id,
                                            servers.c.task_state == TaskState.DELETING.value))
        taskq.finish(conn, task)

    @staticmethod
    def _fail_delete(conn: Connection, task: Task, reason: str) -> None:
        cas_server(conn, task.resource_id, None, [TaskState.DELETING],
                   vm_state=VmState.ERROR.value, task_state=None, fault=fault(reason))


# --- helpers --------------------------------------------------------------------------------


def _maybe_load(conn: Connection, server_id: str) -> Server | None:
    row = conn.execute(sa.select(servers).where(servers.c.id == server_id)).first()
    if row is None:
        return None
    server = Server.from_row(row)
    _complete(conn, [server])
    return server


def _complete(conn: Connection, found: list[Server]) -> None:
    """Attach each server's flavor and live volume attachments (two queries for the page)."""
    if not found:
        return
    by_flavor = flavors_by_id(conn, {s.flavor_id for s in found})
    rows = conn.execute(
        sa.select(volume_attachments.c.server_id, volume_attachments.c.volume_id,
                  volume_attachments.c.delete_on_termination)
        .where(volume_attachments.c.server_id.in_([s.id for s in found]),
               volume_attachments.c.status.in_([AttachmentStatus.ATTACHED,
                                                AttachmentStatus.DETACHING]))
        .order_by(volume_attachments.c.created_at, volume_attachments.c.id))
    attached: dict[str, list[tuple[str, bool]]] = {}
    for row in rows:
        attached.setdefault(row.server_id, []).append(
            (row.volume_id, bool(row.delete_on_termination)))
    for server in found:
        server.flavor = by_flavor.get(server.flavor_id)
        server.volumes = attached.get(server.id, [])


def _after_marker(conn: Connection, project: str | None, marker: str) -> sa.ColumnElement[bool]:
    query = sa.select(servers.c.created_at, servers.c.id).where(servers.c.id == marker)
    if project is not None:
        query = query.where(servers.c.project_id == project)
    row = conn.execute(query).first()
    if row is None:
        raise Invalid(f"marker [{marker}] not found")
    return sa.or_(servers.c.created_at < row.created_at,
                  sa.and_(servers.c.created_at == row.created_at, servers.c.id < row.id))


def _device_name(wanted: str | None, used: set[str]) -> str:
    """A requested name if it is a valid free one, else the next free (as libvirt renames)."""
    if wanted and DEVICE_RE.match(wanted) and wanted not in used:
        return wanted
    return next_device(used)


def _boot_image(conn: Connection, server: Server,
                mapped: list[Attachment]) -> BootImage | None:
    """What the driver boots: the root volume's image if it has a root volume, else the
    server's image (``None``: the driver's built-in guest)."""
    root = next((att.volume_id for att in mapped if att.device == ROOT_DEVICE), None)
    root_image = None
    if root is not None:
        root_image = conn.execute(sa.select(volumes.c.image_metadata).where(
            volumes.c.id == root)).scalar() or {}
    return image_boot.boot_image(conn, server.image_ref, root_image)


def _visible_volume(conn: Connection, ctx: RequestContext, device: BlockDevice) -> str:
    row = conn.execute(sa.select(volumes.c.id, volumes.c.project_id).where(
        volumes.c.id == device.uuid)).first()
    if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
        if device.is_root:
            raise Invalid(f"Block Device Mapping is Invalid: failed to get volume "
                          f"{device.uuid}.")
        raise NotFound(f"Volume {device.uuid} could not be found.")  # Nova: VolumeNotFound
    return row.id


def _snapshot_size(conn: Connection, ctx: RequestContext, device: BlockDevice) -> int:
    row = conn.execute(sa.select(snapshots.c.size, snapshots.c.project_id).where(
        snapshots.c.id == device.uuid)).first()
    if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise _snapshot_not_found(device)
    return row.size


def _snapshot_not_found(device: BlockDevice) -> Invalid:
    # Nova looks the root's snapshot up first (SnapshotNotFound), the others in _validate_bdm.
    if device.is_root:
        return Invalid(f"Snapshot {device.uuid} could not be found.")
    return Invalid(f"Block Device Mapping is Invalid: failed to get snapshot {device.uuid}.")


def _check_root_device(conn: Connection, ctx: RequestContext,
                       devices: list[BlockDevice]) -> None:
    """Nova reads the root mapping's volume or snapshot before anything else."""
    for device in devices:
        if device.is_root and device.source_type == "volume":
            _visible_volume(conn, ctx, device)
        elif device.is_root and device.source_type == "snapshot":
            _snapshot_size(conn, ctx, device)


def _claim_mapped_volumes(conn: Connection,
                          server_id: str) -> tuple[bool, list[tuple[Attachment, Stored]] | None]:
    """(still building?, the server's mapped volumes once every one is claimed, else None).

    New volumes move available → attaching here; one that ended in any other status (an
    error while creating, or deleted meanwhile) fails the build. Claimed volumes then wait for
    their backend to make the connection for this server's host.
    """
    state = conn.execute(sa.select(servers.c.vm_state, servers.c.task_state,
                                   servers.c.host).where(servers.c.id == server_id)).first()
    if state is None or (state.vm_state, state.task_state) != (VmState.BUILDING,
                                                               TaskState.SPAWNING):
        return False, None
    rows = conn.execute(
        sa.select(volume_attachments, volumes.c.status.label("volume_status"),
                  volumes.c.backend, volumes.c.provider_location)
        .join(volumes, volumes.c.id == volume_attachments.c.volume_id)
        .where(volume_attachments.c.server_id == server_id,
               volume_attachments.c.status == AttachmentStatus.ATTACHING)
        .order_by(volume_attachments.c.created_at, volume_attachments.c.id)).all()
    mapped: list[tuple[Attachment, Stored]] = []
    waiting = False
    for row in rows:
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


def _check_unlocked(server: Server) -> None:
    if server.locked:
        raise Conflict(f"Instance {server.id} is locked")


def _invalid_state(action: str, server: Server, allowed_vm: tuple[str, ...]) -> Conflict:
    """Nova's message for InstanceInvalidState: vm_state is checked before task_state."""
    attr, state = (("vm_state", server.vm_state) if server.vm_state not in allowed_vm
                   else ("task_state", server.task_state))
    return Conflict(f"Cannot '{action}' instance {server.id} while it is in {attr} {state}")


def _release_volumes(conn: Connection, server_id: str) -> None:
    """The server is gone: drop its attachments; volumes become available, or are deleted."""
    rows = conn.execute(sa.select(volume_attachments.c.id, volume_attachments.c.volume_id,
                                  volume_attachments.c.delete_on_termination,
                                  volume_attachments.c.connection_info)
                        .where(volume_attachments.c.server_id == server_id)).all()
    conn.execute(volume_attachments.delete().where(volume_attachments.c.server_id == server_id))
    for row in rows:  # exports made for the server's host end with it
        release_connection(conn, row)
    busy = (VolumeStatus.IN_USE, VolumeStatus.ATTACHING, VolumeStatus.DETACHING,
            VolumeStatus.RESERVED)
    for row in rows:
        still_held = conn.execute(sa.select(sa.func.count()).where(
            volume_attachments.c.volume_id == row.volume_id)).scalar_one()
        if still_held:
            continue
        if row.delete_on_termination and move(conn, VOLUME, row.volume_id, busy,
                                              VolumeStatus.DELETING):
            backend = conn.execute(sa.select(volumes.c.backend).where(
                volumes.c.id == row.volume_id)).scalar_one()
            taskq.enqueue(conn, TaskKind.VOLUME_DELETE, row.volume_id, target=backend)
        else:
            move(conn, VOLUME, row.volume_id, busy, VolumeStatus.AVAILABLE)


# --- list filters ---------------------------------------------------------------------------

Predicate = Callable[[Server], bool]


def _parse_time(name: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise Invalid(f"Invalid input for query parameters {name}. Value: {value}. "
                      f"'{value}' is not a 'date-time'") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _regex(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error:
        return re.compile(re.escape(value))


def _csv(value: str) -> set[str]:
    return {item for item in value.split(",") if item}


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "t", "yes", "y", "on"}


def _status_predicate(value: str, strict: bool) -> Predicate | None:
    vm_states: set[str] = set()
    task_states: set[str] = set()
    for status in _csv(value):
        found_vm, found_task = states_for_status(status)
        vm_states |= found_vm
        task_states |= found_task
    if not vm_states:
        if strict:
            raise Invalid("Invalid status value")
        return None
    any_task = DEFAULT in task_states
    return lambda s: s.vm_state in vm_states and (any_task or s.task_state in task_states)


def _time_predicates(filters: dict[str, str]) -> list[Predicate]:
    out: list[Predicate] = []
    if "changes-since" in filters:
        since = _parse_time("changes-since", filters["changes-since"])
        out.append(lambda s: (s.updated_at or s.created_at) >= since)
    if "changes-before" in filters:
        before = _parse_time("changes-before", filters["changes-before"])
        out.append(lambda s: (s.updated_at or s.created_at) <= before)
    return out


def _tag_predicates(filters: dict[str, str]) -> list[Predicate]:
    out: list[Predicate] = []
    if "tags" in filters:
        wanted = _csv(filters["tags"])
        out.append(lambda s: wanted <= set(s.tags or []))
    if "tags-any" in filters:
        any_of = _csv(filters["tags-any"])
        out.append(lambda s: bool(any_of & set(s.tags or [])))
    if "not-tags" in filters:
        not_all = _csv(filters["not-tags"])
        out.append(lambda s: not not_all <= set(s.tags or []))
    if "not-tags-any" in filters:
        none_of = _csv(filters["not-tags-any"])
        out.append(lambda s: not none_of & set(s.tags or []))
    return out


# filter name → server attribute compared for equality (as text).
_EQUAL = {
    "reservation_id": "reservation_id", "image": "image_ref", "image_ref": "image_ref",
    "flavor": "flavor_id", "availability_zone": "availability_zone", "key_name": "key_name",
    "user_id": "user_id", "vm_state": "vm_state", "task_state": "task_state",
    "power_state": "power_state", "host": "host", "node": "node", "uuid": "id",
    "hostname": "hostname", "config_drive": "config_drive",
}


def _matcher(filters: dict[str, str], strict_status: bool) -> Predicate | None:
    """One predicate for every filter; ``None`` when nothing can match."""
    checks: list[Predicate] = []
    for key, version in (("ip", 4), ("ip6", 6)):
        if key in filters:
            checks.append(_address_predicate(_regex(filters[key]), version))
    name = filters.get("name", filters.get("display_name"))
    if name:
        pattern = _regex(name)
        checks.append(lambda s: bool(pattern.search(s.name)))
    if "status" in filters:
        status = _status_predicate(filters["status"], strict_status)
        if status is None:
            return None
        checks.append(status)
    if "locked" in filters:
        locked = _bool(filters["locked"])
        checks.append(lambda s: bool(s.locked) == locked)
    for key, attr in _EQUAL.items():
        if key in filters:
            checks.append(_equal(attr, filters[key]))
    checks += _time_predicates(filters) + _tag_predicates(filters)
    return lambda s: all(check(s) for check in checks)


def _equal(attr: str, value: str) -> Predicate:
    return lambda s: str(getattr(s, attr) or "") == value


def _address_predicate(pattern: re.Pattern[str], version: int) -> Predicate:
    return lambda s: any(pattern.search(a["addr"]) for net in s.addresses.values()
                         for a in net if a["version"] == version)
