"""What the Block Storage endpoints need beyond ``stackvol.http.common``: microversion checks,
Cinder's links, list paging, scope and filters."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.common import (
    CINDER_BOOL,
    Endpoint,
    cinder_int_message,
    context,
    query_bool,
    query_int,
    root_url,
    version,
)
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.state import services
from stackvol.services.common.listing import Filter

# Query keys that shape a list rather than filter it.
LIST_KEYS = {"marker", "limit", "offset", "sort", "sort_key", "sort_dir", "with_count",
             "all_tenants"}


def at_least(request: Request, minimum: str) -> bool:
    return version(request) >= v(minimum)


def versioned(minimum: str) -> Callable[[Endpoint], Endpoint]:
    """Serve the endpoint from ``minimum`` on; before it Cinder answers 404."""
    low = v(minimum)

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            if version(request) < low:
                raise Fault(404, f"API version {version(request)} is not supported on this "
                                 f"method.")
            return await endpoint(request)

        return guarded

    return wrap


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    """Cinder's self and bookmark links (the bookmark has no version in its path)."""
    return links_under(link_roots(request), collection, item_id)


def link_roots(request: Request) -> tuple[str, str]:
    """The roots of the self and bookmark links: found once for a list, not once a row."""
    root = root_url(request)
    return root, root.replace("/v3", "", 1)


def links_under(roots: tuple[str, str], collection: str, item_id: str) -> list[dict[str, str]]:
    return [{"href": f"{roots[0]}/{collection}/{item_id}", "rel": "self"},
            {"href": f"{roots[1]}/{collection}/{item_id}", "rel": "bookmark"}]


def pagination(request: Request) -> tuple[str | None, int, int]:
    """marker, limit (capped at the configured maximum, as Cinder's osapi_max_limit), offset."""
    max_limit = services(request).settings.max_limit
    limit = min(query_int(request, "limit", max_limit, message=cinder_int_message),
                max_limit)
    offset = query_int(request, "offset", 0, message=cinder_int_message)
    return request.query_params.get("marker") or None, limit, offset


def project_scope(request: Request) -> str | None:
    """The project a list covers: the caller's; for an admin asking ``all_tenants``, every
    project (None) or the one ``project_id`` names."""
    ctx = context(request)
    everyone = query_bool(request, "all_tenants", CINDER_BOOL, False) and ctx.is_admin
    if not everyone:
        return ctx.project_id
    return request.query_params.get("project_id")


def wants_count(request: Request) -> bool:
    """``with_count`` (3.45): the list body also says how many match."""
    return at_least(request, "3.45") and query_bool(request, "with_count", CINDER_BOOL, False)


def parse_metadata(raw: str) -> dict[str, str]:
    """A metadata filter: a dict written as JSON or as Python (what cinderclient sends)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(raw)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return {str(k): str(val) for k, val in value.items()}
    raise Fault(400, f"Invalid input received: Invalid metadata filter {raw}")


def time_filter(column: str, raw: str) -> Filter:
    """``created_at=gt:2024-01-01T00:00:00`` (3.60): an operator and an ISO time."""
    op, sep, text = raw.partition(":")
    if not sep or op not in ("gt", "gte", "lt", "lte", "eq", "neq"):
        op, text = "eq", raw
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Fault(400, f"Invalid input received: Invalid filter {column}={raw}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return Filter(column, moment, op)


def filter_name(request: Request, key: str) -> tuple[str, bool]:
    """A filter's name, and whether it matches by substring (``name~``, from 3.34)."""
    like = key.endswith("~") and at_least(request, "3.34")
    return (key[:-1] if like else key), like


def display_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``name``/``description`` (or their v1 ``display_`` spellings, which win) as the
    columns they set."""
    out = {}
    for column, names in (("display_name", ("name", "display_name")),
                          ("display_description", ("description", "display_description"))):
        for name in names:
            if name in data:
                out[column] = data[name]
    return out


def filter_keys(request: Request) -> dict[str, str]:
    return {k: val for k, val in request.query_params.items() if k not in LIST_KEYS}


def reject_filters(request: Request, given: Mapping[str, str], allowed: set[str]) -> dict[str,
                                                                                         str]:
    """Cinder's filter rules: from 3.31 unknown filters are a 400 for non-admins; before,
    they are dropped. ``name~`` (3.34) filters by substring."""
    kept = {}
    bad = []
    for key, value in given.items():
        base, _ = filter_name(request, key)
        if base in allowed or context(request).is_admin:
            kept[key] = value
        else:
            bad.append(key)
    if bad and at_least(request, "3.31"):
        raise Fault(400, f"Invalid input received: Invalid filters {', '.join(sorted(bad))} "
                         f"are found in query options.")
    return kept
