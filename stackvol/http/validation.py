"""Request validation with JSON-Schema, answering in Nova's words.

Nova's validator differs from plain JSON-Schema in one way clients notice: ``minimum`` and
``maximum`` also apply to numeric strings (``"0"`` is rejected for ``minimum: 1``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import jsonschema
import orjson
from jsonschema import Draft4Validator, validators
from starlette.requests import Request

from stackvol.http.faults import Fault

MAX_BODY_BYTES = 1024 * 1024


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _minimum(validator: Any, minimum: Any, instance: Any, schema: Any):
    number = _numeric(instance)
    if number is not None and number < minimum:
        yield jsonschema.ValidationError(f"{instance} is less than the minimum of {minimum}")


def _maximum(validator: Any, maximum: Any, instance: Any, schema: Any):
    number = _numeric(instance)
    if number is not None and number > maximum:
        yield jsonschema.ValidationError(f"{instance} is greater than the maximum of {maximum}")


_NovaValidator = validators.extend(Draft4Validator,
                                   {"minimum": _minimum, "maximum": _maximum})

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    # As oslo's is_uuid_like: any spelling uuid.UUID accepts, dashes optional.
    return not isinstance(value, str) or bool(uuid.UUID(value))


class InvalidName(ValueError):
    """What a name format check raises: its message is the whole 400 (Nova's InvalidName)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"An invalid 'name' value was provided. The name must be: {reason}")


class Schema:
    """A compiled request schema; ``validate`` raises a 400 fault with Nova's message."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        _NovaValidator.check_schema(schema)
        self._validator = _NovaValidator(schema, format_checker=FORMATS)

    @property
    def document(self) -> Mapping[str, Any]:
        """The JSON-Schema document checked (read it, never change it: it is compiled)."""
        return self._validator.schema

    def validate(self, body: Any) -> None:
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(body))
        if error is None:
            return
        if isinstance(error.cause, InvalidName):  # Nova answers with the reason alone
            raise Fault(400, str(error.cause))
        if not error.path:
            raise Fault(400, error.message)
        # Nova names only the innermost field and prints the value as Python would.
        raise Fault(400, f"Invalid input for field/attribute {error.path[-1]}. "
                         f"Value: {error.instance}. {error.message}")


async def read_bytes(request: Request, cap: int = MAX_BODY_BYTES,
                     too_large: Fault | None = None) -> bytes:
    """The request body, or ``too_large`` (413 by default) as soon as it is declared or found
    to be over ``cap`` bytes: an oversized body is never held whole."""
    refusal = too_large or Fault(413, "Request is too large.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise refusal
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > cap:
            raise refusal
    return bytes(chunks)


async def read_json(request: Request) -> Any:
    """The request body as JSON; ``None`` when empty. Malformed or oversized bodies are 400/413."""
    data = await read_bytes(request)
    if not data.strip():
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Fault(400, "Malformed request body") from None



async def read_action(request: Request,
                      schemas: Mapping[str, Schema] | None = None) -> tuple[str, dict[str, Any]]:
    """The body of a ``POST .../action``: one member, named for the action. Returns the name
    and the body. With ``schemas`` (one per action the resource knows), any other name is
    "no such action" and the body is validated by its action's schema."""
    body = await read_json(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise Fault(400, "Malformed request body")
    name = next(iter(body))
    if schemas is not None:
        if name not in schemas:
            raise Fault(400, f"There is no such action: {name}")
        schemas[name].validate(body)
    return name, body
