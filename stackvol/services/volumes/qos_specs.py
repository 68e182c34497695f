"""QoS specs: named limits a volume type carries (Cinder's ``qos-specs``).

A spec's ``consumer`` says who enforces it: ``front-end`` (the hypervisor: the libvirt driver
turns ``total_bytes_sec``, ``read_iops_sec``... into the disk's ``<iotune>``), ``back-end``
(the storage; our backends have no such knob, as many Cinder drivers) or ``both``. A volume
type points at one spec (``volume_types.qos_specs_id``); the connection info of its volumes
carries the front-end specs as ``data.qos_specs``, as Cinder's initialize_connection does.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Invalid, NotFound
from stackvol.services.volumes import type_queries as queries

CONSUMERS = ("front-end", "back-end", "both")
DEFAULT_CONSUMER = "back-end"  # Cinder's: a spec without one is the storage's business
# Consumers whose specs the hypervisor applies.
FRONT_END = ("front-end", "both")
# Cinder's per-GB keys: ``<key>_per_gb`` times the volume's size (at least ``<key>_per_gb_min``).
PER_GB = "_per_gb"
PER_GB_MIN = "_per_gb_min"


@dataclass(slots=True)
class QosSpec:
    id: str
    name: str
    consumer: str
    specs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> QosSpec:
        return cls(id=row.id, name=row.name, consumer=row.consumer,
                   specs=dict(row.specs or {}))


@dataclass(frozen=True, slots=True)
class Association:
    """A volume type a spec is associated with."""

    id: str
    name: str


def _check_consumer(consumer: Any) -> str:
    if consumer not in CONSUMERS:
        raise Invalid(f"Invalid qos specs: Valid consumer of QoS specs are: {list(CONSUMERS)}")
    return str(consumer)


def _strings(specs: Mapping[str, Any]) -> dict[str, str]:
    # Cinder keeps every value as text, whatever JSON type it was sent as.
    return {str(k): v if isinstance(v, str) else str(v) for k, v in specs.items()}


def load(conn: Connection, specs_id: str) -> QosSpec:
    row = queries.spec(conn, specs_id)
    if row is None:
        raise NotFound(f"No such QoS spec {specs_id}.")
    return QosSpec.from_row(row)


def front_end_specs(conn: Connection, volume_id: str) -> dict[str, str] | None:
    """What the hypervisor must enforce on ``volume_id`` (its type's front-end/both specs,
    per-GB keys scaled to its size), or None: Cinder's ``qos_specs`` in connection info."""
    row = queries.volume_qos(conn, volume_id)
    if row is None or row.consumer not in FRONT_END:
        return None
    return scaled(row.specs or {}, row.size)


def front_end_spec_id(conn: Connection, type_name: str) -> str | None:
    """The id of the QoS spec a type carries if the hypervisor applies it (else None)."""
    row = queries.type_spec(conn, type_name)
    return row.id if row is not None and row.consumer in FRONT_END else None


def scaled(specs: Mapping[str, str], size_gb: int) -> dict[str, str]:
    """``<key>_per_gb`` becomes ``<key>`` = value * size (no less than ``<key>_per_gb_min``),
    as Cinder computes fixed limits for the volume at hand."""
    out = {k: v for k, v in specs.items() if not (k.endswith(PER_GB) or k.endswith(PER_GB_MIN))}
    for key, value in specs.items():
        if not key.endswith(PER_GB):
            continue
        base = key[: -len(PER_GB)]
        try:
            limit = int(float(value) * size_gb)
            floor = int(float(specs.get(base + PER_GB_MIN, 0)))
        except ValueError:
            continue  # not a number: nothing sensible to apply
        out[base] = str(max(limit, floor))
    return out


