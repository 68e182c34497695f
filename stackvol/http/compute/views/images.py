"""How an image reads through Compute's image proxy (``/images``, removed at 2.36): Nova's
summary of the Image service's record, with its status and progress in Nova's words."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.compute.views.flavors import links
from stackvol.http.timefmt import isotime_z
from stackvol.services.images.api import Image

# Image status -> Nova's; anything else reads as UNKNOWN.
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "uploading": "SAVING",
          "importing": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED",
          "killed": "ERROR", "deactivated": "ERROR"}
PROGRESS = {"active": 100, "saving": 50, "queued": 25}
ALTERNATE_TYPE = "application/vnd.openstack.image"


def _links(request: Request, image: Image) -> list[dict[str, str]]:
    # The alternate link points at the image in the Image service (``/image`` on this host).
    alternate = {"rel": "alternate", "type": ALTERNATE_TYPE,
                 "href": f"{request.url.scheme}://{request.url.netloc}/image/images/{image.id}"}
    return [*links(request, "images", image.id), alternate]


def summary(request: Request, image: Image) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": _links(request, image)}


def detail(request: Request, image: Image) -> dict[str, Any]:
    body = summary(request, image)
    body.update({
        "minRam": image.min_ram,
        "minDisk": image.min_disk,
        "metadata": dict(image.properties),
        "created": isotime_z(image.created_at),
        "updated": isotime_z(image.updated_at or image.created_at),
        "status": STATUS.get(image.status, "UNKNOWN"),
        "progress": PROGRESS.get(image.status, 0),
        "OS-EXT-IMG-SIZE:size": image.size,
    })
    return body
