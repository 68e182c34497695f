"""Request schemas of ``/servers/{id}/os-volume_attachments``, by microversion."""

from __future__ import annotations

import copy

from stackvol.http.compute.schemas.parameters import BOOLEAN, UUID
from stackvol.http.validation import Schema

_DEVICE = {"type": ["string", "null"],
           "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"}
_TAG = {"type": "string", "pattern": "^[^,/]*$", "minLength": 1, "maxLength": 60}


def _wrap(properties: dict, required: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {"volumeAttachment": {
            "type": "object", "properties": properties, "required": required,
            "additionalProperties": False}},
        "required": ["volumeAttachment"],
        "additionalProperties": False,
    }


_CREATE_21 = {"volumeId": UUID, "device": _DEVICE}
_CREATE_249 = {**_CREATE_21, "tag": _TAG}
_CREATE_279 = {**_CREATE_249, "delete_on_termination": BOOLEAN}

create_v21 = Schema(_wrap(_CREATE_21, ["volumeId"]))
create_v249 = Schema(_wrap(_CREATE_249, ["volumeId"]))
create_v279 = Schema(_wrap(_CREATE_279, ["volumeId"]))

update_v21 = Schema(_wrap({"volumeId": UUID}, ["volumeId"]))
update_v285 = Schema(_wrap({**copy.deepcopy(_CREATE_279), "serverId": UUID, "id": UUID},
                           ["volumeId"]))
