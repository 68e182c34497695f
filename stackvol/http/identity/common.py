"""What every Identity endpoint needs: the caller, Keystone's links, bodies and query flags."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.common import KEYSTONE_BOOL, query_bool
from stackvol.http.faults import Fault
from stackvol.http.state import services
from stackvol.http.validation import Schema, read_json
from stackvol.logs import note_caller
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import NotAuthenticated
from stackvol.services.identity.api import Token

# The schema of a reference to a domain, role...: ``{"id": ...}`` or ``{"name": ...}``.
REFERENCE: dict[str, Any] = {"type": "object", "properties": {"id": {"type": "string"},
                                                              "name": {"type": "string"}}}


def public_base(request: Request) -> str:
    """Where clients reach this service: configured, or as the request reached us."""
    configured = services(request).settings.public_url
    return configured.rstrip("/") if configured else f"{request.url.scheme}://{request.url.netloc}"


def v3_url(request: Request, path: str = "") -> str:
    return f"{public_base(request)}/identity/v3{path}"


def self_link(request: Request, path: str) -> dict[str, str]:
    return {"self": v3_url(request, path)}


def collection(request: Request, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Keystone's list body: the items and ``links`` (no paging: next/previous are null)."""
    query = request.url.query
    here = str(request.url.replace(query="")) if not query else str(request.url)
    return {key: items, "links": {"self": here, "next": None, "previous": None}}


async def caller_token(request: Request) -> Token:
    token_id = request.headers.get("x-auth-token")
    if not token_id:
        raise NotAuthenticated("The request you have made requires authentication.")
    return await services(request).identity.validate(token_id)


def context_of(request: Request, token: Token) -> RequestContext:
    note_caller(token.user_id, token.project_id)
    return RequestContext(user_id=token.user_id, project_id=token.project_id,
                          roles=token.role_names,
                          request_id=request.scope.get("state", {}).get("request_id"),
                          user_name=token.user_name, project_name=token.project_name)


async def caller(request: Request) -> RequestContext:
    """The authenticated caller's context (401 without a valid token)."""
    return context_of(request, await caller_token(request))


async def entity(request: Request, key: str, schema: Schema) -> dict[str, Any]:
    """The ``{"<key>": {...}}`` request body, validated."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise Fault(400, f"Expecting to find {key} in request body. The server could not "
                         f"comply with the request since it is either malformed or otherwise "
                         f"incorrect. The client is assumed to be in error.")
    schema.validate(body[key])
    return body[key]


def list_filters(request: Request) -> dict[str, Any]:
    """The filters the project and user lists share: ``name``, ``enabled``, ``domain_id``."""
    query = request.query_params
    return {"name": query.get("name"),
            "enabled": query_bool(request, "enabled", KEYSTONE_BOOL, None),
            "domain_id": query.get("domain_id")}

