"""Retype (Cinder's ``os-retype``): a volume takes another volume type where it is.

A volume keeps its bytes on its backend, so a new type fits when that backend is one the type
may place volumes on (a type naming no ``volume_backend_name`` fits any, as Cinder's capability
filter passes it). Then the type changes in one compare-and-swap, with the new type's QoS
(looked up through the type on every connection) and per-type quotas; usage is counted, so the
old type's drops by the same row. A type that would need the bytes moved is refused: with
``migration_policy`` ``never`` as Cinder's scheduler refuses it, with ``on-demand`` because
this cloud does not migrate volumes (Cinder answers the same 400 where migration is
unsupported).
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid
from stackvol.services.common.records import Volume
from stackvol.services.common.status import VolumeStatus
from stackvol.services.quotas.api import QuotaService
from stackvol.services.volumes import queries
from stackvol.services.volumes.qos_specs import front_end_spec_id
from stackvol.services.volumes.queries import read_volume
from stackvol.services.volumes.types import VolumeType
from stackvol.services.volumes.types import resolve as resolve_type
from stackvol.storage.registry import Backends, wanted_backend_name

log = logging.getLogger(__name__)

MIGRATION_POLICIES = ("never", "on-demand")
RETYPABLE = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE)
# Migration statuses that mean no migration is running (Cinder's AVAILABLE_MIGRATION_STATUS).
NOT_MIGRATING = (None, "deleting", "error", "success")


class RetypeService:
    def __init__(self, db: Database, backends: Backends, quotas: QuotaService) -> None:
        self.db = db
        self.backends = backends
        self.quotas = quotas

    async def retype(self, ctx: RequestContext, volume_id: str, new_type: str,
                     migration_policy: str | None = None) -> None:
        """Give the volume the type named or numbered ``new_type``, or refuse (``Invalid``)."""
        migration_policy = migration_policy or "never"
        if migration_policy not in MIGRATION_POLICIES:
            raise Invalid("Invalid input received: migration_policy must be 'on-demand' or "
                          "'never'.")
        await self.db.run(self._retype, ctx, volume_id, new_type, migration_policy)
        log.info("volume %s retyped to %s", volume_id, new_type)

    def _retype(self, conn: Connection, ctx: RequestContext, volume_id: str, new_type: str,
                migration_policy: str) -> None:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:retype", volume.project_id)
        target = resolve_type(conn, ctx, new_type)
        _check_volume(conn, volume, target)
        self._check_backend(volume, target, migration_policy)
        self.quotas.enforce(conn, volume.project_id, target.name, volumes=1,
                            gigabytes=volume.size, type_only=True)
        # Compare-and-swap on the status and type just read (the status stays as it is).
        if not queries.change_type(conn, volume, target.name):
            raise Invalid(f"Invalid volume: Volume {volume_id} changed meanwhile; try again.")

    def _check_backend(self, volume: Volume, target: VolumeType, migration_policy: str) -> None:
        wanted = wanted_backend_name(target.extra_specs)
        if wanted is None or volume.backend in self.backends.for_type(target.extra_specs):
            return
        if migration_policy == "never":
            raise Invalid(f"Invalid volume: Current backend not valid for volume {volume.id} "
                          f"with type {target.name} (it asks for volume_backend_name "
                          f"{wanted!r}), migration not allowed.")
        raise Invalid(f"Invalid volume: Retyping volume {volume.id} to type {target.name} "
                      f"needs it migrated to a backend with volume_backend_name {wanted!r}, "
                      f"and this cloud does not migrate volumes.")


def _check_volume(conn: Connection, volume: Volume, target: VolumeType) -> None:
    """Cinder's conditions on the volume (its status, no migration running, another type,
    front-end QoS unchanged while attached), each refused with its reason."""
    why = None
    if volume.status not in RETYPABLE:
        why = f"its status is {volume.status}"
    elif volume.migration_status not in NOT_MIGRATING:
        why = f"its migration status is {volume.migration_status}"
    elif target.name == volume.volume_type:
        why = f"it already has type {target.name}"
    elif volume.status == VolumeStatus.IN_USE and (
            front_end_spec_id(conn, target.name)
            != front_end_spec_id(conn, volume.volume_type or "")):
        why = "it is in-use and the front-end QoS specs would change"
    if why is not None:
        raise Invalid(f"Invalid volume: Retype needs volume to be in available or in-use "
                      f"state, not be part of an active migration, requested type has to be "
                      f"different from the one of the volume, and for in-use volumes front-end "
                      f"qos specs cannot change ({why}).")
    if str(target.extra_specs.get("multiattach", "")).lower() == "<is> true":
        raise Invalid("Invalid input received: Multiattach volumes are not supported.")
