"""``os-volume_upload_image``: a volume action that copies the volume into a new image of the
image service (``openstack image create --volume``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stackvol.http.block_storage.common import at_least
from stackvol.http.block_storage.schemas.common import BOOLEAN, wrapped
from stackvol.http.common import CINDER_BOOL, context, parse_bool
from stackvol.http.responses import json_response
from stackvol.http.state import services
from stackvol.http.timefmt import isotime
from stackvol.http.validation import Schema
from stackvol.services.volumes.types import VolumeType
from stackvol.services.volumes.uploads import Upload, UploadRequest

ACTION = "os-volume_upload_image"
SCHEMA = Schema(wrapped(ACTION, {
    "image_name": {"type": "string", "minLength": 1, "maxLength": 255},
    "force": BOOLEAN,
    "disk_format": {"type": "string"},
    "container_format": {"type": "string"},
    "visibility": {"type": "string"},
    "protected": BOOLEAN,
}, ["image_name"]))


def _type_view(found: VolumeType | None) -> dict[str, Any] | None:
    """The volume's type as Cinder answers it here (the whole record)."""
    if found is None:
        return None
    return {"id": found.id, "name": found.name, "description": found.description,
            "is_public": found.is_public, "extra_specs": found.extra_specs,
            "qos_specs_id": None, "deleted": False, "deleted_at": None}


def _view(request: Request, upload: Upload, vtype: VolumeType | None) -> dict[str, Any]:
    volume, asked = upload.volume, upload.request
    body: dict[str, Any] = {
        "id": volume.id, "updated_at": isotime(volume.updated_at), "status": volume.status,
        "display_description": volume.display_description, "size": volume.size,
        "volume_type": _type_view(vtype), "image_id": upload.image_id,
        "container_format": asked.container_format, "disk_format": asked.disk_format,
        "image_name": asked.image_name}
    if at_least(request, "3.1"):
        body.update(visibility=asked.visibility, protected=asked.protected)
    return body


def _request(request: Request, args: dict[str, Any]) -> UploadRequest:
    # visibility and protected are read from 3.1 on (before, Cinder ignores them).
    newer = at_least(request, "3.1")
    return UploadRequest(
        image_name=args["image_name"],
        disk_format=args.get("disk_format") or "raw",
        container_format=args.get("container_format") or "bare",
        force=parse_bool(args.get("force", False), CINDER_BOOL, "force"),
        visibility=(args.get("visibility") or "private") if newer else None,
        protected=(parse_bool(args.get("protected", False), CINDER_BOOL, "protected") if newer
                   else False))


async def upload_image(request: Request, volume_id: str, args: dict[str, Any]) -> Response:
    SCHEMA.validate({ACTION: args})
    upload = await services(request).volume_uploads.upload(context(request), volume_id,
                                                           _request(request, args))
    types = await services(request).volume_types.by_name()
    vtype = types.get(upload.volume.volume_type or "")
    return json_response({ACTION: _view(request, upload, vtype)}, 202)
