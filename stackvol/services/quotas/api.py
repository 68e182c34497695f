"""Quotas: limits per project and resource, enforced by counting what exists.

Nothing is ever added to or taken from a usage counter, so there is nothing to drift: a create
counts what the project holds in the same transaction that inserts the new row. Concurrent
creates for one project count one after another: SQLite has a single writer, and on PostgreSQL
each create first locks the project's ``quota_locks`` row.

Counting stays cheap however much a project holds:

- a resource whose limit is unlimited (-1, the shipped default) is not counted at all;
- against a finite limit L at most L + 1 rows are read: a count stops at L + 1 (enough to
  know it is over), and so does a sum of sizes, because every row adds at least 1, so a sum
  cut off after L + 1 rows is already over L. One pass per table gives both the count and the
  sum. The exact figure is counted only to word the refusal of a project already past L.
- the reads go through indexes that hold what they need: ``volumes (project_id, volume_type,
  size)`` answers the volume count and size sum (also per type) from the index alone.

What remains is min(rows, L + 1) index entries per limited resource: a project far below a
large finite limit still has its volumes' index entries read (no table rows; ~1 ms per 10k on
SQLite). Snapshots are read through their ``project_id`` index (table rows, bounded the same
way); a per-type snapshot limit also probes each snapshot's volume by primary key. Extensions
under way are found through the volumes' ``status`` index, as many rows as there are.

Two resource families share one table of limits: the block storage ones (Cinder's names) and
the compute ones (Nova's); each API shows, sets and resets only its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from stackvol.config import Settings
from stackvol.db.engine import Database
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Invalid, OverQuota
from stackvol.services.quotas import queries
from stackvol.timeutils import utcnow

VOLUME = "volume"
COMPUTE = "compute"


def _shipped(*names: str) -> dict[str, int]:
    """The ``quota_<name>`` settings' defaults: Cinder's and Nova's own."""
    return {name: Settings.model_fields[f"quota_{name}"].default for name in names}


# Cinder's defaults (cinder/quota.py); -1 means unlimited.
DEFAULTS: dict[str, int] = _shipped("volumes", "snapshots", "gigabytes", "per_volume_gigabytes",
                                    "backups", "backup_gigabytes", "groups")
# Nova's defaults (nova/conf/quota.py), in the order Nova lists its resources.
COMPUTE_DEFAULTS: dict[str, int] = {
    **_shipped("instances", "cores", "ram", "metadata_items", "injected_files",
               "injected_file_content_bytes", "injected_file_path_bytes", "key_pairs",
               "server_groups", "server_group_members"),
    # Network quotas (Neutron's business since 2.36; shown before it as Nova did, fixed).
    "floating_ips": 10,
    "fixed_ips": -1,
    "security_groups": 10,
    "security_group_rules": 20,
}


def configured_defaults(settings: Settings) -> dict[str, int]:
    """Every resource's default limit as configured (the ``quota_<resource>`` settings): the
    base of every project's limits (the "default" quota class)."""
    return {name: getattr(settings, f"quota_{name}", shipped)
            for name, shipped in {**DEFAULTS, **COMPUTE_DEFAULTS}.items()}


# What a server create counts, and what one server of a flavor adds to each.
SERVER_RESOURCES = ("instances", "cores", "ram")
PER_TYPE = ("volumes", "snapshots", "gigabytes")
# The quota class whose limits are every project's defaults (Cinder's and Nova's).
DEFAULT_CLASS = "default"
UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class Usage:
    """What a project holds, overall and per volume type name."""

    volumes: int = 0
    snapshots: int = 0
    gigabytes: int = 0
    by_type: Mapping[str, Mapping[str, int]] | None = None

    def get(self, resource: str) -> int:
        if resource in ("volumes", "snapshots", "gigabytes"):
            return getattr(self, resource)
        kind, _, type_name = resource.partition("_")
        if kind in PER_TYPE and self.by_type:
            return self.by_type.get(type_name, {}).get(kind, 0)
        return 0


def resources(conn: Connection, scope: str = VOLUME) -> list[str]:
    """Every quota resource of one API: Nova's, or Cinder's fixed ones then those per type."""
    if scope == COMPUTE:
        return list(COMPUTE_DEFAULTS)
    names = list(DEFAULTS)
    for type_name in queries.volume_type_names(conn):
        names += [f"{kind}_{type_name}" for kind in PER_TYPE]
    return names


# --- counting everything (for showing usage) -------------------------------------------------

