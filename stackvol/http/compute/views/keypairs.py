"""How a keypair reads on the Compute API (``nova/api/openstack/compute/keypairs.py``): the
list's short form, the create answer (with the generated private key), the full show; ``type``
from 2.2."""

from __future__ import annotations

from typing import Any

from stackvol.http.microversion import APIVersion, v
from stackvol.services.keypairs.api import KeyPair

V2_2 = v("2.2")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # as Nova serialises the keypair's own datetimes


def summary(api_version: APIVersion, keypair: KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {"name": keypair.name, "public_key": keypair.public_key,
                            "fingerprint": keypair.fingerprint}
    if api_version >= V2_2:
        body["type"] = keypair.type
    return body


def created(api_version: APIVersion, keypair: KeyPair,
            private_key: str | None) -> dict[str, Any]:
    body = {**summary(api_version, keypair), "user_id": keypair.user_id}
    if private_key is not None:
        body["private_key"] = private_key
    return body


def show(api_version: APIVersion, keypair: KeyPair) -> dict[str, Any]:
    return {
        **summary(api_version, keypair),
        "user_id": keypair.user_id, "id": keypair.id, "deleted": False, "deleted_at": None,
        "created_at": keypair.created_at.strftime(TIME_FORMAT),
        "updated_at": keypair.updated_at.strftime(TIME_FORMAT) if keypair.updated_at else None,
    }
