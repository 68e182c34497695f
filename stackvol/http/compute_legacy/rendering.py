"""Responses of the legacy face: one body, rendered as JSON or XML once the negotiated type is
known (it travels in the request scope); faults in either form; v2.1 answers served as legacy
ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stackvol.http.common import Endpoint
from stackvol.http.compute_legacy.negotiation import Media, media_of
from stackvol.http.compute_legacy.views.common import relink
from stackvol.http.compute_legacy.views.templates import Template
from stackvol.http.compute_legacy.xml import XMLNS_V11, Node, render
from stackvol.http.faults import Fault, fault_body


class Negotiated(Response):
    """A response whose body is ``data`` in JSON, or ``template(data)`` in XML.

    Which of the two is decided by the request (``negotiation.negotiate`` puts the type in its
    scope), so the body and its Content-Type and Content-Length are rendered when the response
    is sent, as ``FileResponse`` sets its length then; ``negotiate`` renders it earlier.
    """

    def __init__(self, data: Any, template: Template, status_code: int = 200,
                 headers: Mapping[str, str] | None = None, declaration: bool = True) -> None:
        self.data = data
        self.template = template
        self.declaration = declaration
        super().__init__(None, status_code, headers)

    def negotiate(self, media: Media) -> Negotiated:
        """Render the body as ``media`` asks, and the headers that describe it."""
        self.media_type = media.content_type
        if media.is_xml:
            self.body = render(self.template(self.data), self.declaration)
        else:
            self.body = orjson.dumps(self.data)
        if "content-length" in self.headers:  # not on a status that has no body
            self.headers["content-length"] = str(len(self.body))
        self.headers["content-type"] = media.content_type
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.negotiate(media_of(scope))
        await super().__call__(scope, receive, send)


def relay(endpoint: Endpoint, template: Template) -> Endpoint:
    """A v2.1 endpoint whose JSON answer is served as the legacy one (``template`` draws its
    XML); an empty answer passes as it is."""

    async def legacy(request: Request) -> Response:
        response = await endpoint(request)
        if not response.body:
            return response
        data = relink(orjson.loads(response.body), request)
        headers = {k: val for k, val in response.headers.items() if k == "location"}
        return Negotiated(data, template, response.status_code, headers)

    return legacy


def _fault_xml(data: dict[str, Any]) -> Node:
    """``<itemNotFound code="404" xmlns="...v1.1"><message>...</message></itemNotFound>``."""
    ((name, body),) = data.items()
    node = Node(name, {"code": body["code"], "xmlns": XMLNS_V11})
    for key, value in body.items():
        if key != "code":
            node.add(Node(key, text=value))
    return node


def fault_response(fault: Fault) -> Negotiated:
    # Nova wrote faults without an XML declaration.
    return Negotiated(fault_body(fault), _fault_xml, fault.code, fault.headers,
                      declaration=False)
