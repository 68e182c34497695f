"""What the legacy endpoints need beyond ``stackvol.http.common``: the microversion they run
the v2.1 code at, and request bodies in JSON or XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from stackvol.http.compute_legacy import xml
from stackvol.http.compute_legacy.negotiation import body_type
from stackvol.http.faults import Fault
from stackvol.http.microversion import v
from stackvol.http.validation import read_bytes, read_json

# No microversions on the legacy paths: every v2.1 helper runs at 2.1.
V2_1 = v("2.1")

XmlDecoder = Callable[[ET.Element], Any]


async def read_body(request: Request, decode_xml: XmlDecoder = xml.generic) -> Any:
    """The request body as a dict: JSON, or XML read by ``decode_xml`` (a Nova deserializer).

    ``None`` when empty, so the schema answers 400; 415 for any other Content-Type.
    """
    kind = body_type(request.headers.get("content-type"))
    if kind is None:
        raise Fault(415, "Unsupported Content-Type")
    if kind == "json":
        return await read_json(request)
    # The issue asks for a 400 fault (not 413) on an oversized XML body.
    data = await read_bytes(request, xml.MAX_XML_BYTES, Fault(
        400, f"XML request body is larger than {xml.MAX_XML_BYTES} bytes"))
    return decode_xml(xml.parse(data)) if data.strip() else None