def count_usage(conn: Connection, project_id: str) -> Usage:
    """Count the project's volumes, snapshots and gigabytes (volumes' and snapshots' sizes)."""
    by_type: dict[str, dict[str, int]] = {}
    vol_rows = queries.volumes_by_type(conn, project_id)
    snap_rows = queries.snapshots_by_type(conn, project_id)
    grow_rows = [(type_name, 0, grow) for type_name, grow in queries.growing(conn, project_id)]
    totals = {"volumes": 0, "snapshots": 0, "gigabytes": 0}
    for rows, kind in ((vol_rows, "volumes"), (snap_rows, "snapshots"), (grow_rows, "volumes")):
        for type_name, count, size in rows:
            entry = by_type.setdefault(type_name or "", {"volumes": 0, "snapshots": 0,
                                                         "gigabytes": 0})
            entry[kind] += count
            entry["gigabytes"] += int(size)
            totals[kind] += count
            totals["gigabytes"] += int(size)
    return Usage(by_type=by_type, **totals)


# --- counting against limits (for enforcing) ------------------------------------------------

def volume_usage(conn: Connection, project_id: str, type_name: str | None = None,
                 bound: int | None = None,
                 kinds: Iterable[str] = PER_TYPE) -> tuple[dict[str, int], bool]:
    """The project's volumes, snapshots and gigabytes (``kinds`` of them; of one volume type,
    or all), each exact up to ``bound`` and over it whenever the true figure is; and whether
    any was cut off there."""
    wanted = set(kinds)
    none = queries.Tally(0, (0,), False)
    vols, snaps, growing = none, none, 0
    if wanted & {"volumes", "gigabytes"}:
        vols = queries.tally(conn, queries.volume_sizes(project_id, type_name), bound)
    if wanted & {"snapshots", "gigabytes"}:
        snaps = queries.tally(conn, queries.snapshot_sizes(project_id, type_name), bound)
    if "gigabytes" in wanted:
        growing = sum(grow for _, grow in queries.growing(conn, project_id, type_name))
    figures = {"volumes": vols.count, "snapshots": snaps.count,
               "gigabytes": vols.sums[0] + snaps.sums[0] + growing}
    return figures, vols.cut or snaps.cut


def used(conn: Connection, project_id: str, kind: str, type_name: str | None = None,
         bound: int | None = None) -> int:
    """One figure of ``volume_usage``."""
    return volume_usage(conn, project_id, type_name, bound, (kind,))[0][kind]


def server_usage(conn: Connection, project_id: str,
                 bound: int | None = None) -> tuple[dict[str, int], bool]:
    """The project's instances and their flavors' cores and ram, bounded as ``volume_usage``
    (servers through their ``project_id`` index, each flavor by primary key)."""
    found = queries.tally(conn, queries.server_flavors(project_id), bound)
    cores, ram = found.sums
    return {"instances": found.count, "cores": cores, "ram": ram}, found.cut


# --- limits ----------------------------------------------------------------------------------

def project_limits(conn: Connection, project_id: str | None,
                   defaults: Mapping[str, int] = DEFAULTS, scope: str = VOLUME) -> dict[str, int]:
    """Every resource's limit for a project: its own rows over the defaults."""
    return _limits(conn, project_id, defaults, resources(conn, scope))


def _limits(conn: Connection, project_id: str | None, defaults: Mapping[str, int],
            names: Iterable[str], quota_class: str = DEFAULT_CLASS) -> dict[str, int]:
    limits = {name: defaults.get(name, UNLIMITED) for name in names}
    # The class's limits (an admin's os-quota-class-sets) override the configured defaults.
    limits.update(queries.class_limits(conn, quota_class, limits))
    if project_id is not None:
        limits.update(queries.project_limits(conn, project_id, limits))
    return limits


# --- enforcing -------------------------------------------------------------------------------

def enforce(conn: Connection, defaults: Mapping[str, int], project_id: str,
            volume_type: str | None, *, volumes: int = 0, snapshots: int = 0,
            gigabytes: int = 0, volume_size: int | None = None,
            type_only: bool = False) -> None:
    """Raise ``OverQuota`` (Cinder's messages) unless the project can take this much more.

    Call it inside the transaction that creates or grows the resources. ``type_only`` checks
    the per-type limits alone (a retype: the project's totals do not change).
    """
    deltas = {"volumes": volumes, "snapshots": snapshots, "gigabytes": gigabytes}
    checks = [(kind, name, delta) for kind, delta in deltas.items() if delta
              for name in ([] if type_only else [kind])
              + ([f"{kind}_{volume_type}"] if volume_type else [])]
    limits = _limits(conn, project_id, defaults,
                     [name for _, name, _ in checks] + ["per_volume_gigabytes"])
    per_volume = limits["per_volume_gigabytes"]
    if volume_size is not None and 0 <= per_volume < volume_size:
        raise OverQuota(f"Requested volume size {volume_size}G is larger than maximum allowed "
                        f"limit {per_volume}G.")
    finite = [(kind, name, delta) for kind, name, delta in checks if limits[name] >= 0]
    if not finite:
        return  # nothing limited: nothing to count, nothing to wait for
    queries.lock_project(conn, project_id)
    # One pass over the volumes (and one over the snapshots) per type filter: all the project's,
    # and those of the volume's type, each read as far as the largest limit that needs it.
    groups: dict[str | None, list[tuple[str, str]]] = {}
    for kind, name, _ in finite:
        groups.setdefault(None if name == kind else volume_type, []).append((kind, name))
    figures = {type_name: volume_usage(conn, project_id, type_name,
                                       max(limits[name] for _, name in group),
                                       {kind for kind, _ in group})
               for type_name, group in groups.items()}
    for kind, name, delta in finite:
        type_name = None if name == kind else volume_type
        in_use, cut = figures[type_name]
        if in_use[kind] + delta > limits[name]:
            if cut and kind == "gigabytes":  # the refusal says how much is used: count it all
                in_use, _ = volume_usage(conn, project_id, type_name)
            raise _over(kind, name, limits[name], in_use[kind], delta)


