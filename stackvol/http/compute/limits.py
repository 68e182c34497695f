"""``/limits``: the caller's project's absolute compute limits and usage (an admin may name
another project with ``?tenant_id=``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context, version
from stackvol.http.compute.common import reject_unknown_query
from stackvol.http.compute.views import limits as views
from stackvol.http.responses import json_response
from stackvol.http.state import services


async def index(request: Request) -> Response:
    reject_unknown_query(request, ("tenant_id",))
    ctx = context(request)
    project_id = request.query_params.get("tenant_id") or ctx.project_id
    quota, in_use = await services(request).quotas.compute_limits(ctx, project_id)
    return json_response(views.limits(version(request), quota, in_use))


routes = [Route("/limits", index, methods=["GET"])]
