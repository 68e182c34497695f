"""``POST /volumes/{id}/action``: extend, reset status, force delete, force detach, bootable,
read-only flag, retype, and the attach and connection actions hypervisor managers call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage import upload_image
from stackvol.http.block_storage.common import at_least
from stackvol.http.block_storage.schemas.actions import SCHEMAS
from stackvol.http.common import CINDER_BOOL, context, parse_bool
from stackvol.http.faults import Fault
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_action
from stackvol.services.common.status import VolumeStatus

Action = Callable[[Request, str, dict[str, Any]], Awaitable[Response]]


async def _extend(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    await services(request).volumes.extend(context(request), volume_id, int(args["new_size"]),
                                           allow_in_use=at_least(request, "3.42"))
    return empty_response(202)


async def _reset_status(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    await services(request).volumes.reset_status(context(request), volume_id,
                                                 args.get("status"), args.get("attach_status"),
                                                 args.get("migration_status"))
    return empty_response(202)


async def _force_delete(request: Request, volume_id: str, _args: dict[str, Any]) -> Response:
    await services(request).volumes.delete(context(request), volume_id, force=True)
    return empty_response(202)


async def _force_detach(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    # As Cinder: the connector's connection ends first (os-initialize_connection's), then the
    # attachment, unplugged from its server by the compute driver when one of ours holds it.
    connector = args.get("connector")
    if isinstance(connector, dict) and connector.get("host"):
        await services(request).volume_attach.action(context(request), volume_id,
                                                     "terminate_connection",
                                                     connector=connector)
    await services(request).attachments.force_detach(context(request), volume_id,
                                                     args.get("attachment_id"))
    return empty_response(202)


async def _update_readonly_flag(request: Request, volume_id: str,
                                args: dict[str, Any]) -> Response:
    readonly = parse_bool(args["readonly"], CINDER_BOOL, "readonly")
    await services(request).volumes.update_readonly_flag(context(request), volume_id, readonly)
    return empty_response(202)


async def _set_bootable(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    bootable = parse_bool(args["bootable"], CINDER_BOOL, "bootable")
    await services(request).volumes.set_bootable(context(request), volume_id, bootable)
    return empty_response(200)


async def _retype(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    await services(request).retype.retype(context(request), volume_id, args["new_type"],
                                          args.get("migration_policy"))
    return empty_response(202)


async def _extend_completion(request: Request, volume_id: str,
                             _args: dict[str, Any]) -> Response:
    # Extends finish on their own here (no hypervisor to wait for): only say whether one runs.
    vol = await services(request).volumes.get(context(request), volume_id)
    if vol.status != VolumeStatus.EXTENDING:
        raise Fault(400, f"Invalid volume: Volume {volume_id} is not being extended (status "
                         f"{vol.status}).")
    return empty_response(202)


async def _reimage(_request: Request, _volume_id: str, _args: dict[str, Any]) -> Response:
    raise Fault(400, "Invalid input received: Re-imaging a volume needs the Image service, "
                     "which this cloud does not have.")


def _attach_action(name: str, status: int = 202,
                   wrap: str | None = None) -> Action:
    """An action of the attachment service; ``wrap`` names the key its result is sent under."""

    async def run(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
        result = await services(request).volume_attach.action(context(request), volume_id,
                                                              name, **args)
        return json_response({wrap: result}, status) if wrap else empty_response(status)

    return run


def _attach_args(args: dict[str, Any]) -> dict[str, Any]:
    return {"instance_uuid": args.get("instance_uuid"), "mountpoint": args.get("mountpoint"),
            "host_name": args.get("host_name"), "mode": args.get("mode", "rw")}


async def _attach(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    return await _attach_action("attach")(request, volume_id, _attach_args(args))


async def _detach(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    return await _attach_action("detach")(request, volume_id,
                                          {"attachment_id": args.get("attachment_id")})


async def _initialize(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    return await _attach_action("initialize_connection", 200, "connection_info")(
        request, volume_id, {"connector": args["connector"]})


async def _terminate(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    connector = args["connector"] if isinstance(args.get("connector"), dict) else {}
    return await _attach_action("terminate_connection")(request, volume_id,
                                                        {"connector": connector})


async def _set_image_metadata(request: Request, volume_id: str,
                              args: dict[str, Any]) -> Response:
    found = await services(request).volumes.change_image_metadata(
        context(request), volume_id, add={k: str(v) for k, v in args["metadata"].items()})
    return json_response({"metadata": found})


async def _unset_image_metadata(request: Request, volume_id: str,
                                args: dict[str, Any]) -> Response:
    await services(request).volumes.change_image_metadata(context(request), volume_id,
                                                          remove=args["key"])
    return empty_response(200)


async def _show_image_metadata(request: Request, volume_id: str,
                               _args: dict[str, Any]) -> Response:
    volume = await services(request).volumes.get(context(request), volume_id)
    return json_response({"metadata": dict(volume.image_metadata or {})})


ACTIONS: dict[str, Action] = {
    "os-extend": _extend,
    "os-reset_status": _reset_status,
    "os-force_delete": _force_delete,
    "os-force_detach": _force_detach,
    "os-update_readonly_flag": _update_readonly_flag,
    "os-set_bootable": _set_bootable,
    "os-retype": _retype,
    "os-attach": _attach,
    "os-detach": _detach,
    "os-reserve": _attach_action("reserve"),
    "os-unreserve": _attach_action("unreserve"),
    "os-begin_detaching": _attach_action("begin_detaching"),
    "os-roll_detaching": _attach_action("roll_detaching"),
    "os-initialize_connection": _initialize,
    "os-terminate_connection": _terminate,
    "os-extend_volume_completion": _extend_completion,
    "os-reimage": _reimage,
    upload_image.ACTION: upload_image.upload_image,
    "os-set_image_metadata": _set_image_metadata,
    "os-unset_image_metadata": _unset_image_metadata,
    "os-show_image_metadata": _show_image_metadata,
}
# Actions that appeared with a microversion.
SINCE = {"os-extend_volume_completion": "3.71", "os-reimage": "3.68"}


async def action(request: Request) -> Response:
    name, body = await read_action(request)
    handler = ACTIONS.get(name)
    if handler is None or (name in SINCE and not at_least(request, SINCE[name])):
        raise Fault(400, f"There is no such action: {name}")
    if name in SCHEMAS:
        SCHEMAS[name].validate(body)
    return await handler(request, request.path_params["volume_id"], body[name] or {})


routes = [Route("/volumes/{volume_id}/action", action, methods=["POST"])]
