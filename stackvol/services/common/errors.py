"""What can go wrong in the service layer, in domain terms. The HTTP faces map each to a fault."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every expected failure; ``message`` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """The resource does not exist or is not visible to the caller."""


class Invalid(ServiceError):
    """The request is malformed, or the resource is in a state that refuses it."""


class Conflict(ServiceError):
    """The request conflicts with the current state of another resource (409 in Nova)."""


class Forbidden(ServiceError):
    """Policy does not allow the caller to do this."""


class NotAuthenticated(ServiceError):
    """No valid credentials or token."""


class OverQuota(ServiceError):
    """The project would exceed a quota."""


class Unanswered(ServiceError):
    """Another process did not answer in time (Cinder's RPC timeout: a 500 fault)."""


class Unavailable(ServiceError):
    """Something the request needs cannot be had right now (a 503): e.g. the built-in image's
    bytes, which could not be built."""
