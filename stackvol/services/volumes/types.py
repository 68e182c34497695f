"""Volume types: named kinds of volume with extra specs, as Cinder's ``types`` API keeps them.

Volumes record their type by name (``volumes.volume_type``), which is what Nova's os-volumes
view shows; renaming a type renames it on its volumes in the same transaction. A type's
``volume_backend_name`` extra spec chooses the storage backend of its new volumes. A private
type (``is_public`` false) is seen and used only by admins and by the projects an admin gave
access to (Cinder's type access, ``volume_type_projects``); to anyone else it does not exist.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Invalid, NotFound
from stackvol.services.common.ids import is_uuid
from stackvol.services.operations.hosts import disabled_backends
from stackvol.services.volumes import type_queries as queries
from stackvol.storage.registry import Backends, wanted_backend_name

DEFAULT_TYPE = "__DEFAULT__"
# Extra specs every reader may see (Cinder's "user visible" ones); the rest are admin-only.
USER_VISIBLE_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")


@dataclass(slots=True)
class VolumeType:
    id: str
    name: str
    description: str | None
    is_public: bool
    extra_specs: dict[str, str] = field(default_factory=dict)
    qos_specs_id: str | None = None  # its QoS specs (services/qos_specs), if any

    @classmethod
    def from_row(cls, row: Any) -> VolumeType:
        return cls(id=row.id, name=row.name, description=row.description,
                   is_public=bool(row.is_public), extra_specs=dict(row.extra_specs or {}),
                   qos_specs_id=row.qos_specs_id)


def _admin(ctx: RequestContext) -> None:
    policy.authorize(ctx, "volume_type:manage")


def shared_with(conn: Connection, project_id: str | None) -> set[str]:
    """The ids of the private types ``project_id`` was given access to."""
    if project_id is None:
        return set()
    return queries.shared_type_ids(conn, project_id)


def _visible(conn: Connection, ctx: RequestContext, row: Any) -> bool:
    return bool(row.is_public or ctx.is_admin
                or queries.has_access(conn, row.id, ctx.project_id))


def resolve(conn: Connection, ctx: RequestContext, name_or_id: str) -> VolumeType:
    """The type named or numbered ``name_or_id`` that ``ctx`` may use; else ``NotFound``."""
    row = queries.type_by_id(conn, name_or_id) if is_uuid(name_or_id) else None
    if row is None:
        row = queries.type_by_name(conn, name_or_id)
    if row is None or not _visible(conn, ctx, row):
        if is_uuid(name_or_id):
            raise NotFound(f"Volume type {name_or_id} could not be found.")
        raise NotFound(f"Volume type with name {name_or_id} could not be found.")
    return VolumeType.from_row(row)


def default_type(conn: Connection) -> VolumeType:
    row = queries.type_by_name(conn, DEFAULT_TYPE)
    if row is None:
        raise NotFound(f"Volume type with name {DEFAULT_TYPE} could not be found.")
    return VolumeType.from_row(row)


def choose_backend(conn: Connection, backends: Backends, vtype: VolumeType) -> str | None:
    """Where a new volume of ``vtype`` goes, as Cinder's filter scheduler picks on the type's
    ``volume_backend_name``: the one backend that matches, or of several the one holding the
    fewest volumes (the first enabled on a tie); None when no enabled backend matches (or
    an admin disabled the volume services of those that do)."""
    disabled = disabled_backends(conn, backends.names)
    candidates = [name for name in backends.for_type(vtype.extra_specs)
                  if name not in disabled]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    load = queries.volumes_by_backend(conn, candidates)
    return min(candidates, key=lambda name: load.get(name, 0))


def no_valid_backend(vtype: VolumeType) -> str:
    """Why a volume of ``vtype`` has no backend (its ``error_reason``)."""
    wanted = wanted_backend_name(vtype.extra_specs)
    if wanted is None:
        return ("No valid backend was found: the volume service of the default backend is "
                "disabled.")
    return (f"No valid backend was found: volume type {vtype.name} asks for "
            f"volume_backend_name {wanted!r}, which no enabled backend with an enabled "
            f"volume service has.")


def all_types(conn: Connection) -> dict[str, VolumeType]:
    """Every type by name (for views that show type ids)."""
    return {row.name: VolumeType.from_row(row) for row in queries.all_types(conn)}


class VolumeTypeService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reads ----------------------------------------------------------------------------

    async def list(self, ctx: RequestContext, is_public: bool | None = None,
                   extra_specs: Mapping[str, str] | None = None) -> list[VolumeType]:
        """Public types and the private ones shared with the caller's project (for admins,
        every type, or only private ones as ``is_public`` asks), as Cinder lists them."""
        policy.authorize(ctx, "volume_type:list")
        found, shared = await self.db.read(self._list, ctx.project_id)
        if not ctx.is_admin:
            is_public = True
        out = [t for t in found if is_public is None or t.is_public == is_public
               or (is_public and t.id in shared)]
        if extra_specs:
            out = [t for t in out
                   if all(t.extra_specs.get(k) == str(v) for k, v in extra_specs.items())]
        return out

    @staticmethod
    def _list(conn: Connection,
              project_id: str | None) -> tuple[builtins.list[VolumeType], set[str]]:
        return ([VolumeType.from_row(row) for row in queries.all_types(conn)],
                shared_with(conn, project_id))

    async def get(self, ctx: RequestContext, name_or_id: str) -> VolumeType:
        if name_or_id == "default":
            return await self.db.read(default_type)
        return await self.db.read(resolve, ctx, name_or_id)

    async def by_name(self) -> dict[str, VolumeType]:
        return await self.db.read(all_types)

    # --- administration -------------------------------------------------------------------

    async def create(self, ctx: RequestContext, name: str, description: str | None = None,
                     is_public: bool = True,
                     extra_specs: Mapping[str, str] | None = None) -> VolumeType:
        _admin(ctx)
        return await self.db.run(self._create, name, description, is_public,
                                 dict(extra_specs or {}))

    @staticmethod
    def _create(conn: Connection, name: str, description: str | None, is_public: bool,
                extra_specs: dict[str, str]) -> VolumeType:
        if queries.type_name_taken(conn, name):
            raise Conflict(f"Volume Type {name} already exists.")
        type_id = str(uuid.uuid4())
        queries.insert_type(conn, {"id": type_id, "name": name, "description": description,
                                   "is_public": is_public, "extra_specs": extra_specs})
        return VolumeType(type_id, name, description, is_public, extra_specs)

    async def update(self, ctx: RequestContext, type_id: str, name: str | None = None,
                     description: str | None = None,
                     is_public: bool | None = None) -> VolumeType:
        _admin(ctx)
        return await self.db.run(self._update, ctx, type_id, name, description, is_public)

    @staticmethod
    def _update(conn: Connection, ctx: RequestContext, type_id: str, name: str | None,
                description: str | None, is_public: bool | None) -> VolumeType:
        current = resolve(conn, ctx, type_id)
        changes: dict[str, Any] = {}
        if name is not None and name != current.name:
            if current.name == DEFAULT_TYPE:
                raise Invalid("Invalid volume type: The default volume type cannot be renamed.")
            if queries.type_name_taken(conn, name):
                raise Conflict(f"Volume Type {name} already exists.")
            changes["name"] = name
            queries.rename_on_volumes(conn, current.name, name)
        if description is not None:
            changes["description"] = description
        if is_public is not None:
            changes["is_public"] = is_public
        if changes:
            queries.update_type(conn, current.id, changes)
        return resolve(conn, ctx, current.id)

    async def delete(self, ctx: RequestContext, type_id: str) -> None:
        _admin(ctx)
        await self.db.run(self._delete, ctx, type_id)

    @staticmethod
    def _delete(conn: Connection, ctx: RequestContext, type_id: str) -> None:
        current = resolve(conn, ctx, type_id)
        if current.name == DEFAULT_TYPE:
            raise Invalid("Invalid volume type: Default volume type can not be deleted.")
        if queries.volumes_of_type(conn, current.name):
            raise Invalid("Invalid volume type: Target volume type is still in use.")
        queries.delete_type(conn, current.id, [
            f"{kind}_{current.name}" for kind in ("volumes", "snapshots", "gigabytes")])

    # --- access to private types (Cinder's os-volume-type-access) ---------------------------

    async def access(self, ctx: RequestContext, type_id: str) -> tuple[str, builtins.list[str]]:
        """A private type's id and the projects given access to it (oldest first)."""
        policy.authorize(ctx, "volume_type:manage_access")
        return await self.db.read(self._access, ctx, type_id)

    @staticmethod
    def _access(conn: Connection, ctx: RequestContext,
                type_id: str) -> tuple[str, builtins.list[str]]:
        current = resolve(conn, ctx, type_id)
        if current.is_public:
            raise NotFound("Access list not available for public volume types.")
        return current.id, queries.access_projects(conn, current.id)

    async def add_access(self, ctx: RequestContext, type_id: str, project_id: str) -> None:
        await self._change_access(ctx, type_id, project_id, _grant)

    async def remove_access(self, ctx: RequestContext, type_id: str, project_id: str) -> None:
        await self._change_access(ctx, type_id, project_id, _revoke)

    async def _change_access(self, ctx: RequestContext, type_id: str, project_id: str,
                             change: AccessChange) -> None:
        """Both of Cinder's os-volume-type-access actions: the same rule, then ``change`` on
        the private type's id, in one transaction."""
        policy.authorize(ctx, "volume_type:manage_access")

        def on_private(conn: Connection) -> None:
            change(conn, _private(conn, ctx, type_id).id, project_id)

        await self.db.run(on_private)

    # --- extra specs ----------------------------------------------------------------------

    async def set_specs(self, ctx: RequestContext, type_id: str,
                        specs: Mapping[str, str]) -> dict[str, str]:
        """Merge ``specs`` into the type's extra specs; the merged specs."""
        _admin(ctx)
        return await self.db.run(self._change_specs, ctx, type_id, dict(specs), None)

    async def delete_spec(self, ctx: RequestContext, type_id: str, key: str) -> None:
        _admin(ctx)
        await self.db.run(self._change_specs, ctx, type_id, {}, key)

    @staticmethod
    def _change_specs(conn: Connection, ctx: RequestContext, type_id: str,
                      specs: dict[str, str], remove: str | None) -> dict[str, str]:
        current = resolve(conn, ctx, type_id)
        merged = {**current.extra_specs, **specs}
        if remove is not None:
            if remove not in merged:
                raise NotFound(f"Volume Type {current.id} has no extra specs with key "
                               f"{remove}.")
            del merged[remove]
        queries.update_type(conn, current.id, {"extra_specs": merged})
        return merged


# A change of a private type's access list: (connection, type id, project id).
AccessChange = Callable[[Connection, str, str], None]


def _grant(conn: Connection, type_id: str, project_id: str) -> None:
    if not queries.project_exists(conn, project_id):
        raise NotFound(f"Project {project_id} could not be found.")
    if queries.has_access(conn, type_id, project_id):
        raise Conflict(f"Volume type access for {type_id} / {project_id} combination "
                       f"already exists.")
    queries.grant_access(conn, type_id, project_id)


def _revoke(conn: Connection, type_id: str, project_id: str) -> None:
    if not queries.revoke_access(conn, type_id, project_id):
        raise NotFound(f"Volume type access not found for {type_id} / {project_id} "
                       f"combination.")


def _private(conn: Connection, ctx: RequestContext, type_id: str) -> VolumeType:
    """The type whose access changes: only a private one has an access list (Cinder)."""
    current = resolve(conn, ctx, type_id)
    if current.is_public:
        raise Invalid("Invalid volume type: Type access modification is not applicable to "
                      "public volume type.")
    return current
