"""``os-getConsoleOutput``: a server action answering with the tail of the console log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.common import context
from stackvol.http.faults import Fault
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.validation import Schema
from stackvol.services.servers.console import ConsoleNotSupported, console_output

schema = Schema({
    "type": "object",
    "properties": {
        "os-getConsoleOutput": {
            "type": "object",
            "properties": {
                "length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$",
                           "minimum": -1},
            },
            "additionalProperties": False,
        },
    },
    "required": ["os-getConsoleOutput"],
    "additionalProperties": False,
})


async def get_console_output(request: Request, body: dict[str, Any]) -> Response:
    schema.validate(body)
    length = body["os-getConsoleOutput"].get("length")
    try:
        output = await console_output(services(request).servers, context(request),
                                      request.path_params["server_id"],
                                      None if length is None else int(length))
    except ConsoleNotSupported:
        raise Fault(501, "The requested functionality is not supported.") from None
    return json_response({"output": output})


# Server actions that answer with a body of their own (the power actions answer 202).
ACTIONS = {"os-getConsoleOutput": get_console_output}
