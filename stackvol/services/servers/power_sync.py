"""Power-state sync: the database learns what the hypervisor did without being asked.

A real guest can power itself off, and its QEMU can die. As Nova's ``_sync_power_states`` and
lifecycle-event handling do, every few seconds each idle server of this host is compared with
its driver's power state:

* the power state is recorded as the driver reports it;
* an ``active`` server that is shut off or crashed becomes ``stopped`` (``SHUTOFF``);
* an ``active`` server the hypervisor no longer has becomes ``error``, with a fault saying so.

A server with a task in progress is left to its task, and every write is a compare-and-swap on
the row as it was read before the driver was asked (its ``updated_at`` included), so a request
that changed the server meanwhile always wins. Drivers whose servers cannot change on their own
(``power_sync_seconds`` 0, as the simulated one) are never polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from stackvol.db.engine import Database
from stackvol.services.common.status import VmState
from stackvol.services.servers import queries as q
from stackvol.services.servers.records import fault
from stackvol.virt.base import ComputeDriver, PowerState

log = logging.getLogger(__name__)

_OFF = (PowerState.SHUTDOWN, PowerState.CRASHED)


def _changes(row: Any, power: PowerState) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if row.power_state != int(power):
        values["power_state"] = int(power)
    if row.vm_state == VmState.ACTIVE and power in _OFF:
        values["vm_state"] = VmState.STOPPED.value
    elif row.vm_state == VmState.ACTIVE and power == PowerState.NOSTATE:
        values["vm_state"] = VmState.ERROR.value
        values["fault"] = fault(f"Server {row.id} is no longer on its hypervisor")
    return values


async def sync_power_states(db: Database, compute: ComputeDriver) -> int:
    """One pass over this host's idle servers; how many rows it corrected."""
    changed = 0
    for row in await db.read(q.idle_on_host, compute.host):
        power = await asyncio.to_thread(compute.power_state, row.id)
        values = _changes(row, power)
        if not values or not await db.run(q.update_if_unchanged, row, values):
            continue
        changed += 1
        level = logging.WARNING if "vm_state" in values else logging.INFO
        log.log(level, "server %s: the hypervisor reports %s; recorded %s", row.id,
                power.name, values.get("vm_state", "the power state"))
    return changed


async def _loop(db: Database, compute: ComputeDriver) -> None:
    while True:
        try:
            await sync_power_states(db, compute)
        except Exception:  # a hiccup (database busy, hypervisor restarting): try again later
            log.exception("power-state sync failed")
        await asyncio.sleep(compute.power_sync_seconds)


def start(db: Database, compute: ComputeDriver) -> asyncio.Task[None] | None:
    """The background sync for drivers that need one (``None`` for the others)."""
    if compute.power_sync_seconds <= 0:
        return None
    return asyncio.create_task(_loop(db, compute), name="power-sync")


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
