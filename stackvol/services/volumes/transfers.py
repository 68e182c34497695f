"""Volume transfers: a project offers one of its volumes, another project takes it with a key.

Creating a transfer moves the volume ``available`` → ``awaiting-transfer`` (a compare-and-swap,
so nothing else can start on it) and answers the auth key once; only a salted HMAC of the key is
kept, as Cinder keeps ``salt`` and ``crypt_hash``. Accepting checks the key, the receiver's
quotas and moves the volume (and, unless ``no_snapshots``, its snapshots) to the receiver in
one transaction: the giver's usage drops and the receiver's grows by the same rows, because
usage is counted, never stored. Cancelling puts the volume back to ``available``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection, Row

from stackvol.db.engine import Database
from stackvol.db.transitions import VOLUME, move
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, NotFound
from stackvol.services.common.listing import ListQuery
from stackvol.services.common.status import VolumeStatus
from stackvol.services.quotas.api import QuotaService
from stackvol.services.volumes import queries
from stackvol.services.volumes.queries import TRANSFER_VOLUME_EXISTS, read_volume
from stackvol.timeutils import utcnow

# Cinder's defaults: an 8-character salt, a 16-character key a person can type (hex digits).
SALT_LENGTH = 8
KEY_LENGTH = 16
SORT_KEYS = {"id": "id", "created_at": "created_at", "name": "display_name",
             "display_name": "display_name", "volume_id": "volume_id"}


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    volume_id: str
    project_id: str  # the giver's
    user_id: str
    display_name: str | None
    no_snapshots: bool
    created_at: dt.datetime
    updated_at: dt.datetime | None
    auth_key: str | None = None  # only in the answer to a create

    @classmethod
    def from_values(cls, values: Mapping[Any, Any]) -> Transfer:
        """From a row's mapping (or the values just inserted)."""
        return cls(id=values["id"], volume_id=values["volume_id"],
                   project_id=values["project_id"], user_id=values["user_id"],
                   display_name=values["display_name"],
                   no_snapshots=bool(values["no_snapshots"]),
                   created_at=values["created_at"], updated_at=values["updated_at"])


def crypt_hash(salt: str, auth_key: str) -> str:
    """The stored form of an auth key: an HMAC keyed by the transfer's salt."""
    return hmac.new(salt.encode(), auth_key.encode(), hashlib.sha256).hexdigest()


def _not_found(transfer_id: str) -> NotFound:
    return NotFound(f"Transfer {transfer_id} could not be found.")


def _read(conn: Connection, ctx: RequestContext | None,
          transfer_id: str) -> tuple[Transfer, Row[Any]]:
    """The transfer and its stored hash; ``ctx`` None (the receiver) may see any."""
    row = queries.transfer(conn, transfer_id)
    if row is None or not (ctx is None or ctx.is_admin or row.project_id == ctx.project_id):
        raise _not_found(transfer_id)
    return Transfer.from_values(row._mapping), row


