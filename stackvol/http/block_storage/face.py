"""The Block Storage v3 face (``/volume``, Cinder-compatible): version documents, the project
id in the path (optional, as Cinder accepts from 3.67), microversions, authentication, routes."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.block_storage import (
    actions,
    attachments,
    capabilities,
    extensions,
    hosts,
    limits,
    qos_specs,
    quota_classes,
    quotas,
    service_actions,
    services_api,
    snapshots,
    transfers,
    types,
    volumes,
)
from stackvol.http.block_storage.versions import VOLUME_VERSIONS, versions_document
from stackvol.http.face import Face, base_url, path_segments, project_prefix
from stackvol.http.faults import COMPUTE_CODES, Fault, compute_fault_response
from stackvol.http.microversion import APIVersion
from stackvol.http.middleware import add_response_headers
from stackvol.http.responses import json_response
from stackvol.services.common import errors

VERSION_PREFIX = "v3"
ROUTES: list[Route] = [
    *volumes.routes,
    *actions.routes,
    *snapshots.routes,
    *attachments.routes,
    *types.routes,
    *quotas.routes,
    *limits.routes,
    *services_api.routes,
    *service_actions.routes,
    *hosts.routes,
    *capabilities.routes,
    *qos_specs.routes,
    *quota_classes.routes,
    *extensions.routes,
    *transfers.routes,
]
# First path segments that are collections, never a project id.
TOP_LEVEL = {route.path.strip("/").split("/")[0] for route in ROUTES}
# How service errors read on Cinder: quotas are 413 (with Retry-After, added below).
CINDER_CODES: dict[type[errors.ServiceError], int] = {**COMPUTE_CODES, errors.OverQuota: 413}


class VolumeFace(Face):
    """ASGI app for everything below ``/volume``."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__(authenticator, ROUTES, compute_fault_response, CINDER_CODES)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = path_segments(scope)
        if not parts:
            await json_response(versions_document(base_url(scope)), 300)(scope, receive, send)
            return
        if parts[0] != VERSION_PREFIX:
            raise Fault(404)
        await self._api(scope, receive, send, parts[1:])

    async def _api(self, scope: Scope, receive: Receive, send: Send, segments: list[str]) -> None:
        headers = Headers(scope=scope)
        api_version = VOLUME_VERSIONS.negotiate(headers)
        add_response_headers(scope, VOLUME_VERSIONS.response_headers(api_version))
        try:
            await self._route(scope, receive, send, segments, headers, api_version)
        except errors.OverQuota as exc:
            raise Fault(413, exc.message, {"Retry-After": "0"}) from None

    async def _route(self, scope: Scope, receive: Receive, send: Send, segments: list[str],
                     headers: Headers, api_version: APIVersion) -> None:
        root = f"{scope.get('root_path', '')}/{VERSION_PREFIX}"
        if not segments or (len(segments) == 1 and segments[0] not in TOP_LEVEL):
            # /v3/ (and /v3/{project_id}, where discovery may look) describe the version.
            await json_response(versions_document(base_url(scope)))(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        ctx = await self.authenticator.context(headers, state.get("request_id"))
        project_id = project_prefix(segments, TOP_LEVEL, ctx.project_id,
                                    lambda: Fault(400, "Malformed request url"))
        if project_id is not None:
            root = f"{root}/{project_id}"
        state["context"] = ctx
        state["api_version"] = api_version
        await self._to_routes(scope, receive, send, root)
