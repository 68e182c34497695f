"""Flavors: the sizes a server can be built with. A fixed default set is seeded at first start."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.db.schema import flavors
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound


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

# Sort keys Nova accepts, mapped to our columns (Nova's names are its database columns).
SORT_KEYS = {
    "flavorid": flavors.c.id, "id": flavors.c.id, "name": flavors.c.name,
    "memory_mb": flavors.c.ram, "root_gb": flavors.c.disk, "vcpus": flavors.c.vcpus,
    "ephemeral_gb": flavors.c.ephemeral, "swap": flavors.c.swap,
    "rxtx_factor": flavors.c.rxtx_factor, "is_public": flavors.c.is_public,
    "description": flavors.c.description,
}
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
    existing = conn.execute(sa.select(flavors.c.id, flavors.c.name)).all()
    taken = {r.id for r in existing} | {r.name for r in existing}
    added = 0
    for flavor_id, name, vcpus, ram, disk in DEFAULT_FLAVORS:
        if flavor_id in taken or name in taken:
            continue
        conn.execute(flavors.insert().values(
            id=flavor_id, name=name, vcpus=vcpus, ram=ram, disk=disk, ephemeral=0, swap=0,
            rxtx_factor=1.0, is_public=True, description=None, extra_specs={}))
        added += 1
    return added


def load_flavor(conn: Connection, flavor_id: str) -> Flavor:
    row = conn.execute(sa.select(flavors).where(flavors.c.id == flavor_id)).first()
    if row is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return Flavor.from_row(row)


def flavors_by_id(conn: Connection, ids: set[str]) -> dict[str, Flavor]:
    if not ids:
        return {}
    rows = conn.execute(sa.select(flavors).where(flavors.c.id.in_(sorted(ids))))
    return {r.id: Flavor.from_row(r) for r in rows}


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
        stmt = sa.select(flavors)
        if query.min_ram is not None:
            stmt = stmt.where(flavors.c.ram >= query.min_ram)
        if query.min_disk is not None:
            stmt = stmt.where(flavors.c.disk >= query.min_disk)
        if query.is_public is not None:
            stmt = stmt.where(flavors.c.is_public == query.is_public)
        column = SORT_KEYS.get(query.sort_key, flavors.c.id)
        order = [column.desc() if query.sort_dir == "desc" else column.asc()]
        if column is not flavors.c.id:
            order.append(flavors.c.id.asc())
        found = [Flavor.from_row(r) for r in conn.execute(stmt.order_by(*order))]
        if query.marker is not None:
            ids = [f.id for f in found]
            if query.marker not in ids:
                raise Invalid(f"marker [{query.marker}] not found")
            found = found[ids.index(query.marker) + 1:]
        return found[:query.limit]


def _fields(query: FlavorQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in FlavorQuery.__slots__}
