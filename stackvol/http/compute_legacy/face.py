"""The Compute API 1.1 face: ``/v1.1/{tenant_id}/...`` and ``/v2/{tenant_id}/...`` (at the root
and below ``/compute``), in JSON and XML, on the same services as ``/v2.1``; and ``/v1.0``,
the legacy sign-in.

No microversions here: every v2.1 helper runs at 2.1. The tenant in the path must be the
token's project (400, as Essex to Juno answered); an administrator may name any tenant and
then acts in it, as Diablo let every caller do.
"""

from __future__ import annotations

import dataclasses

from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stackvol.http.auth import Authenticator
from stackvol.http.compute_legacy import (
    auth,
    extensions,
    flavors,
    servers,
    snapshots,
    versions,
    volume_attachments,
    volumes,
)
from stackvol.http.compute_legacy.common import V2_1
from stackvol.http.compute_legacy.negotiation import negotiate
from stackvol.http.compute_legacy.rendering import fault_response
from stackvol.http.face import Face, base_url
from stackvol.http.faults import Fault

PREFIXES = ("/v1.0", "/v1.1", "/v2")
ROUTES: list[Route] = [
    *extensions.routes,
    *volumes.routes,
    *snapshots.routes,
    *volume_attachments.routes,
    *servers.routes,
    *flavors.routes,
]


class LegacyFace(Face):
    """ASGI app mounted at each of ``PREFIXES`` (the prefix is the end of ``root_path``)."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__(authenticator, ROUTES, fault_response)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        root: str = scope.get("root_path", "")
        mount, _, api = root.rpartition("/")
        rest = negotiate(scope, scope["path"][len(root):])
        headers = Headers(scope=scope)
        if api == "v1.0":
            if rest.strip("/"):
                raise Fault(404)
            response = await auth.sign_in(self.authenticator.identity, headers,
                                          base_url(scope, mount))
            await response(scope, receive, send)
            return
        tenant, _, tail = rest.strip("/").partition("/")
        if not tenant:
            await versions.document(api, base_url(scope, mount))(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        ctx = await self.authenticator.context(headers, state.get("request_id"))
        if tenant != ctx.project_id:
            if not ctx.is_admin:
                raise Fault(400, f"Malformed request URL: URL's project_id '{tenant}' doesn't "
                                 f"match Context's project_id '{ctx.project_id}'")
            ctx = dataclasses.replace(ctx, project_id=tenant)
        state.update(context=ctx, api_version=V2_1, legacy_api=api)
        project_root = f"{root}/{tenant}"
        path = f"{project_root}/{tail}".rstrip("/")
        await self.router({**scope, "root_path": project_root, "path": path}, receive, send)
