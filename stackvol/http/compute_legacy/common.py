"""What every legacy endpoint needs beyond the v2.1 helpers: request bodies in JSON or XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request

from stackvol.http.compute_legacy import xml
from stackvol.http.compute_legacy.negotiation import body_type
from stackvol.http.faults import Fault
from stackvol.http.validation import MAX_BODY_BYTES, Schema

XmlDecoder = Callable[[ET.Element], Any]


async def _read(request: Request, cap: int, too_large: Fault) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > cap:
            raise too_large
    return bytes(chunks)


async def read_body(request: Request, decode_xml: XmlDecoder = xml.generic) -> Any:
    """The request body as a dict: JSON, or XML read by ``decode_xml`` (a Nova deserializer).

    ``None`` when empty, so the schema answers 400; 415 for any other Content-Type.
    """
    kind = body_type(request.headers.get("content-type"))
    if kind is None:
        raise Fault(415, "Unsupported Content-Type")
    if kind == "xml":
        # The issue asks for a 400 fault (not 413) on an oversized XML body.
        data = await _read(request, xml.MAX_XML_BYTES, Fault(
            400, f"XML request body is larger than {xml.MAX_XML_BYTES} bytes"))
        return decode_xml(xml.parse(data)) if data.strip() else None
    data = await _read(request, MAX_BODY_BYTES, Fault(413, "Request is too large."))
    if not data.strip():
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Fault(400, "Malformed request body") from None


def validate(schema: Schema, body: Any) -> Any:
    """Nova's validation of the legacy v2 paths: the v2.1 schema, except that properties it does
    not know are dropped instead of refused (``_soft_validate_additional_properties``); objects
    with ``patternProperties`` (metadata) are still checked in full. Returns the body to use."""
    body = _relax(schema._validator.schema, body)  # the v2.1 schema document
    schema.validate(body)
    return body


def _relax(doc: Any, data: Any) -> Any:
    if not isinstance(doc, dict):
        return data
    if isinstance(data, list) and isinstance(doc.get("items"), dict):
        return [_relax(doc["items"], item) for item in data]
    if not isinstance(data, dict):
        return data
    known = doc.get("properties", {})
    if doc.get("additionalProperties") is False and "patternProperties" not in doc:
        data = {key: value for key, value in data.items() if key in known}
    return {key: _relax(known.get(key), value) for key, value in data.items()}
