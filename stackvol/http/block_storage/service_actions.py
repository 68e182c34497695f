"""``PUT /os-services/{action}`` (admins): enable, disable (with a reason), freeze and thaw a
Cinder service, as Cinder's os-services update answers them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context
from stackvol.http.faults import Fault
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json
from stackvol.services.common.errors import Invalid, NotFound

REASON_MAX = 255


def _host(body: dict[str, Any]) -> str:
    host = body.get("host")
    if not host or not isinstance(host, str):
        raise Fault(400, "Missing required element 'host' in request body.")
    return host


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise Fault(400, "Malformed request body")
    return body


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("disabled_reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX:
        raise Fault(400, "Disabled reason contains invalid characters or is too long")
    return reason


async def _set_disabled(request: Request, body: dict[str, Any], action: str) -> Response:
    host = _host(body)
    service, binary = body.get("service") or "", body.get("binary") or ""
    if not (binary or service):
        raise Fault(400, "Missing required element 'binary' in request body.")
    disabled = action != "enable"
    reason = _reason(body) if action == "disable-log-reason" else None
    await services(request).cinder_services.set_disabled(
        context(request), host, binary or service, disabled, reason)
    answer: dict[str, Any] = {"disabled": disabled, "status": "disabled" if disabled else
                              "enabled", "host": host, "service": service, "binary": binary}
    if action != "disable":  # Cinder's extended services add the reason (None on enable)
        answer["disabled_reason"] = reason
    return json_response(answer)


async def _freeze(request: Request, body: dict[str, Any], frozen: bool) -> Response:
    try:
        await services(request).cinder_services.freeze(context(request), _host(body), frozen)
    except NotFound as exc:  # Cinder: an unknown host is invalid input here
        raise Invalid(f"Invalid input received: {exc.message}") from None
    return Response(status_code=200)


async def update(request: Request) -> Response:
    action = request.path_params["action"]
    body = await _body(request)
    if action in ("enable", "disable", "disable-log-reason"):
        return await _set_disabled(request, body, action)
    if action in ("freeze", "thaw"):
        return await _freeze(request, body, action == "freeze")
    raise Fault(400, "Invalid input received: Unknown action")


routes = [Route("/os-services/{action}", update, methods=["PUT"])]
