"""The image schema clients fetch from ``/v2/schemas/image(s)``, and request checks against it.

The same document validates create requests and each value of a JSON patch, so what a client
reads as the contract is what the face enforces.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema import Draft4Validator

from stackvol.http.faults import Fault
from stackvol.services.images.api import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES

_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"


def _text(description: str, max_length: int = 255, read_only: bool = False,
          nullable: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["null", "string"] if nullable else "string",
                           "maxLength": max_length, "description": description}
    if read_only:
        out["readOnly"] = True
    return out


def _size(description: str) -> dict[str, Any]:
    return {"type": ["null", "integer"], "readOnly": True, "description": description}


def _image_id(description: str) -> dict[str, Any]:
    return {"type": ["null", "string"], "pattern": _UUID, "description": description,
            "is_base": False}


PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "pattern": _UUID, "description": "An identifier for the image"},
    "name": _text("Descriptive name for the image"),
    "status": {"type": "string", "readOnly": True, "description": "Status of the image",
               "enum": ["queued", "saving", "active", "killed", "deleted", "uploading",
                        "importing", "pending_delete", "deactivated"]},
    "visibility": {"type": "string", "enum": list(VISIBILITIES),
                   "description": "Scope of image accessibility"},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean",
                  "description": "If true, image will not appear in default image list "
                                 "response."},
    "checksum": _text("md5 hash of image contents.", 32, read_only=True),
    "os_hash_algo": _text("Algorithm to calculate the os_hash_value", 64, read_only=True),
    "os_hash_value": _text("Hexdigest of the image contents using the algorithm specified by "
                           "the os_hash_algo", 128, read_only=True),
    "owner": _text("Owner of the image"),
    "size": _size("Size of image file in bytes"),
    "virtual_size": _size("Virtual size of image in bytes"),
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                         "description": "Format of the container"},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS],
                    "description": "Format of the disk"},
    "created_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of the last image modification"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
             "description": "List of strings related to the image"},
    "direct_url": {"type": "string", "readOnly": True,
                   "description": "URL to access the image file kept in external store"},
    "min_ram": {"type": "integer", "minimum": 0,
                "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer", "minimum": 0,
                 "description": "Amount of disk space (in GB) required to boot image."},
    "self": {"type": "string", "readOnly": True, "description": "An image self url"},
    "file": {"type": "string", "readOnly": True, "description": "An image file url"},
    "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
    "locations": {"type": "array", "items": {"type": "object"},
                  "description": "A set of URLs to access the image file kept in external "
                                 "store"},
    # Common extra properties (Glance ships these in its schema-image.json).
    "kernel_id": _image_id("ID of image stored in Glance that should be used as the kernel "
                           "when booting an AMI-style image."),
    "ramdisk_id": _image_id("ID of image stored in Glance that should be used as the ramdisk "
                            "when booting an AMI-style image."),
    "instance_uuid": {"type": "string", "is_base": False,
                      "description": "Metadata which can be used to record which instance "
                                     "this image is associated with."},
    "architecture": {"type": "string", "is_base": False,
                     "description": "Operating system architecture"},
    "os_distro": {"type": "string", "is_base": False,
                  "description": "Common name of operating system distribution"},
    "os_version": {"type": "string", "is_base": False,
                   "description": "Operating system version as specified by the distributor"},
    "description": {"type": "string", "is_base": False,
                    "description": "A human-readable string describing this image."},
}

LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
         {"rel": "describedby", "href": "{schema}"}]

IMAGE: dict[str, Any] = {
    "name": "image",
    "properties": PROPERTIES,
    "additionalProperties": {"type": "string"},
    "links": LINKS,
}

IMAGES: dict[str, Any] = {
    "name": "images",
    "properties": {
        "images": {"type": "array", "items": IMAGE},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
              {"rel": "describedby", "href": "{schema}"}],
}

_CREATE = Draft4Validator({"type": "object", "properties": PROPERTIES,
                           "additionalProperties": {"type": "string", "maxLength": 65535}})


def _invalid(error: jsonschema.ValidationError) -> Fault:
    where = "".join(f"[{part!r}]" for part in error.path)
    return Fault(400, f"Provided object does not match schema 'image': {error.message}"
                      f"{' at ' + where if where else ''}")


def check_create(body: Any) -> dict[str, Any]:
    """A create request's attributes, or a 400 in Glance's words."""
    if not isinstance(body, dict):
        raise Fault(400, "Body expected in request.")
    for name in body:
        if len(name) > 255:
            raise Fault(400, f"Provided object does not match schema 'image': property name "
                             f"{name[:32]!r}... is longer than 255 characters")
    error = jsonschema.exceptions.best_match(_CREATE.iter_errors(body))
    if error is not None:
        raise _invalid(error)
    for name in ("kernel_id", "ramdisk_id"):
        if body.get(name) is None:
            body.pop(name, None)  # null means "none": nothing to keep
    return body


def check_value(name: str, value: Any) -> None:
    """One attribute's (or extra property's) value in a patch."""
    schema = PROPERTIES.get(name, IMAGE["additionalProperties"])
    error = jsonschema.exceptions.best_match(Draft4Validator(schema).iter_errors(value))
    if error is not None:
        raise _invalid(error)
