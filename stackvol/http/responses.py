"""Fast JSON responses (orjson) and the empty 202/204 answers OpenStack APIs give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSON_TYPE = "application/json"


class JSONResponse(Response):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(body: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def empty_response(status: int = 202, headers: Mapping[str, str] | None = None) -> Response:
    """An empty body; Nova sends ``text/html`` with its bodiless 202s, clients ignore it."""
    return Response(b"", status_code=status, headers=headers, media_type="text/html")
