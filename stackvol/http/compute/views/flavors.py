"""How a flavor reads on the Compute API, microversion by microversion, and the links every
compute resource carries (``self`` with the version, ``bookmark`` without it)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.common import root_url, version
from stackvol.http.microversion import v
from stackvol.services.flavors.api import Flavor

V2_55 = v("2.55")  # description
V2_61 = v("2.61")  # extra_specs
V2_75 = v("2.75")  # swap 0 instead of ""


def bookmark_root(request: Request) -> str:
    """The version root without its version segment (Nova's ``remove_trailing_version``)."""
    base = root_url(request)
    head, sep, tail = base.rpartition("/v2.1")
    return f"{head}{tail}" if sep else base


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{root_url(request)}/{collection}/{item_id}"},
        {"rel": "bookmark", "href": f"{bookmark_root(request)}/{collection}/{item_id}"},
    ]


def bookmark(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": f"{bookmark_root(request)}/{collection}/{item_id}"}]


def summary(request: Request, flavor: Flavor) -> dict[str, Any]:
    body: dict[str, Any] = {"id": flavor.id, "name": flavor.name,
                            "links": links(request, "flavors", flavor.id)}
    if version(request) >= V2_55:
        body["description"] = flavor.description
    return body


def detail(request: Request, flavor: Flavor) -> dict[str, Any]:
    current = version(request)
    body = summary(request, flavor)
    body.update({
        "ram": flavor.ram,
        "disk": flavor.disk,
        "swap": flavor.swap if current >= V2_75 else (flavor.swap or ""),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "vcpus": flavor.vcpus,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor or "",
    })
    if current >= V2_61:
        body["extra_specs"] = dict(flavor.extra_specs)
    return body
