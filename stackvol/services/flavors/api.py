"""Flavors: the sizes a server can be built with. A fixed default set is seeded at first start."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.flavors import queries


@dataclass(slots=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int
    swap: int
    rxtx_factor: float
    is_public: bool
    description: str | None
    extra_specs: dict[str, str] = field(default_factory=dict)
    disabled: bool = False

    @classmethod
    def from_row(cls, row: Any) -> Flavor:
        values = dict(row._mapping)
        values["extra_specs"] = values.get("extra_specs") or {}
        return cls(**values)


# Nova's classic defaults: (flavorid, name, vcpus, ram MiB, root disk GiB).
DEFAULT_FLAVORS = (
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("5", "m1.xlarge", 8, 16384, 160),
)

# Sort keys Nova accepts (each names a column, see queries.SORT_COLUMNS).
SORT_KEYS = tuple(queries.SORT_COLUMNS)
# Accepted for compatibility; every flavor here is enabled and has no timestamps or weight.
CONSTANT_SORT_KEYS = ("created_at", "updated_at", "disabled", "vcpu_weight")


@dataclass(frozen=True, slots=True)
class FlavorQuery:
    """Nova's flavor list filters; ``is_public`` None means public and private (admins)."""

    min_ram: int | None = None
    min_disk: int | None = None
    is_public: bool | None = True
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int = 1000
    marker: str | None = None


def seed_defaults(conn: Connection) -> int:
    """Insert the default flavors that are missing (by id or name); idempotent."""
    taken = queries.taken_ids_and_names(conn)
    added = 0
    for flavor_id, name, vcpus, ram, disk in DEFAULT_FLAVORS:
        if flavor_id in taken or name in taken:
            continue
        queries.insert(conn, dict(
            id=flavor_id, name=name, vcpus=vcpus, ram=ram, disk=disk, ephemeral=0, swap=0,
            rxtx_factor=1.0, is_public=True, description=None, extra_specs={}))
        added += 1
    return added


def load_flavor(conn: Connection, flavor_id: str) -> Flavor:
    row = queries.find(conn, flavor_id)
    if row is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return Flavor.from_row(row)


def flavors_by_id(conn: Connection, ids: set[str]) -> dict[str, Flavor]:
    if not ids:
        return {}
    return {r.id: Flavor.from_row(r) for r in queries.by_ids(conn, ids)}


class FlavorService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def bootstrap(self) -> int:
        return await self.db.run(seed_defaults)

    async def get(self, ctx: RequestContext, flavor_id: str) -> Flavor:
        policy.authorize(ctx, "flavor:list", ctx.project_id)
        return await self.db.read(load_flavor, flavor_id)

    async def list(self, ctx: RequestContext, query: FlavorQuery) -> builtins.list[Flavor]:
        policy.authorize(ctx, "flavor:list", ctx.project_id)
        if not ctx.is_admin:
            query = FlavorQuery(**{**_fields(query), "is_public": True})
        return await self.db.read(self._list, query)

    @staticmethod
    def _list(conn: Connection, query: FlavorQuery) -> builtins.list[Flavor]:
        rows = queries.matching(conn, min_ram=query.min_ram, min_disk=query.min_disk,
                                is_public=query.is_public, sort_key=query.sort_key,
                                descending=query.sort_dir == "desc")
        found = [Flavor.from_row(r) for r in rows]
        if query.marker is not None:
            ids = [f.id for f in found]
            if query.marker not in ids:
                raise Invalid(f"marker [{query.marker}] not found")
            found = found[ids.index(query.marker) + 1:]
        return found[:query.limit]


def _fields(query: FlavorQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in FlavorQuery.__slots__}
