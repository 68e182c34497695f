"""Reaching the service layer from a request (the composition root puts it on ``app.state``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:
    from stackvol.services.container import Services


def services(request: Request) -> Services:
    return request.app.state.services
