"""Keypairs (Nova's ``os-keypairs``): public keys and certificates a user keeps by name, to be
named by servers (``key_name``). They belong to a user, not a project; an admin may act on
another user's. Generated keys hand their private key to the caller once and keep none of it.
The count a user holds is limited by the ``key_pairs`` quota of the caller's project."""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Conflict, Invalid, NotFound, OverQuota
from stackvol.services.keypairs import key_material, queries
from stackvol.services.quotas.api import COMPUTE, UNLIMITED, QuotaService, project_limits
from stackvol.timeutils import utcnow

TYPES = (key_material.SSH, key_material.X509)


@dataclass(frozen=True, slots=True)
class KeyPair:
    id: int
    user_id: str
    name: str
    type: str
    public_key: str
    fingerprint: str
    created_at: dt.datetime
    updated_at: dt.datetime | None


def _not_found(name: str, user_id: str) -> NotFound:
    return NotFound(f"Keypair {name} not found for user {user_id}")


def _find(conn: Connection, user_id: str, name: str) -> KeyPair | None:
    row = queries.find(conn, user_id, name)
    return KeyPair(**row._mapping) if row is not None else None


def check_key_name(conn: Connection, user_id: str, key_name: str | None) -> None:
    """A server's ``key_name`` must name one of its user's keypairs (Nova's 400)."""
    if key_name is not None and _find(conn, user_id, key_name) is None:
        raise Invalid("Invalid key_name provided.")


class KeyPairService:
    """Creating, importing, listing, showing and deleting a user's keypairs."""

    def __init__(self, db: Database, quotas: QuotaService) -> None:
        self.db = db
        self.quotas = quotas

    @staticmethod
    def _owner(ctx: RequestContext, action: str, user_id: str | None) -> str:
        """The user acted on: the caller, or (admins, by default policy) the one named."""
        owner = user_id or ctx.user_id
        policy.authorize(ctx, f"keypair:{action}", ctx.project_id, user_id=owner)
        return owner

    async def create(self, ctx: RequestContext, name: str, key_type: str = key_material.SSH,
                     public_key: str | None = None,
                     user_id: str | None = None) -> tuple[KeyPair, str | None]:
        """Import ``public_key``, or generate a key when there is none: the keypair and the
        generated private key (``None`` for an import)."""
        owner = self._owner(ctx, "create", user_id)
        if public_key is not None:
            material = None
            fingerprint = key_material.fingerprint(key_type, public_key)
        else:
            # RSA generation takes tens of milliseconds: off the event loop.
            material = await asyncio.to_thread(key_material.generate, key_type, owner)
            public_key, fingerprint = material.public_key, material.fingerprint
        values = {"user_id": owner, "name": name, "type": key_type, "public_key": public_key,
                  "fingerprint": fingerprint, "created_at": utcnow(), "updated_at": None}
        try:
            created = await self.db.run(self._insert, ctx.project_id, values)
        except sa.exc.IntegrityError:  # a concurrent create of the same name won
            raise _exists(name) from None
        return created, material.private_key if material else None

    def _insert(self, conn: Connection, project_id: str, values: dict) -> KeyPair:
        owner, name = values["user_id"], values["name"]
        if _find(conn, owner, name) is not None:
            raise _exists(name)
        limit = project_limits(conn, project_id, self.quotas.defaults, COMPUTE)["key_pairs"]
        # Counted only under a limit: an unlimited quota costs no query.
        if limit != UNLIMITED and queries.count_of(conn, owner) + 1 > limit:
            raise OverQuota("Quota exceeded, too many key pairs.")
        return KeyPair(id=queries.insert(conn, values), **values)

    async def list(self, ctx: RequestContext, user_id: str | None = None,
                   limit: int | None = None,
                   marker: str | None = None) -> builtins.list[KeyPair]:
        """The user's keypairs by name, a page after ``marker`` (a name) when asked."""
        owner = self._owner(ctx, "list", user_id)
        return await self.db.read(self._list, owner, limit, marker)

    @staticmethod
    def _list(conn: Connection, owner: str, limit: int | None,
              marker: str | None) -> builtins.list[KeyPair]:
        if marker is not None and _find(conn, owner, marker) is None:
            raise Invalid(f"Marker {marker} could not be found.")
        return [KeyPair(**row._mapping) for row in queries.page_of(conn, owner, marker, limit)]

    async def get(self, ctx: RequestContext, name: str, user_id: str | None = None) -> KeyPair:
        owner = self._owner(ctx, "show", user_id)
        found = await self.db.read(_find, owner, name)
        if found is None:
            raise _not_found(name, owner)
        return found

    async def delete(self, ctx: RequestContext, name: str, user_id: str | None = None) -> None:
        owner = self._owner(ctx, "delete", user_id)
        deleted = await self.db.run(queries.delete, owner, name)
        if not deleted:
            raise _not_found(name, owner)


def _exists(name: str) -> Conflict:
    return Conflict(f"Key pair '{name}' already exists.")
