"""Identifiers as the services take them from callers."""

from __future__ import annotations

import uuid


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID (any of the spellings ``uuid.UUID`` reads): only such an id
    can name a record keyed by UUID, so anything else is looked up no further."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
