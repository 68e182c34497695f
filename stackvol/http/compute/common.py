"""What the compute endpoints need beyond ``stackvol.http.common``: microversion ranges, Nova's
paging and its strict query parameters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.common import Endpoint, query_int, version
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.state import services
from stackvol.services.common.records import Page

STRICT_QUERY = v("2.75")  # lists refuse unknown query parameters from here on


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
