"""The paged list bodies Nova and Cinder both answer with: the page of items and, when the page
is full, a ``<key>_links`` entry whose ``next`` link continues after its last item."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request


def next_links(request: Request, root: str, collection: str, found: Sequence[Any],
               limit: int, marker: str = "id") -> list[dict[str, str]]:
    """A ``next`` link whenever the page is full (so the last full page has one too), keeping
    the caller's filters; ``root`` is the face's root URL as the caller reached it, and
    ``marker`` the attribute that marks an item (keypairs are marked by name)."""
    if not found or len(found) != limit:
        return []
    params = dict(request.query_params)
    params["marker"] = getattr(found[-1], marker)
    return [{"href": f"{root}/{collection}?{urlencode(params)}", "rel": "next"}]


def list_body(request: Request, root: str, key: str, items: list[dict[str, Any]],
              found: Sequence[Any], limit: int, detailed: bool,
              count: int | None = None) -> dict[str, Any]:
    """``{key: items}``, with ``{key}_links`` for a full page and ``count`` when counted.

    ``found`` are the records ``items`` render (their ids make the marker); the next link
    points at ``{key}/detail`` for a detailed list, as the request did."""
    body: dict[str, Any] = {key: items}
    links = next_links(request, root, f"{key}/detail" if detailed else key, found, limit)
    if links:
        body[f"{key}_links"] = links
    if count is not None:
        body["count"] = count
    return body
