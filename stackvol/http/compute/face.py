"""The Compute API face (``/compute/v2.1`` and ``/v2.1``): version documents, the optional
project id in the path, microversion negotiation, authentication, then the resource routes."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.compute import (
    extensions,
    flavors,
    images,
    keypairs,
    limits,
    quota_sets,
    servers,
    services_api,
    snapshots,
    volume_attachments,
    volumes,
    volumes_boot,
)
from stackvol.http.compute.versions import COMPUTE_VERSIONS, version_document, versions_document
from stackvol.http.face import Face, base_url, path_segments, project_prefix
from stackvol.http.faults import Fault, compute_fault_response
from stackvol.http.middleware import add_response_headers
from stackvol.http.responses import json_response

VERSION_PREFIX = "v2.1"

# First path segments that are collections, never a project id (Nova accepts both forms).
ROUTES: list[Route] = [
    *extensions.routes,
    *volumes.routes,
    *snapshots.routes,
    *volume_attachments.routes,
    *servers.routes,
    *volumes_boot.routes,
    *flavors.routes,
    *images.routes,
    *quota_sets.routes,
    *services_api.routes,
    *limits.routes,
    *keypairs.routes,
]
TOP_LEVEL = {route.path.strip("/").split("/")[0] for route in ROUTES}


class ComputeFace(Face):
    """ASGI app for everything below its mount point (the root, or ``/compute``)."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__(authenticator, ROUTES, compute_fault_response)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = path_segments(scope)
        if not parts:
            await json_response(versions_document(base_url(scope)))(scope, receive, send)
            return
        if parts[0] != VERSION_PREFIX:
            raise Fault(404)
        if len(parts) == 1:
            await json_response(version_document(base_url(scope)))(scope, receive, send)
            return
        await self._api(scope, receive, send, parts[1:])

    async def _api(self, scope: Scope, receive: Receive, send: Send, segments: list[str]) -> None:
        headers = Headers(scope=scope)
        api_version = COMPUTE_VERSIONS.negotiate(headers)
        add_response_headers(scope, COMPUTE_VERSIONS.response_headers(api_version))
        await self._route(scope, receive, send, segments, headers, api_version)

    async def _route(self, scope: Scope, receive: Receive, send: Send, segments: list[str],
                     headers: Headers, api_version: object) -> None:
        state = scope.setdefault("state", {})
        ctx = await self.authenticator.context(headers, state.get("request_id"))
        root = f"{scope.get('root_path', '')}/{VERSION_PREFIX}"
        project_id = project_prefix(segments, TOP_LEVEL, ctx.project_id, lambda: Fault(
            400, f"Malformed request URL: URL's project_id '{segments[0]}' doesn't match "
                 f"Context's project_id '{ctx.project_id}'"))
        if project_id is not None:
            root = f"{root}/{project_id}"
        state["context"] = ctx
        state["api_version"] = api_version
        await self._to_routes(scope, receive, send, root)
