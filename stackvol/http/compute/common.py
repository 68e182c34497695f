"""What every compute endpoint needs: the caller, the microversion, paging and URLs."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.faults import Fault
from stackvol.http.microversion import APIVersion, v
from stackvol.http.state import services
from stackvol.http.validation import query_int
from stackvol.services.common.context import RequestContext
from stackvol.services.common.records import Page

Endpoint = Callable[[Request], Awaitable[Response]]
STRICT_QUERY = v("2.75")  # lists refuse unknown query parameters from here on


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


def list_limit(request: Request) -> int:
    """Nova's ``limit``: 0 or absent means the configured maximum, and none goes beyond it."""
    max_limit = services(request).settings.max_limit
    return min(query_int(request, "limit", max_limit) or max_limit, max_limit)


def page(request: Request) -> Page:
    """Nova's ``limited()``: offset and limit."""
    return Page(offset=query_int(request, "offset", 0), limit=list_limit(request))


def reject_unknown_query(request: Request, allowed: Collection[str]) -> None:
    """From 2.75 a list refuses query parameters its schema does not name (Nova's
    ``additionalProperties: False``); before, they are ignored."""
    if version(request) < STRICT_QUERY:
        return
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise Fault(400, f"Additional properties are not allowed ({unknown[0]!r} was "
                         f"unexpected)")


def base_url(request: Request) -> str:
    """The URL of this version's root, project included if the caller used one."""
    # Not ``request.base_url``: Starlette builds that from the mount's ``app_root_path``,
    # while the compute face puts the version (and project) root in ``root_path``.
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on", "t", "y"}
