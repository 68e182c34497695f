"""An image as Glance v2 shows it: its attributes, links relative to the API root, and its
extra properties beside them at the top level."""

from __future__ import annotations

from typing import Any

from stackvol.http.timefmt import isotime_z
from stackvol.services.images.api import Image

SCHEMA = "/v2/schemas/image"


def image(found: Image) -> dict[str, Any]:
    href = f"/v2/images/{found.id}"
    body: dict[str, Any] = {
        "id": found.id, "name": found.name, "status": found.status,
        "visibility": found.visibility, "protected": found.protected,
        "os_hidden": found.os_hidden, "checksum": found.checksum,
        "os_hash_algo": found.os_hash_algo, "os_hash_value": found.os_hash_value,
        "size": found.size, "virtual_size": found.virtual_size, "min_disk": found.min_disk,
        "min_ram": found.min_ram, "disk_format": found.disk_format,
        "container_format": found.container_format, "owner": found.owner,
        "created_at": isotime_z(found.created_at),
        "updated_at": isotime_z(found.updated_at or found.created_at),
        "tags": list(found.tags), "self": href, "file": f"{href}/file", "schema": SCHEMA,
    }
    for key, value in found.properties.items():
        body.setdefault(key, value)
    return body
