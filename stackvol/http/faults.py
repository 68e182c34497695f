"""OpenStack faults: the error bodies of Nova and Cinder (``{"itemNotFound": {...}}``) and Keystone
(``{"error": {...}}``), and the mapping from service-layer errors to them."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from stackvol.http.responses import json_response
from stackvol.services.common import errors

# Nova's fault names by status code (nova/api/openstack/wsgi.py); anything else is computeFault.
FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

DEFAULT_MESSAGES = {
    400: "The server could not comply with the request since it is either malformed or "
         "otherwise incorrect.",
    401: "The request you have made requires authentication.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for the requested URL.",
    406: "The requested resource could not be generated according to the request's Accept "
         "header.",
    409: "There was a conflict when trying to complete your request.",
    413: "The request is larger than the server is willing or able to process.",
    415: "Unsupported Content-Type",
    500: "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and "
         "attach the Nova API log if possible.",
}


class Fault(Exception):
    """An HTTP-level failure with the status code and the message to put in the fault body."""

    def __init__(self, code: int, message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code) or HTTPStatus(code).phrase
        self.headers = headers or {}
        super().__init__(self.message)


# How each service error reads on the Compute API. Quotas are 403 there (since Kilo).
COMPUTE_CODES: dict[type[errors.ServiceError], int] = {
    errors.NotFound: 404,
    errors.Invalid: 400,
    errors.Conflict: 409,
    errors.Forbidden: 403,
    errors.NotAuthenticated: 401,
    errors.OverQuota: 403,
    errors.Unavailable: 503,
}


def from_service_error(exc: errors.ServiceError,
                       codes: dict[type[errors.ServiceError], int] = COMPUTE_CODES) -> Fault:
    for cls in type(exc).__mro__:
        if cls in codes:
            return Fault(codes[cls], exc.message)
    return Fault(500, exc.message)


def fault_body(fault: Fault) -> dict[str, dict[str, Any]]:
    """A Nova/Cinder fault body: ``{"<name>": {"code": N, "message": "..."}}`` (and the
    ``retryAfter`` of an over-limit answer)."""
    body: dict[str, Any] = {"code": fault.code, "message": fault.message}
    if fault.code == 413 and "Retry-After" in fault.headers:
        body["retryAfter"] = fault.headers["Retry-After"]
    return {FAULT_NAMES.get(fault.code, "computeFault"): body}


def compute_fault_response(fault: Fault) -> Response:
    """A Nova/Cinder fault in JSON."""
    return json_response(fault_body(fault), fault.code, fault.headers)


def keystone_error_response(fault: Fault) -> Response:
    """A Keystone error: ``{"error": {"code": N, "title": "...", "message": "..."}}``."""
    title = HTTPStatus(fault.code).phrase
    return json_response({"error": {"code": fault.code, "title": title,
                                    "message": fault.message}}, fault.code, fault.headers)
