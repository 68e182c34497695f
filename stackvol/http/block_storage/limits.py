"""``/limits``: the caller's absolute limits and what it uses of them (no rate limits)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.block_storage.common import at_least
from stackvol.http.common import context
from stackvol.http.responses import json_response
from stackvol.http.state import services

LIMIT_NAMES = {"volumes": "maxTotalVolumes", "snapshots": "maxTotalSnapshots",
               "gigabytes": "maxTotalVolumeGigabytes", "backups": "maxTotalBackups",
               "backup_gigabytes": "maxTotalBackupGigabytes"}
USED_NAMES = {"volumes": "totalVolumesUsed", "snapshots": "totalSnapshotsUsed",
              "gigabytes": "totalGigabytesUsed", "backups": "totalBackupsUsed",
              "backup_gigabytes": "totalBackupGigabytesUsed"}


async def index(request: Request) -> Response:
    ctx = context(request)
    project = ctx.project_id
    if ctx.is_admin and at_least(request, "3.39"):
        project = request.query_params.get("project_id") or project
    quota = services(request).quotas
    limits = await quota.limits(ctx, project)
    usage = await quota.usage(ctx, project)
    absolute = {LIMIT_NAMES[k]: limits[k] for k in LIMIT_NAMES}
    absolute.update({USED_NAMES[k]: usage.get(k) for k in USED_NAMES})
    return json_response({"limits": {"rate": [], "absolute": absolute}})


routes = [Route("/limits", index, methods=["GET"])]
