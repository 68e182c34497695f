"""Servers, the API side: what a request does before it answers.

A server's ``vm_state`` says what it is (building, active, stopped, error) and its ``task_state``
what is being done to it (spawning, powering-off, rebooting, deleting...). Every request moves the
pair with a compare-and-swap committed with the durable task that finishes the work, so two
requests cannot both win, and a crash resumes the work instead of stranding the server. The
worker side of each task is in manager.py, the SQL in queries.py:

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

import builtins
import datetime as dt
import logging
import re
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.attachments.nova_api import DEVICE_RE, AttachmentService, next_device
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Forbidden, Invalid, NotFound
from stackvol.services.common.status import TaskState, VmState
from stackvol.services.flavors.api import load_flavor
from stackvol.services.keypairs.api import check_key_name
from stackvol.services.servers import image_boot, recovery
from stackvol.services.servers import queries as q
from stackvol.services.servers.block_devices import ROOT_DEVICE, BlockDevice, parse
from stackvol.services.servers.filters import matcher
from stackvol.services.servers.manager import ServerManager
from stackvol.services.servers.records import POWER_OPS, PowerOp, Server
from stackvol.services.volumes.api import VolumeService, VolumeSpec
from stackvol.tasks import queue as taskq
from stackvol.tasks.kinds import TaskKind
from stackvol.tasks.worker import PauseHook, Worker
from stackvol.timeutils import utcnow
from stackvol.virt.base import ComputeDriver, PowerState

log = logging.getLogger(__name__)

# Re-exported: the faces and the views read what a server is from here.
__all__ = ["Server", "ServerQuery", "ServerService", "ServerSpec", "Visibility"]


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


def sanitize_hostname(name: str, default: str) -> str:
    """Nova's ``sanitize_hostname``: a DNS label made from the display name."""
    text = re.sub(r"[ _]", "-", name.lower())
    text = re.sub(r"[^\w.-]+", "", text, flags=re.ASCII)
    text = text[:63].strip(".-")
    return text or default