class TransferService:
    """Cinder's transfer API: create, list, show, accept and cancel (delete)."""

    def __init__(self, db: Database, quotas: QuotaService) -> None:
        self.db = db
        self.quotas = quotas

    async def create(self, ctx: RequestContext, volume_id: str, name: str | None,
                     no_snapshots: bool = False) -> Transfer:
        """Offer the volume; the answer holds the auth key, which is never shown again."""
        return await self.db.run(self._create, ctx, volume_id, name, no_snapshots)

    @staticmethod
    def _create(conn: Connection, ctx: RequestContext, volume_id: str, name: str | None,
                no_snapshots: bool) -> Transfer:
        volume = read_volume(conn, ctx, volume_id)
        policy.authorize(ctx, "volume:create_transfer", volume.project_id)
        if not move(conn, VOLUME, volume_id, [VolumeStatus.AVAILABLE],
                    VolumeStatus.AWAITING_TRANSFER):
            raise Invalid("Invalid volume: status must be available")
        if not no_snapshots:
            # After the swap: a snapshot create holding the volume row is seen here.
            busy = queries.unavailable_snapshot(conn, volume_id)
            if busy is not None:
                raise Invalid(f"Invalid snapshot: snapshot: {busy} status must be "
                              f"available")
        salt = secrets.token_hex(SALT_LENGTH // 2)
        auth_key = secrets.token_hex(KEY_LENGTH // 2)
        values: dict[str, Any] = {"id": str(uuid.uuid4()), "volume_id": volume_id,
                  "project_id": volume.project_id, "user_id": ctx.user_id,
                  "display_name": name, "salt": salt, "crypt_hash": crypt_hash(salt, auth_key),
                  "no_snapshots": no_snapshots, "created_at": utcnow(), "updated_at": None}
        queries.insert_transfer(conn, values)
        return replace(Transfer.from_values(values), auth_key=auth_key)

    async def get(self, ctx: RequestContext, transfer_id: str) -> Transfer:
        transfer = (await self.db.read(_read, ctx, transfer_id))[0]
        policy.authorize(ctx, "volume:get_transfer", transfer.project_id)
        return transfer

    async def query(self, ctx: RequestContext, query: ListQuery) -> list[Transfer]:
        """A page of the caller's transfers (every project's for an admin asking so)."""
        policy.authorize(ctx, "volume:get_all_transfers", ctx.project_id)
        if query.project_id != ctx.project_id and not ctx.is_admin:
            query = replace(query, project_id=ctx.project_id)
        query = replace(query, where=[*query.where, TRANSFER_VOLUME_EXISTS])
        rows = await self.db.read(queries.transfer_page, query)
        return [Transfer.from_values(row._mapping) for row in rows]

    async def accept(self, ctx: RequestContext, transfer_id: str, auth_key: str) -> Transfer:
        """Give the volume (and its snapshots) to the caller's project, quotas permitting."""
        policy.authorize(ctx, "volume:accept_transfer", ctx.project_id)
        return await self.db.run(self._accept, ctx, transfer_id, auth_key)

    def _accept(self, conn: Connection, ctx: RequestContext, transfer_id: str,
                auth_key: str) -> Transfer:
        transfer, row = _read(conn, None, transfer_id)
        if not hmac.compare_digest(crypt_hash(row.salt, auth_key), row.crypt_hash):
            raise Invalid(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid "
                          f"auth key.")
        volume = read_volume(conn, RequestContext.system(), transfer.volume_id)
        if volume.status != VolumeStatus.AWAITING_TRANSFER:
            raise Invalid(f"Invalid volume: Transfer {transfer_id}: Volume id "
                          f"{volume.id} in unexpected state {volume.status}, expected "
                          f"awaiting-transfer")
        moving = [] if transfer.no_snapshots else queries.snapshot_sizes(conn, volume.id)
        # The receiver takes the volume (and snapshots) on: over quota, nothing moves.
        self.quotas.enforce(conn, ctx.project_id, volume.volume_type, volumes=1,
                            snapshots=len(moving),
                            gigabytes=volume.size + sum(moving),
                            volume_size=volume.size)
        if not queries.delete_transfer(conn, transfer_id):
            raise _not_found(transfer_id)  # accepted or cancelled meanwhile
        owner = {"project_id": ctx.project_id, "user_id": ctx.user_id}
        if not move(conn, VOLUME, volume.id, [VolumeStatus.AWAITING_TRANSFER],
                    VolumeStatus.AVAILABLE, **owner):
            raise Invalid(f"Invalid volume: Volume {volume.id} changed status; try again.")
        if not transfer.no_snapshots:
            queries.give_snapshots(conn, volume.id, owner)
        return transfer

    async def delete(self, ctx: RequestContext, transfer_id: str) -> None:
        """Cancel the transfer: the volume is the giver's and ``available`` again."""
        await self.db.run(self._delete, ctx, transfer_id)

    @staticmethod
    def _delete(conn: Connection, ctx: RequestContext, transfer_id: str) -> None:
        transfer, _ = _read(conn, ctx, transfer_id)
        policy.authorize(ctx, "volume:delete_transfer", transfer.project_id)
        if not queries.delete_transfer(conn, transfer_id):
            raise _not_found(transfer_id)
        move(conn, VOLUME, transfer.volume_id, [VolumeStatus.AWAITING_TRANSFER],
             VolumeStatus.AVAILABLE)