def _over(kind: str, name: str, limit: int, in_use: int, delta: int) -> OverQuota:
    if kind == "gigabytes":
        return OverQuota(f"Requested volume or snapshot exceeds allowed {name} quota. Requested "
                         f"{delta}G, quota is {limit}G and {in_use}G has been consumed.")
    if kind == "snapshots":
        return OverQuota(f"Maximum number of snapshots allowed ({limit}) exceeded")
    return OverQuota(f"Maximum number of volumes allowed ({limit}) exceeded for quota "
                     f"'{name}'.")


def allowed_servers(conn: Connection, defaults: Mapping[str, int], project_id: str,
                    vcpus: int, ram: int, min_count: int, max_count: int) -> int:
    """How many of ``min_count``..``max_count`` servers of a flavor the project may create (as
    many as fit, as Nova does); ``OverQuota`` with Nova's message if not even ``min_count``."""
    each = {"instances": 1, "cores": vcpus, "ram": ram}
    limits = _limits(conn, project_id, defaults, SERVER_RESOURCES)
    finite = [name for name in SERVER_RESOURCES if limits[name] >= 0 and each[name] > 0]
    if not finite:
        return max_count
    queries.lock_project(conn, project_id)
    in_use, cut = server_usage(conn, project_id, max(limits[name] for name in finite))
    headroom = {name: max(0, limits[name] - in_use[name]) for name in finite}
    allowed = min([max_count] + [headroom[name] // each[name] for name in finite])
    if allowed >= min_count:
        return allowed
    if cut:  # the refusal says how much is used: count it all
        in_use, _ = server_usage(conn, project_id)
    overs = sorted(name for name in finite if in_use[name] + max_count * each[name]
                   > limits[name])
    wanted = {"instances": str(min_count) if min_count == max_count
              else f"{min_count}-{max_count}",
              "cores": str(max_count * vcpus), "ram": str(max_count * ram)}
    names = ", ".join(overs)
    raise OverQuota(
        f"Quota exceeded for {names}: Requested {', '.join(wanted[n] for n in overs)}, but "
        f"already used {', '.join(str(in_use[n]) for n in overs)} of "
        f"{', '.join(str(limits[n]) for n in overs)} {names}")


class QuotaService:
    """``os-quota-sets`` and ``limits``: reading, setting and resetting a project's limits."""

    def __init__(self, db: Database, defaults: Mapping[str, int] | None = None) -> None:
        self.db = db
        self.defaults = {**DEFAULTS, **COMPUTE_DEFAULTS, **(defaults or {})}

    def enforce(self, conn: Connection, project_id: str, volume_type: str | None, *,
                volumes: int = 0, snapshots: int = 0, gigabytes: int = 0,
                volume_size: int | None = None, type_only: bool = False) -> None:
        """``enforce`` with this service's defaults, inside the caller's transaction."""
        enforce(conn, self.defaults, project_id, volume_type, volumes=volumes,
                snapshots=snapshots, gigabytes=gigabytes, volume_size=volume_size,
                type_only=type_only)

    def allowed_servers(self, conn: Connection, project_id: str, vcpus: int, ram: int,
                        min_count: int, max_count: int) -> int:
        """``allowed_servers`` with this service's defaults, inside the caller's transaction."""
        return allowed_servers(conn, self.defaults, project_id, vcpus, ram, min_count,
                               max_count)

    async def limits(self, ctx: RequestContext, project_id: str | None,
                     defaults: bool = False, scope: str = VOLUME) -> dict[str, int]:
        policy.authorize(ctx, "quota:defaults" if defaults else "quota:show", project_id)
        return await self.db.read(self._limits, None if defaults else project_id,
                                  project_id, scope)

    def _limits(self, conn: Connection, project_id: str | None, checked: str | None,
                scope: str) -> dict[str, int]:
        if scope == COMPUTE and checked is not None:
            _check_project(conn, checked)
        return project_limits(conn, project_id, self.defaults, scope)

    async def usage(self, ctx: RequestContext, project_id: str) -> Usage:
        policy.authorize(ctx, "quota:show", project_id)
        return await self.db.read(count_usage, project_id)

    async def compute_usage(self, ctx: RequestContext, project_id: str) -> dict[str, int]:
        """Nova's ``in_use``: what the project's servers take (other resources use nothing)."""
        policy.authorize(ctx, "quota:show", project_id)
        found, _ = await self.db.read(server_usage, project_id)
        return found

    async def compute_limits(self, ctx: RequestContext,
                             project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """Nova's ``limits``: a project's compute limits and what its servers use. Another
        project's only for admins; one Keystone does not know reads as the defaults, as Nova
        (which asks no one) answers."""
        if project_id != ctx.project_id:
            policy.authorize(ctx, "limits:other_project", project_id)
        return await self.db.read(self._compute_limits, project_id)

    def _compute_limits(self, conn: Connection,
                        project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        limits = project_limits(conn, project_id, self.defaults, COMPUTE)
        return limits, server_usage(conn, project_id)[0]

    async def update(self, ctx: RequestContext, project_id: str, values: Mapping[str, int],
                     scope: str = VOLUME, force: bool = True) -> dict[str, int]:
        """Set limits; unless ``force``, a counted limit may not go below what is in use."""
        policy.authorize(ctx, "quota:update", project_id)
        return await self.db.run(self._update, project_id, dict(values), scope, force)

    def _update(self, conn: Connection, project_id: str, values: dict[str, int], scope: str,
                force: bool) -> dict[str, int]:
        if scope == COMPUTE:
            _check_project(conn, project_id)
        known = set(resources(conn, scope))
        bad = sorted(set(values) - known)
        if bad:
            raise Invalid(f"Bad key(s) in quota set: {','.join(bad)}")
        for name, limit in values.items():
            if limit < UNLIMITED:
                raise Invalid(f"Invalid input received: Quota limit {limit} for {name} must "
                              f"be -1 or greater.")
        if not force:
            _check_minimums(conn, project_id, values)
        now = utcnow()
        for name, limit in values.items():
            queries.save_project_limit(conn, project_id, name, limit, now)
        return project_limits(conn, project_id, self.defaults, scope)

    # --- quota classes (Cinder's os-quota-class-sets) --------------------------------------

    async def class_limits(self, ctx: RequestContext, class_name: str) -> dict[str, int]:
        """A class's block storage limits: its own over the configured defaults."""
        policy.authorize(ctx, "volume_extension:quota_classes")
        return await self.db.read(self._class_limits, class_name)

    def _class_limits(self, conn: Connection, class_name: str) -> dict[str, int]:
        return _limits(conn, None, self.defaults, resources(conn), class_name)

    async def update_class(self, ctx: RequestContext, class_name: str,
                           values: Mapping[str, int]) -> dict[str, int]:
        """Set a class's limits (keys that are no block storage resource are ignored, as
        Cinder); the class's limits after."""
        policy.authorize(ctx, "volume_extension:quota_classes:update")
        return await self.db.run(self._update_class, class_name, dict(values))

    def _update_class(self, conn: Connection, class_name: str,
                      values: dict[str, int]) -> dict[str, int]:
        known = set(resources(conn))
        now = utcnow()
        for name, limit in values.items():
            if name not in known:
                continue
            if limit < UNLIMITED:
                raise Invalid(f"Invalid input received: {name} must be >= -1")
            queries.save_class_limit(conn, class_name, name, limit, now)
        return self._class_limits(conn, class_name)

    async def reset(self, ctx: RequestContext, project_id: str, scope: str = VOLUME) -> None:
        """Forget the project's own limits of one API (the defaults apply again)."""
        policy.authorize(ctx, "quota:delete", project_id)
        # Nova's resources, or (Cinder's, whose names vary with the types) all the others.
        await self.db.run(queries.delete_project_limits, project_id, COMPUTE_DEFAULTS,
                          scope != COMPUTE)


def _check_project(conn: Connection, project_id: str) -> None:
    """Nova asks Keystone whether the project exists before touching its quotas."""
    if not queries.project_exists(conn, project_id):
        raise Invalid(f"Project ID {project_id} is not a valid project.")


def _check_minimums(conn: Connection, project_id: str, values: Mapping[str, int]) -> None:
    """Nova refuses (unless forced) a limit below the servers' current usage."""
    counted = [name for name, limit in values.items()
               if name in SERVER_RESOURCES and limit != UNLIMITED]
    if not counted:
        return
    in_use, _ = server_usage(conn, project_id)
    for name in counted:
        if values[name] < in_use[name]:
            raise Invalid(f"Quota limit {values[name]} for {name} must be greater than or "
                          f"equal to already used and reserved {in_use[name]}.")
