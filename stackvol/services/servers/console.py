"""Console output: the tail of a server's console log, as the compute driver keeps it."""

from __future__ import annotations

import asyncio
import re

from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, NotFound
from stackvol.services.common.status import VmState
from stackvol.services.servers.api import ServerService
from stackvol.virt.base import ComputeError

# Control characters Nova strips from the log: all but tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


class ConsoleNotSupported(Exception):
    """The compute driver keeps no console log (Nova answers 501)."""


async def console_output(servers: ServerService, ctx: RequestContext, server_id: str,
                         length: int | None) -> str:
    """The last ``length`` lines of the console (all of it for ``None`` or -1)."""
    server = await servers.get(ctx, server_id)
    policy.authorize(ctx, "server:action", server.project_id)
    if server.vm_state == VmState.BUILDING:
        raise Conflict(f"Instance {server_id} is not ready")
    try:
        text = await asyncio.to_thread(servers.compute.console_output, server_id)
    except NotImplementedError:
        raise ConsoleNotSupported() from None
    except ComputeError as exc:  # gone from the hypervisor between the read and now
        raise NotFound(f"Guest does not have a console available: {exc}") from None
    text = _CONTROL.sub("", text)
    if length is None or length < 0:
        return text
    return "\n".join(text.split("\n")[-length:]) if length else ""