class QosSpecService:
    """Admin-only CRUD of QoS specs and their associations with volume types."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, ctx: RequestContext) -> list[QosSpec]:
        policy.authorize(ctx, "volume_extension:qos_specs_manage:get_all")
        rows = await self.db.read(queries.all_specs)
        return [QosSpec.from_row(row) for row in rows]

    async def get(self, ctx: RequestContext, specs_id: str) -> QosSpec:
        policy.authorize(ctx, "volume_extension:qos_specs_manage:get")
        return await self.db.read(load, specs_id)

    async def create(self, ctx: RequestContext, name: str,
                     specs: Mapping[str, Any]) -> QosSpec:
        """A new spec; ``specs`` may hold ``consumer`` (default back-end) beside the keys."""
        policy.authorize(ctx, "volume_extension:qos_specs_manage:create")
        values = _strings({k: v for k, v in specs.items() if k not in ("name", "consumer")})
        consumer = _check_consumer(specs.get("consumer", DEFAULT_CONSUMER))
        return await self.db.run(self._create, name, consumer, values)

    @staticmethod
    def _create(conn: Connection, name: str, consumer: str, specs: dict[str, str]) -> QosSpec:
        if queries.spec_name_taken(conn, name):
            raise Conflict(f"QoS Specs {name} already exists.")
        spec = QosSpec(str(uuid.uuid4()), name, consumer, specs)
        queries.insert_spec(conn, spec.id, name, consumer, specs)
        return spec

    async def set_keys(self, ctx: RequestContext, specs_id: str,
                       specs: Mapping[str, Any]) -> None:
        """Merge keys in (``consumer`` changes the consumer; a null value drops its key)."""
        policy.authorize(ctx, "volume_extension:qos_specs_manage:update")
        consumer = _check_consumer(specs["consumer"]) if "consumer" in specs else None
        await self.db.run(self._set_keys, specs_id, consumer,
                          {k: v for k, v in specs.items() if k != "consumer"})

    @staticmethod
    def _set_keys(conn: Connection, specs_id: str, consumer: str | None,
                  changes: dict[str, Any]) -> None:
        current = load(conn, specs_id)
        merged = {**current.specs, **_strings({k: v for k, v in changes.items()
                                               if v is not None})}
        for key in (k for k, v in changes.items() if v is None):
            merged.pop(key, None)
        queries.update_spec(conn, specs_id, merged, consumer or current.consumer)

    async def delete_keys(self, ctx: RequestContext, specs_id: str, keys: Iterable[str]) -> None:
        policy.authorize(ctx, "volume_extension:qos_specs_manage:delete")
        await self.db.run(self._delete_keys, specs_id, list(keys))

    @staticmethod
    def _delete_keys(conn: Connection, specs_id: str, keys: builtins.list[str]) -> None:
        current = load(conn, specs_id)
        for key in keys:
            if key not in current.specs:
                raise NotFound(f"QoS spec {specs_id} has no spec with key {key}.")
            del current.specs[key]
        queries.update_spec(conn, specs_id, current.specs)

    async def delete(self, ctx: RequestContext, specs_id: str, force: bool) -> None:
        """Delete a spec; one still associated with types only when ``force`` (which
        disassociates them), as Cinder."""
        policy.authorize(ctx, "volume_extension:qos_specs_manage:delete")
        await self.db.run(self._delete, specs_id, force)

    @staticmethod
    def _delete(conn: Connection, specs_id: str, force: bool) -> None:
        load(conn, specs_id)
        if _associations(conn, specs_id) and not force:
            raise Invalid("Qos specs still in use.")
        _disassociate(conn, specs_id)
        queries.delete_spec(conn, specs_id)

    # --- associations with volume types ---------------------------------------------------

    async def associations(self, ctx: RequestContext, specs_id: str) -> builtins.list[Association]:
        policy.authorize(ctx, "volume_extension:qos_specs_manage:get_all")

        def read(conn: Connection) -> builtins.list[Association]:
            load(conn, specs_id)
            return _associations(conn, specs_id)

        return await self.db.read(read)

    async def associate(self, ctx: RequestContext, specs_id: str, type_id: str) -> None:
        policy.authorize(ctx, "volume_extension:qos_specs_manage:update")
        await self.db.run(self._associate, specs_id, type_id)

    @staticmethod
    def _associate(conn: Connection, specs_id: str, type_id: str) -> None:
        load(conn, specs_id)
        current = _type_qos(conn, type_id)
        if current is not None and current != specs_id:
            raise Invalid(f"Invalid volume type: Type {type_id} is already associated with "
                          f"another qos specs: {current}")
        queries.set_type_qos(conn, specs_id, type_id=type_id)

    async def disassociate(self, ctx: RequestContext, specs_id: str,
                           type_id: str | None = None) -> None:
        """Take the spec off one volume type (or, with none named, off every type)."""
        policy.authorize(ctx, "volume_extension:qos_specs_manage:update")

        def change(conn: Connection) -> None:
            load(conn, specs_id)
            if type_id is not None:
                _type_qos(conn, type_id)  # 404 for a type that does not exist
            _disassociate(conn, specs_id, type_id)

        await self.db.run(change)


def _associations(conn: Connection, specs_id: str) -> list[Association]:
    return [Association(row.id, row.name) for row in queries.associated_types(conn, specs_id)]


def _type_qos(conn: Connection, type_id: str) -> str | None:
    """The QoS spec id of volume type ``type_id``; ``NotFound`` for no such type."""
    row = queries.type_qos_row(conn, type_id)
    if row is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return row.qos_specs_id


def _disassociate(conn: Connection, specs_id: str, type_id: str | None = None) -> None:
    queries.set_type_qos(conn, None, type_id=type_id, carrying=specs_id)
