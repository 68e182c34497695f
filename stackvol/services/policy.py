"""Who may do what: one table of rules, Nova's and Cinder's defaults, enforced by the services.

Roles imply each other as in Keystone's bootstrap: admin ⊇ member ⊇ reader.
"""

from __future__ import annotations

from collections.abc import Callable

from stackvol.services.context import RequestContext
from stackvol.services.errors import Forbidden

IMPLIED_ROLES: dict[str, tuple[str, ...]] = {"admin": ("member", "reader"), "member": ("reader",)}

Check = Callable[[RequestContext, str | None], bool]


def expand_roles(names: set[str]) -> frozenset[str]:
    """The assigned roles plus every role they imply."""
    out = set(names)
    for name in names:
        out.update(IMPLIED_ROLES.get(name, ()))
    return frozenset(out)


def _admin(ctx: RequestContext, _project: str | None) -> bool:
    return ctx.is_admin


def _project_reader_or_admin(ctx: RequestContext, project: str | None) -> bool:
    return ctx.is_admin or ("reader" in ctx.roles and project in (None, ctx.project_id))


def _project_member_or_admin(ctx: RequestContext, project: str | None) -> bool:
    return ctx.is_admin or ("member" in ctx.roles and project in (None, ctx.project_id))


READ = _project_reader_or_admin
WRITE = _project_member_or_admin

RULES: dict[str, Check] = {
    "volume:list": READ,
    "volume:list_all_projects": _admin,
    "volume:show": READ,
    "volume:create": WRITE,
    "volume:delete": WRITE,
    "snapshot:list": READ,
    "snapshot:show": READ,
    "snapshot:create": WRITE,
    "snapshot:delete": WRITE,
    "attachment:list": READ,
    "attachment:show": READ,
    "attachment:create": WRITE,
    "attachment:update": WRITE,
    "attachment:delete": WRITE,
    "attachment:swap": _admin,  # Nova: service or admin; only Cinder calls it
    "server:list": READ,
    "server:list_all_projects": _admin,
    "server:show": READ,
    "server:create": WRITE,
    "server:delete": WRITE,
    "server:action": WRITE,
    "server:show_host_attributes": _admin,
    "server:show_host_status": _admin,
    "server:allow_all_filters": _admin,
    "server:update": WRITE,
    "flavor:list": READ,
}


def allowed(ctx: RequestContext, action: str, project_id: str | None = None) -> bool:
    return RULES[action](ctx, project_id)


def authorize(ctx: RequestContext, action: str, project_id: str | None = None) -> None:
    """Raise ``Forbidden`` unless the rule for ``action`` lets ``ctx`` act on ``project_id``."""
    if not allowed(ctx, action, project_id):
        raise Forbidden(f"Policy doesn't allow {action} to be performed.")
