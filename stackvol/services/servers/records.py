"""What a server is, shared by the API side (api.py) and the worker side (manager.py).

A server's ``vm_state`` says what it is (building, active, stopped, error) and its
``task_state`` what is being done to it; the status clients see is read from the pair through
Nova's table. ``POWER_OPS`` names each power action's start states (checked by the request) and
its driver call and end state (applied by the worker), so both halves read one definition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from stackvol.services.common.status import TaskState, VmState
from stackvol.services.flavors.api import Flavor
from stackvol.timeutils import utcnow
from stackvol.virt.base import ComputeDriver, PowerState

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


def fault(message: str, code: int = 500) -> dict[str, Any]:
    """The ``fault`` a server in error shows (Nova truncates the message, keeps the details)."""
    return {"code": code, "message": message[:255], "details": message,
            "created": utcnow().isoformat()}


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
