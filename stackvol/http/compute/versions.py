"""The Compute API's version documents and microversion range."""

from __future__ import annotations

from typing import Any

from stackvol.http.microversion import VersionRange, v

# The newest microversion every compute resource we serve fully honours.
MAX_VERSION = "2.1"
COMPUTE_VERSIONS = VersionRange("compute", v("2.1"), v(MAX_VERSION), "X-OpenStack-Nova-API-Version")

_V21_UPDATED = "2013-07-23T11:33:21Z"
_V20_UPDATED = "2011-01-21T11:33:21Z"


def _v21(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(COMPUTE_VERSIONS.maximum),
        "min_version": str(COMPUTE_VERSIONS.minimum),
        "updated": _V21_UPDATED,
        "links": [{"href": f"{base}/v2.1/", "rel": "self"}],
    }


def _v20(base: str) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": _V20_UPDATED,
        "links": [{"href": f"{base}/v2/", "rel": "self"}],
    }


def versions_document(base: str) -> dict[str, Any]:
    """``GET /``: every version the Compute API offers (``base`` is the face's root URL)."""
    return {"versions": [_v20(base), _v21(base)]}


def version_document(base: str) -> dict[str, Any]:
    """``GET /v2.1``: this version, with its media types and documentation link."""
    doc = _v21(base)
    doc["links"].append({"href": "http://docs.openstack.org/", "rel": "describedby",
                         "type": "text/html"})
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return {"version": doc}
