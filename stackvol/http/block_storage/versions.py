"""Block Storage version documents and the microversion range this face honours."""

from __future__ import annotations

from typing import Any

from stackvol.http.microversion import VersionRange, v

# 3.71 (os-extend_volume_completion) is the newest Cinder microversion whose changes apply to
# what this face serves; endpoints it does not serve (groups, backups...) are absent at any.
VOLUME_VERSIONS = VersionRange("volume", v("3.0"), v("3.71"))
UPDATED = "2023-08-31T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json",
                "type": "application/vnd.openstack.volume+json;version=3"}]


def versions_document(face_base: str) -> dict[str, Any]:
    """Cinder's ``{"versions": [...]}`` (the root answers it with 300, ``/v3/`` with 200)."""
    return {"versions": [{
        "id": "v3.0",
        "status": "CURRENT",
        "version": str(VOLUME_VERSIONS.maximum),
        "min_version": str(VOLUME_VERSIONS.minimum),
        "updated": UPDATED,
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": f"{face_base}/v3/"},
        ],
        "media-types": MEDIA_TYPES,
    }]}
