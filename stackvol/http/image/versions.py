"""The Image API's version document, as Glance lists it (newest first)."""

from __future__ import annotations

from typing import Any

# Glance's v2 minor versions up to the one whose features this face serves (os_hidden: 2.7).
CURRENT = "2.9"
SUPPORTED = ("2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")


def versions_document(face_base: str) -> dict[str, Any]:
    """``{"versions": [...]}``: the root answers it with 300, ``/versions`` with 200."""
    href = f"{face_base}/v2/"
    entries = [(CURRENT, "CURRENT"), *((version, "SUPPORTED") for version in SUPPORTED)]
    return {"versions": [{"id": f"v{version}", "status": status,
                          "links": [{"rel": "self", "href": href}]}
                         for version, status in entries]}
