"""The Identity face (Keystone v3 at ``/identity``): version discovery, tokens and the catalog."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackvol.http.faults import COMPUTE_CODES, Fault, keystone_error_response
from stackvol.http.middleware import FaultMiddleware
from stackvol.http.responses import JSONResponse, empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import Schema, read_json
from stackvol.services.errors import NotAuthenticated, NotFound
from stackvol.services.identity import DEFAULT_DOMAIN, Token

V3 = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z"}
MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
INTERFACES = ("public", "internal", "admin")


def public_base(request: Request) -> str:
    """Where clients reach this service: configured, or as the request reached us."""
    configured = services(request).settings.public_url
    return configured.rstrip("/") if configured else f"{request.url.scheme}://{request.url.netloc}"


def _version(request: Request) -> dict[str, Any]:
    href = f"{public_base(request)}/identity/v3/"
    return {**V3, "links": [{"rel": "self", "href": href}], "media-types": MEDIA}


async def versions(request: Request) -> Response:
    return json_response({"versions": {"values": [_version(request)]}}, status=300)


async def version(request: Request) -> Response:
    return json_response({"version": _version(request)})


# --- the catalog --------------------------------------------------------------------------

# (type, name, path below the public base; {project_id} filled in per token)
SERVICES = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("block-storage", "cinder", "/volume/v3/{project_id}"),
    ("volumev3", "cinderv3", "/volume/v3/{project_id}"),
]


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "stackvol:" + ":".join(parts)).hex


def catalog(request: Request, project_id: str) -> list[dict[str, Any]]:
    base = public_base(request)
    region = services(request).settings.region
    return [
        {
            "id": _stable_id(kind),
            "type": kind,
            "name": name,
            "endpoints": [
                {"id": _stable_id(kind, interface), "interface": interface, "region": region,
                 "region_id": region, "url": base + path.format(project_id=project_id)}
                for interface in INTERFACES
            ],
        }
        for kind, name, path in SERVICES
    ]


# --- tokens -------------------------------------------------------------------------------

_DOMAIN = {"type": "object", "properties": {"id": {"type": "string"},
                                            "name": {"type": "string"}}}
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
                            "password": {"type": "string"}, "domain": _DOMAIN}}}},
                    "token": {"type": "object", "required": ["id"],
                              "properties": {"id": {"type": "string"}}},
                },
            },
            "scope": {"type": ["object", "string"]},
        },
    }},
})


def _isotime(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


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
        "audit_ids": [token.audit_id],
        "expires_at": _isotime(token.expires_at),
        "issued_at": _isotime(token.issued_at),
        "project": {"domain": DEFAULT_DOMAIN, "id": token.project_id,
                    "name": token.project_name},
        "is_domain": False,
        "roles": [{"id": rid, "name": name} for rid, name in token.roles],
    }
    if with_catalog:
        body["catalog"] = catalog(request, token.project_id)
    return {"token": body}


async def issue_token(request: Request) -> Response:
    body = await read_json(request)
    AUTH_SCHEMA.validate(body)
    auth = body["auth"]
    identity = auth["identity"]
    scope = auth.get("scope") or {}
    if not isinstance(scope, dict) or (scope and "project" not in scope):
        raise Fault(401, "Only project-scoped tokens are offered by this service.")
    project = scope.get("project") or {}
    scope_args = {"project_id": project.get("id"), "project_name": project.get("name"),
                  "project_domain": _domain_id(project.get("domain"))}
    service = services(request).identity
    if "password" in identity["methods"] and "password" in identity:
        user = identity["password"]["user"]
        token = await service.authenticate_password(
            user["password"], user_id=user.get("id"), user_name=user.get("name"),
            domain=_domain_id(user.get("domain")), **scope_args)
    elif "token" in identity["methods"] and "token" in identity:
        token = await service.authenticate_token(identity["token"]["id"], **scope_args)
    else:
        raise Fault(400, f"Unsupported authentication methods: {identity['methods']}")
    with_catalog = "nocatalog" not in request.query_params
    return json_response(token_body(request, token, with_catalog), status=201,
                         headers={"X-Subject-Token": token.token_id})


async def _subject(request: Request) -> Token:
    service = services(request).identity
    caller_id = request.headers.get("x-auth-token")
    if not caller_id:
        raise NotAuthenticated("The request you have made requires authentication.")
    caller = await service.validate(caller_id)
    subject_id = request.headers.get("x-subject-token")
    if not subject_id:
        raise Fault(400, "X-Subject-Token is required.")
    try:
        subject = await service.validate(subject_id)
    except NotAuthenticated:
        raise NotFound(f"Could not find token: {subject_id}") from None
    if subject.user_id != caller.user_id and "admin" not in caller.role_names:
        raise Fault(403, "You are not authorized to perform the requested action: "
                         "identity:validate_token.")
    return subject


async def validate_token(request: Request) -> Response:
    subject = await _subject(request)
    with_catalog = "nocatalog" not in request.query_params
    response: JSONResponse = json_response(token_body(request, subject, with_catalog))
    response.headers["X-Subject-Token"] = request.headers["x-subject-token"]
    return response


async def check_token(request: Request) -> Response:
    await _subject(request)
    return empty_response(200)


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    raise Fault(404, "The resource could not be found.")


routes = [
    Route("/", versions, methods=["GET"]),
    Route("/v3", version, methods=["GET"]),
    Route("/v3/", version, methods=["GET"]),
    Route("/v3/auth/tokens", issue_token, methods=["POST"]),
    Route("/v3/auth/tokens", validate_token, methods=["GET"]),
    Route("/v3/auth/tokens", check_token, methods=["HEAD"]),
]

KEYSTONE_CODES = {NotAuthenticated: 401, NotFound: 404}


def identity_face() -> FaultMiddleware:
    router = Router(routes=routes, default=_not_found, redirect_slashes=False)
    return FaultMiddleware(router, keystone_error_response, {**COMPUTE_CODES, **KEYSTONE_CODES})
