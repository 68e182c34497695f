"""What every Block Storage endpoint needs: the caller, the microversion, lists and URLs."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.compute.schemas.parameters import TRUE_STRINGS
from stackvol.http.faults import Fault
from stackvol.http.microversion import APIVersion, v
from stackvol.http.state import services
from stackvol.services.context import RequestContext
from stackvol.services.listing import Filter

Endpoint = Callable[[Request], Awaitable[Response]]
FALSE_STRINGS = {"false", "0", "off", "no"}
# Query keys that shape a list rather than filter it.
LIST_KEYS = {"marker", "limit", "offset", "sort", "sort_key", "sort_dir", "with_count",
             "all_tenants"}


def context(request: Request) -> RequestContext:
    return request.state.context


def version(request: Request) -> APIVersion:
    return request.state.api_version


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


def root_url(request: Request) -> str:
    """This API's root as the caller reached it (``.../volume/v3[/{project_id}]``)."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    """Cinder's self and bookmark links (the bookmark has no version in its path)."""
    root = root_url(request)
    bookmark = root.replace("/v3", "", 1)
    return [{"href": f"{root}/{collection}/{item_id}", "rel": "self"},
            {"href": f"{bookmark}/{collection}/{item_id}", "rel": "bookmark"}]


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Fault(400, f"Invalid input received: {name} param must be an integer") from None
    if value < 0:
        raise Fault(400, f"Invalid input received: {name} param must be positive")
    return value


def pagination(request: Request) -> tuple[str | None, int, int]:
    """marker, limit (capped at the configured maximum, as Cinder's osapi_max_limit), offset."""
    max_limit = services(request).settings.max_limit
    limit = min(_int_param(request, "limit", max_limit), max_limit)
    return request.query_params.get("marker") or None, limit, _int_param(request, "offset", 0)


def next_links(request: Request, items: list[Any], collection: str,
               limit: int) -> list[dict[str, str]]:
    """A ``next`` link whenever the page is full (Cinder's rule, so the last full page has one)."""
    if not limit or len(items) != limit:
        return []
    params = dict(request.query_params)
    params["marker"] = items[-1].id
    return [{"href": f"{root_url(request)}/{collection}?{urlencode(params)}", "rel": "next"}]


def parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_STRINGS or text in ("t", "y"):
        return True
    if text in FALSE_STRINGS or text in ("f", "n"):
        return False
    raise Fault(400, f"Invalid input received: Invalid value '{value}' for {name}. Accepted "
                     f"values are: 'true', 'false', '1', '0', 'yes', 'no', 'on', 'off'")


def is_true(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    return raw is not None and parse_bool(raw, name)


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


def filter_keys(request: Request) -> dict[str, str]:
    return {k: val for k, val in request.query_params.items() if k not in LIST_KEYS}


def reject_filters(request: Request, given: Mapping[str, str], allowed: set[str]) -> dict[str,
                                                                                         str]:
    """Cinder's filter rules: from 3.31 unknown filters are a 400 for non-admins; before,
    they are dropped. ``name~`` (3.34) filters by substring."""
    kept = {}
    bad = []
    for key, value in given.items():
        base = key[:-1] if key.endswith("~") and at_least(request, "3.34") else key
        if base in allowed or context(request).is_admin:
            kept[key] = value
        else:
            bad.append(key)
    if bad and at_least(request, "3.31"):
        raise Fault(400, f"Invalid input received: Invalid filters {', '.join(sorted(bad))} "
                         f"are found in query options.")
    return kept
