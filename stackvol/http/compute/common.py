"""What every compute endpoint needs: the caller, the microversion, paging and URLs."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.faults import Fault
from stackvol.http.microversion import APIVersion, v
from stackvol.http.state import services
from stackvol.http.validation import query_int
from stackvol.services.context import RequestContext
from stackvol.services.records import Page

Endpoint = Callable[[Request], Awaitable[Response]]


def context(request: Request) -> RequestContext:
    return request.state.context


def version(request: Request) -> APIVersion:
    return request.state.api_version


def versioned(minimum: str = "2.1", maximum: str | None = None) -> Callable[[Endpoint], Endpoint]:
    """Serve the endpoint only within a microversion range; outside it is 404, as in Nova."""
    low = v(minimum)
    high = v(maximum) if maximum else None

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            current = version(request)
            if current < low or (high is not None and current > high):
                raise Fault(404)
            return await endpoint(request)

        return guarded

    return wrap


def page(request: Request) -> Page:
    """Nova's ``limited()``: offset and limit, where limit 0 or absent means the maximum."""
    max_limit = services(request).settings.max_limit
    offset = query_int(request, "offset", 0)
    limit = query_int(request, "limit", max_limit)
    return Page(offset=offset, limit=min(limit or max_limit, max_limit))


def base_url(request: Request) -> str:
    """The URL of this version's root, project included if the caller used one."""
    # Not ``request.base_url``: Starlette builds that from the mount's ``app_root_path``,
    # while the compute face puts the version (and project) root in ``root_path``.
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on", "t", "y"}
