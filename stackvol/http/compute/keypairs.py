"""``/os-keypairs``: a user's keypairs; create (generate or import), list, show and delete.
An admin names another user with ``user_id`` (the body's on create, the query's otherwise)
from 2.10; lists page by name from 2.35."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackvol.http.common import context, root_url, version
from stackvol.http.compute.common import list_limit, reject_unknown_query
from stackvol.http.compute.schemas import keypairs as schemas
from stackvol.http.compute.views import keypairs as views
from stackvol.http.microversion import v
from stackvol.http.paging import next_links
from stackvol.http.responses import empty_response, json_response
from stackvol.http.state import services
from stackvol.http.validation import read_json

V2_2 = v("2.2")  # create answers 201 and delete 204 (202 and 200 before)
V2_10 = v("2.10")  # user_id
V2_35 = v("2.35")  # paging
COLLECTION = "os-keypairs"


def _user_id(request: Request, allowed: tuple[str, ...] = ("user_id",)) -> str | None:
    reject_unknown_query(request, allowed)
    if version(request) < V2_10:
        return None
    return request.query_params.get("user_id")


async def create(request: Request) -> Response:
    current = version(request)
    body = await read_json(request)
    schemas.create(current).validate(body)
    data = body["keypair"]
    keypair, private_key = await services(request).keypairs.create(
        context(request), data["name"], data.get("type", "ssh"), data.get("public_key"),
        data.get("user_id"))
    return json_response({"keypair": views.created(current, keypair, private_key)},
                         201 if current >= V2_2 else 200)


async def index(request: Request) -> Response:
    current = version(request)
    paged = current >= V2_35
    user_id = _user_id(request, ("user_id", "limit", "marker") if paged else ("user_id",))
    limit = list_limit(request) if paged else None
    marker = request.query_params.get("marker") if paged else None
    found = await services(request).keypairs.list(context(request), user_id, limit, marker)
    body: dict = {"keypairs": [{"keypair": views.summary(current, k)} for k in found]}
    if limit is not None:
        links = next_links(request, root_url(request), COLLECTION, found, limit, "name")
        if links:
            body["keypairs_links"] = links
    return json_response(body)


async def show(request: Request) -> Response:
    keypair = await services(request).keypairs.get(
        context(request), request.path_params["name"], _user_id(request))
    return json_response({"keypair": views.show(version(request), keypair)})


async def delete(request: Request) -> Response:
    await services(request).keypairs.delete(context(request), request.path_params["name"],
                                            _user_id(request))
    return empty_response(204 if version(request) >= V2_2 else 202)


routes = [
    Route(f"/{COLLECTION}", index, methods=["GET"]),
    Route(f"/{COLLECTION}", create, methods=["POST"]),
    Route(f"/{COLLECTION}/{{name}}", show, methods=["GET"]),
    Route(f"/{COLLECTION}/{{name}}", delete, methods=["DELETE"]),
]
