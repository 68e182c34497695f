"""JSON views of the legacy paths: today's views at microversion 2.1, with the differences of
the 2011-2014 API (the Essex ``createdAt``, version-less bookmark links, the create answer)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request

from stackvol.http.compute.common import base_url
from stackvol.http.compute.views import snapshots as snapshot_views
from stackvol.http.compute.views import volume_attachments as attachment_views
from stackvol.http.compute.views import volumes as volume_views
from stackvol.http.microversion import v
from stackvol.services.common.records import Attachment, Snapshot, Volume

V2_1 = v("2.1")


def essex_time(value: dt.datetime | None) -> str | None:
    """``str(datetime)``: ``2012-03-01 12:00:00``, microseconds only when not zero."""
    return str(value) if value else None


def volume(vol: Volume) -> dict[str, Any]:
    return volume_views.volume(vol, created_at=essex_time)


def snapshot(snap: Snapshot) -> dict[str, Any]:
    return {**snapshot_views.snapshot(snap), "createdAt": essex_time(snap.created_at)}


def attachment(att: Attachment, created: bool = False) -> dict[str, Any]:
    return attachment_views.attachment(att, V2_1, created=created)


def bookmark_base(request: Request) -> str:
    """The project root without the version segment (``http://h/v2/p`` -> ``http://h/p``)."""
    root = request.scope.get("root_path", "")
    version_root, _, project = root.rpartition("/")
    mount = version_root.rpartition("/")[0]
    url = request.url
    return f"{url.scheme}://{url.netloc}{mount}/{project}"


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    return [{"href": f"{base_url(request)}/{collection}/{item_id}", "rel": "self"},
            {"href": f"{bookmark_base(request)}/{collection}/{item_id}", "rel": "bookmark"}]


def relink(data: Any, request: Request) -> Any:
    """Point the bookmark links a v2.1 view made at the version-less project root."""
    base, bookmark = base_url(request), bookmark_base(request)
    if isinstance(data, list):
        return [relink(item, request) for item in data]
    if not isinstance(data, dict):
        return data
    if data.get("rel") == "bookmark" and str(data.get("href", "")).startswith(base + "/"):
        return {**data, "href": bookmark + data["href"][len(base):]}
    return {key: relink(value, request) for key, value in data.items()}


def server_created(request: Request, server_id: str, admin_pass: str | None) -> dict[str, Any]:
    """The create answer of the legacy API with the volume extensions: id, links, password."""
    body: dict[str, Any] = {"id": server_id, "links": links(request, "servers", server_id)}
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body
