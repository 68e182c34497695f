"""How a volume type reads on the Block Storage API (Cinder's view)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stackvol.http.common import context
from stackvol.services.volumes.types import USER_VISIBLE_SPECS, VolumeType


def volume_type(request: Request, found: VolumeType, qos: bool = True,
                access: bool = True) -> dict[str, Any]:
    """Cinder's type view. Its create answer has no ``qos_specs_id`` and its update answer
    neither that nor the type-access extension's ``is_public`` (Tempest's schemas hold them to
    it): ``qos`` and ``access`` say whether to add them."""
    admin = context(request).is_admin
    specs = found.extra_specs if admin else {
        k: val for k, val in found.extra_specs.items() if k in USER_VISIBLE_SPECS}
    body: dict[str, Any] = {
        "id": found.id,
        "name": found.name,
        "is_public": found.is_public,
        "description": found.description,
        "extra_specs": specs,
    }
    if access:
        body["os-volume-type-access:is_public"] = found.is_public
    if admin and qos:
        body["qos_specs_id"] = found.qos_specs_id
    return body
