"""``/users/{user_id}/application_credentials``: create, list, show, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.faults import Fault
from stackvol.http.identity.common import (
    REFERENCE,
    caller_token,
    collection,
    context_of,
    entity,
    self_link,
)
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.timefmt import isotime_micro_z
from stackvol.http.validation import Schema
from stackvol.services.identity.api import Token
from stackvol.services.identity.directory import AppCredential

CREATE = Schema({"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": {"type": ["string", "null"]}, "secret": {"type": ["string", "null"]},
    "expires_at": {"type": ["string", "null"]}, "roles": {"type": "array", "items": REFERENCE},
    "unrestricted": {"type": ["boolean", "null"]}, "access_rules": {"type": "array"}}})


def credential_view(request: Request, cred: AppCredential) -> dict[str, Any]:
    view = {"id": cred.id, "name": cred.name, "description": cred.description,
            "user_id": cred.user_id, "project_id": cred.project_id,
            "roles": [{"id": r.id, "name": r.name, "domain_id": None} for r in cred.roles],
            "unrestricted": cred.unrestricted, "expires_at": isotime_micro_z(cred.expires_at),
            "access_rules": [],
            "links": self_link(request, f"/users/{cred.user_id}/application_credentials/"
                                        f"{cred.id}")}
    if cred.secret is not None:
        view["secret"] = cred.secret
    return view


def _expiry(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Fault(400, f"Invalid input for field 'expires_at': {value!r} is not a "
                         f"date-time.") from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _role_names(token: Token, wanted: list[dict[str, str]] | None) -> list[str] | None:
    if not wanted:  # Keystone: none named means the token's roles
        return None
    by_id = dict(token.roles)
    names = []
    for ref in wanted:
        name = ref.get("name") or by_id.get(ref.get("id", ""))
        if name is None:
            raise Fault(404, f"Could not find role: {ref.get('id')}.")
        names.append(name)
    return names


def _restricted(token: Token) -> bool:
    cred = token.application_credential
    return cred is not None and cred.restricted


async def create(request: Request) -> Response:
    token = await caller_token(request)
    data = await entity(request, "application_credential", CREATE)
    cred = await services(request).identity.directory.create_app_credential(
        context_of(request, token), request.path_params["user_id"], data["name"],
        data.get("secret"), _role_names(token, data.get("roles")), data.get("description"),
        bool(data.get("unrestricted")), _expiry(data.get("expires_at")), _restricted(token))
    return json_response({"application_credential": credential_view(request, cred)},
                         status=201)


async def index(request: Request) -> Response:
    token = await caller_token(request)
    found = await services(request).identity.directory.list_app_credentials(
        context_of(request, token), request.path_params["user_id"],
        request.query_params.get("name"))
    return json_response(collection(request, "application_credentials",
                                    [credential_view(request, c) for c in found]))


async def show(request: Request) -> Response:
    token = await caller_token(request)
    cred = await services(request).identity.directory.get_app_credential(
        context_of(request, token), request.path_params["user_id"],
        request.path_params["credential_id"])
    return json_response({"application_credential": credential_view(request, cred)})


async def delete(request: Request) -> Response:
    token = await caller_token(request)
    await services(request).identity.directory.delete_app_credential(
        context_of(request, token), request.path_params["user_id"],
        request.path_params["credential_id"], _restricted(token))
    return empty_response(204)


_BASE = "/v3/users/{user_id}/application_credentials"
routes = [
    Route(_BASE, create, methods=["POST"]),
    Route(_BASE, index, methods=["GET"]),
    Route(_BASE + "/{credential_id}", show, methods=["GET"]),
    Route(_BASE + "/{credential_id}", delete, methods=["DELETE"]),
]
