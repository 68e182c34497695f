"""What the legacy JSON views share: the Essex time format and the version-less bookmark links
of the 2011-2014 API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request

from stackvol.http.common import root_url


def essex_time(value: dt.datetime | None) -> str | None:
    """``str(datetime)``: ``2012-03-01 12:00:00``, microseconds only when not zero."""
    return str(value) if value else None


def bookmark_base(request: Request) -> str:
    """The project root without the version segment (``http://h/v2/p`` -> ``http://h/p``)."""
    root = request.scope.get("root_path", "")
    version_root, _, project = root.rpartition("/")
    mount = version_root.rpartition("/")[0]
    url = request.url
    return f"{url.scheme}://{url.netloc}{mount}/{project}"


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    return [{"href": f"{root_url(request)}/{collection}/{item_id}", "rel": "self"},
            {"href": f"{bookmark_base(request)}/{collection}/{item_id}", "rel": "bookmark"}]


def relink(data: Any, request: Request) -> Any:
    """Point the bookmark links a v2.1 view made at the version-less project root."""
    base, bookmark = root_url(request), bookmark_base(request)
    if isinstance(data, list):
        return [relink(item, request) for item in data]
    if not isinstance(data, dict):
        return data
    if data.get("rel") == "bookmark" and str(data.get("href", "")).startswith(base + "/"):
        return {**data, "href": bookmark + data["href"][len(base):]}
    return {key: relink(value, request) for key, value in data.items()}
