"""The Compute API's version documents and microversion range."""

from __future__ import annotations

from typing import Any

from stackvol.http.microversion import VersionRange, v

# The newest microversion every compute resource we serve fully honours. Changes honoured on
# the resources we serve (the others in 2.2-2.101 touch APIs stackvol does not offer at any
# version, e.g. keypairs, hypervisors, 2.97 share attachments, 2.99 SPICE consoles: 404):
#   servers: 2.3 extended attributes and volumes' delete_on_termination; 2.9 locked;
#     2.16 host_status (admin); 2.19 description; 2.26 tags (view, list filters); 2.32/2.42
#     device tags on create; 2.37 networks required ("auto"/"none"/list); 2.38 bad status
#     filter is 400; 2.47 embedded flavor; 2.52 tags on create; 2.57 no personality;
#     2.63 trusted_image_certificates; 2.66 changes-before; 2.67 BDM volume_type;
#     2.71 server_groups (show/update); 2.73 locked_reason, locked filter; 2.74 host on create;
#     2.75 strict list query and full PUT response; 2.83 more non-admin filters;
#     2.90 hostname (create/update, visible to all); 2.94 FQDN hostnames;
#     2.96 pinned_availability_zone; 2.98 image properties; 2.100 scheduler_hints.
#   flavors: 2.55 description; 2.61 extra_specs; 2.75 swap 0 instead of "" and strict query.
#   os-volumes: 2.1-2.35, 404 from 2.36. os-volume_attachments: 2.20, 2.49, 2.60, 2.70, 2.75,
#     2.79, 2.85, 2.89, 2.101 (asynchronous attach).
# 2.102 (strict query strings on every show) is not done yet.
MAX_VERSION = "2.101"
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


def _v11(base: str) -> dict[str, Any]:
    """The 2011 name of the v2 API, still served (JSON and XML) by the legacy face."""
    return {**_v20(base), "id": "v1.1", "status": "DEPRECATED",
            "links": [{"href": f"{base}/v1.1/", "rel": "self"}]}


def versions_document(base: str) -> dict[str, Any]:
    """``GET /``: every version the Compute API offers (``base`` is the face's root URL)."""
    return {"versions": [_v11(base), _v20(base), _v21(base)]}


def version_document(base: str) -> dict[str, Any]:
    """``GET /v2.1``: this version, with its media types and documentation link."""
    doc = _v21(base)
    doc["links"].append({"href": "http://docs.openstack.org/", "rel": "describedby",
                         "type": "text/html"})
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return {"version": doc}