def generate_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))



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
        self.availability_zones = availability_zones
        # The worker side: registers the server.* task handlers with this process's worker.
        self.manager = ServerManager(db, compute, worker, attachments, pause or PauseHook(""),
                                     volume_wait_seconds)

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
        server = q.find(conn, server_id, ctx.visible_project)
        if server is None:
            raise NotFound(f"Instance {server_id} could not be found.")
        return server

    def _load(self, conn: Connection, ctx: RequestContext, server_id: str) -> Server:
        server = self._row(conn, ctx, server_id)
        q.complete(conn, [server])
        return server

    async def get(self, ctx: RequestContext, server_id: str) -> Server:
        server = await self.db.read(self._load, ctx, server_id)
        policy.authorize(ctx, "server:show", server.project_id)
        return server

    async def list(self, ctx: RequestContext, query: ServerQuery) -> builtins.list[Server]:
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
        match = matcher(filters, query.strict_status)
        if match is None:
            return []
        return await self.db.read(self._list, project, query, match)

    @staticmethod
    def _list(conn: Connection, project: str | None, query: ServerQuery,
              match: Callable[[Server], bool]) -> builtins.list[Server]:
        found: builtins.list[Server] = []
        for server in q.newest_first(conn, project, query.marker):
            if match(server):
                found.append(server)
                if len(found) >= query.limit:
                    break
        q.complete(conn, found)
        return found

    # --- create ---------------------------------------------------------------------------

    def _check_spec(self, spec: ServerSpec) -> builtins.list[BlockDevice]:
        """Checks that need no database; the volume-backed block devices of the request."""
        zone = (spec.availability_zone or "").split(":", 1)[0]
        if spec.availability_zone is not None and zone not in self.availability_zones:
            raise Invalid("The requested availability zone is not available")
        devices = parse(spec.block_device_mapping, spec.legacy_block_device_mapping,
                        spec.image_ref)
        if spec.min_count > spec.max_count:
            raise Invalid("min_count must be <= max_count")
        return [d for d in devices if d.is_volume]

    async def create(self, ctx: RequestContext,
                     spec: ServerSpec) -> tuple[builtins.list[Server], str]:
        """Record the server(s) as building and queue their spawning; answer at once."""
        policy.authorize(ctx, "server:create", ctx.project_id)
        devices = self._check_spec(spec)
        created = await self.db.run(self._insert, ctx, spec, devices)
        self.worker.wake()
        log.info("server(s) %s building", ", ".join(s.id for s in created))
        return created, spec.admin_pass or generate_password()

    def _insert(self, conn: Connection, ctx: RequestContext, spec: ServerSpec,
                devices: builtins.list[BlockDevice]) -> builtins.list[Server]:
        try:
            flavor = load_flavor(conn, spec.flavor_id)
        except NotFound as exc:
            raise Invalid(exc.message) from None
        _check_root_device(conn, ctx, devices)
        check_key_name(conn, ctx.user_id, spec.key_name)
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
        created: builtins.list[Server] = []
        for index in range(count):
            server_id = str(uuid.uuid4())
            name = spec.name if count == 1 else f"{spec.name}-{index + 1}"
            values = self._row_values(ctx, spec, server_id, name, now)
            values["reservation_id"] = reservation
            values["host"] = values["node"] = host
            if any(d.is_root for d in devices):
                values["root_device_name"] = ROOT_DEVICE
            q.insert(conn, values)
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
                     devices: builtins.list[BlockDevice]) -> None:
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
            q.update(conn, server_id, values)
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
        if not q.cas_state(conn, server_id, op.from_vm, op.from_task, task_state=op.task_state):
            current = self._row(conn, ctx, server_id)
            raise _invalid_state(op.action, current, op.from_vm)
        taskq.enqueue(conn, TaskKind.SERVER_POWER, server_id, {"op": op_name}, target=server.host)

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, server_id: str) -> None:
        """Move the server to task_state ``deleting`` and queue its destruction (idempotent)."""
        await self.db.run(self._begin_delete, ctx, server_id)
        self.worker.wake()

    def _begin_delete(self, conn: Connection, ctx: RequestContext, server_id: str) -> None:
        server = self._row(conn, ctx, server_id)
        policy.authorize(ctx, "server:delete", server.project_id)
        _check_unlocked(server)
        if q.mark_deleting(conn, server_id):
            taskq.enqueue(conn, TaskKind.SERVER_DELETE, server_id, target=server.host)


# --- helpers --------------------------------------------------------------------------------


def _device_name(wanted: str | None, used: set[str]) -> str:
    """A requested name if it is a valid free one, else the next free (as libvirt renames)."""
    if wanted and DEVICE_RE.match(wanted) and wanted not in used:
        return wanted
    return next_device(used)


def _visible_volume(conn: Connection, ctx: RequestContext, device: BlockDevice) -> str:
    row = q.volume_owner(conn, device.uuid) if device.uuid else None
    if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
        if device.is_root:
            raise Invalid(f"Block Device Mapping is Invalid: failed to get volume "
                          f"{device.uuid}.")
        raise NotFound(f"Volume {device.uuid} could not be found.")  # Nova: VolumeNotFound
    return row.id


def _snapshot_size(conn: Connection, ctx: RequestContext, device: BlockDevice) -> int:
    row = q.snapshot_owner(conn, device.uuid) if device.uuid else None
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


def _check_unlocked(server: Server) -> None:
    if server.locked:
        raise Conflict(f"Instance {server.id} is locked")


def _invalid_state(action: str, server: Server, allowed_vm: tuple[str, ...]) -> Conflict:
    """Nova's message for InstanceInvalidState: vm_state is checked before task_state."""
    attr, state = (("vm_state", server.vm_state) if server.vm_state not in allowed_vm
                   else ("task_state", server.task_state))
    return Conflict(f"Cannot '{action}' instance {server.id} while it is in {attr} {state}")
