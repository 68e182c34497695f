"""``/healthcheck`` on every process, whatever its role: 200 while it can do its job, else 503.

A load balancer probes API processes with it; an operator probes workers. The body is small
JSON: role, name, host (and backend), database reachability, running tasks, last heartbeat.
A process without the API faces (a worker) answers nothing else: 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from stackvol.http.responses import json_response
from stackvol.tasks.roles import health

if TYPE_CHECKING:
    from stackvol.services.container import Services

PATH = "/healthcheck"


async def healthcheck(scope: Scope, receive: Receive, send: Send) -> None:
    found: Services = scope["app"].state.services
    ok, report = await health(found.db, found.role, found.worker, found.heartbeat)
    await json_response(report, 200 if ok else 503)(scope, receive, send)


async def not_served(scope: Scope, receive: Receive, send: Send) -> None:
    role = scope["app"].state.services.role.role
    body = {"itemNotFound": {"code": 404,
                             "message": f"a {role} process serves only {PATH}"}}
    await json_response(body, 404)(scope, receive, send)
