"""Responses of the legacy face: one body, rendered as JSON or XML once the negotiated type is
known (it travels in the request scope), and faults in either form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stackvol.http.compute_legacy.negotiation import media_of
from stackvol.http.compute_legacy.xml import XMLNS_V11, Node, render
from stackvol.http.faults import FAULT_NAMES, Fault

Template = Callable[[Any], Node]


class Negotiated:
    """An ASGI response whose body is ``data`` in JSON, or ``template(data)`` in XML."""

    def __init__(self, data: Any, template: Template, status: int = 200,
                 headers: Mapping[str, str] | None = None, declaration: bool = True) -> None:
        self.data = data
        self.template = template
        self.status_code = status
        self.headers = dict(headers or {})
        self.declaration = declaration

    def body(self, scope: Scope) -> tuple[bytes, str]:
        media = media_of(scope)
        if media.is_xml:
            return render(self.template(self.data), self.declaration), media.content_type
        return orjson.dumps(self.data), media.content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content, content_type = self.body(scope)
        response = Response(content, self.status_code, self.headers, media_type=content_type)
        await response(scope, receive, send)


def _fault_body(fault: Fault) -> dict[str, Any]:
    body: dict[str, Any] = {"code": fault.code, "message": fault.message}
    if fault.code == 413 and "Retry-After" in fault.headers:
        body["retryAfter"] = fault.headers["Retry-After"]
    return {FAULT_NAMES.get(fault.code, "computeFault"): body}


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
    return Negotiated(_fault_body(fault), _fault_xml, fault.code, fault.headers,
                      declaration=False)
