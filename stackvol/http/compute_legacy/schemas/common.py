"""How the legacy paths validate: Nova's v2.1 schema, except that properties it does not know
are dropped instead of refused (``_soft_validate_additional_properties``); objects with
``patternProperties`` (metadata) are still checked in full."""

from __future__ import annotations

from typing import Any

from stackvol.http.validation import Schema


class LegacySchema:
    """A v2.1 request schema as the legacy paths apply it."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def validate(self, body: Any) -> Any:
        """Check ``body`` (400 as the v2.1 schema words it); returns the body to use, without
        the properties the schema does not know."""
        relaxed = _relax(self.schema.document, body)
        self.schema.validate(relaxed)
        return relaxed


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
