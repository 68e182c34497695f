"""The version documents of the legacy paths: ``/v2`` (SUPPORTED, as Nova lists it today) and
``/v1.1`` (DEPRECATED: the 2011 name of the same API)."""

from __future__ import annotations

from typing import Any

from stackvol.http.compute_legacy.rendering import Negotiated
from stackvol.http.compute_legacy.views import versions as views

# api path segment -> (version id, status, media type version)
_UPDATED = "2011-01-21T11:33:21Z"
VERSIONS = {"v2": ("v2.0", "SUPPORTED", "2"), "v1.1": ("v1.1", "DEPRECATED", "1.1")}


def entry(api: str, face_base: str) -> dict[str, Any]:
    """The short entry of the root's version list (``face_base``: the face's root URL)."""
    version_id, status, _ = VERSIONS[api]
    return {"id": version_id, "status": status, "version": "", "min_version": "",
            "updated": _UPDATED, "links": [{"href": f"{face_base}/{api}/", "rel": "self"}]}


def document(api: str, face_base: str) -> Negotiated:
    body = entry(api, face_base)
    media = VERSIONS[api][2]
    body["links"].append({"href": "http://docs.openstack.org/", "rel": "describedby",
                          "type": "text/html"})
    body["media-types"] = [
        {"base": "application/json", "type": f"application/vnd.openstack.compute+json;"
                                             f"version={media}"},
        {"base": "application/xml", "type": f"application/vnd.openstack.compute+xml;"
                                            f"version={media}"},
    ]
    return Negotiated({"version": body}, views.version_xml)
