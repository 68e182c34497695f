"""``/auth/tokens`` (issue, validate, check, revoke) and what a token may ask about itself:
``/auth/projects`` and ``/auth/catalog``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.faults import Fault
from stackvol.http.identity.catalog import catalog
from stackvol.http.identity.common import (
    REFERENCE,
    caller_token,
    collection,
    context_of,
    public_base,
)
from stackvol.http.identity.projects import project_view
from stackvol.http.responses import JSONResponse, empty_response, json_response
from stackvol.http.state import services
from stackvol.http.timefmt import isotime_micro_z
from stackvol.http.validation import Schema, read_json
from stackvol.services.common import policy
from stackvol.services.common.errors import NotAuthenticated, NotFound
from stackvol.services.identity.api import DEFAULT_DOMAIN, Token

_USER = {"type": "object", "properties": {**REFERENCE["properties"], "domain": REFERENCE}}
AUTH_SCHEMA = Schema({
    "type": "object",
    "required": ["auth"],
    "properties": {"auth": {
        "type": "object",
        "required": ["identity"],
        "properties": {
            "identity": {
                "type": "object",
                "required": ["methods"],
                "properties": {
                    "methods": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "password": {"type": "object", "required": ["user"], "properties": {
                        "user": {"type": "object", "required": ["password"], "properties": {
                            "id": {"type": "string"}, "name": {"type": "string"},
                            "password": {"type": "string"}, "domain": REFERENCE}}}},
                    "token": {"type": "object", "required": ["id"],
                              "properties": {"id": {"type": "string"}}},
                    "application_credential": {
                        "type": "object", "required": ["secret"],
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                       "secret": {"type": "string"}, "user": _USER}},
                },
            },
            "scope": {"type": ["object", "string"]},
        },
    }},
})


def _domain_id(domain: dict[str, Any] | None) -> str | None:
    if not domain:
        return None
    if "id" in domain:
        return domain["id"]
    return "default" if domain.get("name") == DEFAULT_DOMAIN["name"] else domain.get("name")


def token_body(request: Request, token: Token, with_catalog: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "methods": list(token.methods),
        "user": {"domain": DEFAULT_DOMAIN, "id": token.user_id, "name": token.user_name,
                 "password_expires_at": None},
        "audit_ids": list(token.audit_ids),
        "expires_at": isotime_micro_z(token.expires_at),
        "issued_at": isotime_micro_z(token.issued_at),
        "project": {"domain": DEFAULT_DOMAIN, "id": token.project_id,
                    "name": token.project_name},
        "is_domain": False,
        "roles": [{"id": rid, "name": name} for rid, name in token.roles],
    }
    cred = token.application_credential
    if cred is not None:
        body["application_credential"] = {"id": cred.id, "name": cred.name,
                                          "restricted": cred.restricted}
    if with_catalog:
        body["catalog"] = catalog(request, token.project_id)
    return {"token": body}


async def _authenticate(request: Request, identity: dict[str, Any],
                        scope_args: dict[str, Any]) -> Token:
    service = services(request).identity
    methods = identity["methods"]
    if "password" in methods and "password" in identity:
        user = identity["password"]["user"]
        return await service.authenticate_password(
            user["password"], user_id=user.get("id"), user_name=user.get("name"),
            domain=_domain_id(user.get("domain")), **scope_args)
    if "token" in methods and "token" in identity:
        return await service.authenticate_token(identity["token"]["id"], **scope_args)
    if "application_credential" in methods and "application_credential" in identity:
        cred = identity["application_credential"]
        user = cred.get("user") or {}
        return await service.authenticate_app_credential(
            cred["secret"], credential_id=cred.get("id"), name=cred.get("name"),
            user_id=user.get("id"), user_name=user.get("name"),
            domain=_domain_id(user.get("domain")))
    raise Fault(400, f"Unsupported authentication methods: {methods}")


async def issue_token(request: Request) -> Response:
    body = await read_json(request)
    AUTH_SCHEMA.validate(body)
    auth = body["auth"]
    scope = auth.get("scope") or {}
    if not isinstance(scope, dict) or (scope and "project" not in scope):
        raise Fault(401, "Only project-scoped tokens are offered by this service.")
    project = scope.get("project") or {}
    scope_args = {"project_id": project.get("id"), "project_name": project.get("name"),
                  "project_domain": _domain_id(project.get("domain"))}
    token = await _authenticate(request, auth["identity"], scope_args)
    with_catalog = "nocatalog" not in request.query_params
    return json_response(token_body(request, token, with_catalog), status=201,
                         headers={"X-Subject-Token": token.token_id})


async def _subject(request: Request, action: str) -> Token:
    caller = await caller_token(request)
    subject_id = request.headers.get("x-subject-token")
    if not subject_id:
        raise Fault(400, "X-Subject-Token is required.")
    try:
        subject = await services(request).identity.validate(subject_id)
    except NotAuthenticated:
        raise NotFound(f"Could not find token: {subject_id}") from None
    policy.authorize(context_of(request, caller), action, subject.project_id,
                     user_id=subject.user_id)
    return subject


async def validate_token(request: Request) -> Response:
    subject = await _subject(request, "identity:validate_token")
    with_catalog = "nocatalog" not in request.query_params
    response: JSONResponse = json_response(token_body(request, subject, with_catalog))
    response.headers["X-Subject-Token"] = request.headers["x-subject-token"]
    return response


async def check_token(request: Request) -> Response:
    await _subject(request, "identity:validate_token")
    return empty_response(200)


async def revoke_token(request: Request) -> Response:
    subject = await _subject(request, "identity:revoke_token")
    await services(request).identity.revoke(subject)
    return empty_response(204)


async def auth_projects(request: Request) -> Response:
    token = await caller_token(request)
    ctx = context_of(request, token)
    found = await services(request).identity.directory.list_user_projects(ctx, token.user_id)
    return json_response(collection(request, "projects",
                                    [project_view(request, p) for p in found]))


async def auth_catalog(request: Request) -> Response:
    token = await caller_token(request)
    return json_response({"catalog": catalog(request, token.project_id),
                          "links": {"self": f"{public_base(request)}/identity/v3/auth/catalog",
                                    "next": None, "previous": None}})


routes = [
    Route("/v3/auth/tokens", issue_token, methods=["POST"]),
    Route("/v3/auth/tokens", validate_token, methods=["GET"]),
    Route("/v3/auth/tokens", check_token, methods=["HEAD"]),
    Route("/v3/auth/tokens", revoke_token, methods=["DELETE"]),
    Route("/v3/auth/projects", auth_projects, methods=["GET"]),
    Route("/v3/auth/catalog", auth_catalog, methods=["GET"]),
]
