"""Who may do what: one table of rules, Nova's, Cinder's and Keystone's defaults, enforced by the
services; an operator's policy file (YAML or JSON, ``settings.policy_file``) overrides any rule.

Rules are written in the subset of oslo.policy's language operators already know::

    role:admin                      the caller has the role (implied roles included)
    project_id:%(project_id)s       a caller attribute equals a target attribute
    user_id:%(user_id)s             (attributes: user_id, project_id)
    rule:project_reader             another rule of the table
    @ / !                           always / never
    not, and, or, ( )               in that order of precedence

Roles imply each other as in Keystone's bootstrap: admin ⊇ member ⊇ reader. A role assigned on
any project that is ``admin`` makes the caller a cloud administrator (Keystone's legacy admin),
which is how Nova and Cinder treat project-scoped admin tokens.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Forbidden

log = logging.getLogger(__name__)

IMPLIED_ROLES: dict[str, tuple[str, ...]] = {"admin": ("member", "reader"), "member": ("reader",)}

ADMIN = "rule:admin_api"
READ = "rule:project_reader_or_admin"
WRITE = "rule:project_member_or_admin"
OWNER = "rule:admin_api or user_id:%(user_id)s"
ANYONE = "@"

# Base rules other rules refer to; an operator may redefine them too.
BASE_RULES: dict[str, str] = {
    "admin_api": "role:admin",
    "project_reader": "role:reader and project_id:%(project_id)s",
    "project_member": "role:member and project_id:%(project_id)s",
    "project_reader_or_admin": "rule:admin_api or rule:project_reader",
    "project_member_or_admin": "rule:admin_api or rule:project_member",
    # Anything without a rule of its own (as oslo.policy's "default").
    "default": "rule:admin_api",
}

DEFAULT_RULES: dict[str, str] = {
    **BASE_RULES,
    # --- Compute / Block Storage ---
    "volume:list": READ,
    "volume:list_all_projects": ADMIN,
    "volume:show": READ,
    "volume:create": WRITE,
    "volume:update": WRITE,
    "volume:delete": WRITE,
    "volume:reset_status": ADMIN,
    "volume:force_delete": ADMIN,
    "volume:force_detach": ADMIN,
    "volume:update_readonly_flag": WRITE,
    "volume:retype": WRITE,
    # Transfers (Cinder's names): the giver acts on its own; any member may accept with the key.
    "volume:create_transfer": WRITE,
    "volume:get_transfer": READ,
    "volume:get_all_transfers": READ,
    "volume:accept_transfer": WRITE,
    "volume:delete_transfer": WRITE,
    "volume_extension:volume_actions:upload_image": WRITE,
    "volume_extension:volume_actions:upload_public": ADMIN,
    "volume_type:list": READ,
    "volume_type:manage": ADMIN,
    "volume_type:manage_access": ADMIN,  # private types: who may use them, and the list of who
    "snapshot:list": READ,
    "snapshot:show": READ,
    "snapshot:create": WRITE,
    "snapshot:update": WRITE,
    "snapshot:delete": WRITE,
    "snapshot:reset_status": ADMIN,
    "snapshot:force_delete": ADMIN,
    "snapshot:update_status": WRITE,  # Cinder: a driver reporting on a snapshot (Nova's)
    "attachment:list": READ,
    "attachment:show": READ,
    "attachment:create": WRITE,
    "attachment:update": WRITE,
    "attachment:delete": WRITE,
    "attachment:swap": ADMIN,  # Nova: service or admin; only Cinder calls it
    "server:list": READ,
    "server:list_all_projects": ADMIN,
    "server:show": READ,
    "server:create": WRITE,
    "server:delete": WRITE,
    "server:action": WRITE,
    "server:show_host_attributes": ADMIN,
    "server:show_host_status": ADMIN,
    "server:allow_all_filters": ADMIN,
    "server:update": WRITE,
    "flavor:list": READ,
    "flavor:manage": ADMIN,
    # Block storage administration (Cinder's names and defaults: admins only).
    "volume_extension:services:index": ADMIN,
    "volume_extension:services:update": ADMIN,
    "volume:freeze_host": ADMIN,
    "volume:thaw_host": ADMIN,
    "volume_extension:hosts": ADMIN,
    "volume_extension:capabilities": ADMIN,
    "volume_extension:quota_classes": ADMIN,
    "volume_extension:quota_classes:update": ADMIN,
    "volume_extension:qos_specs_manage:get": ADMIN,
    "volume_extension:qos_specs_manage:get_all": ADMIN,
    "volume_extension:qos_specs_manage:create": ADMIN,
    "volume_extension:qos_specs_manage:update": ADMIN,
    "volume_extension:qos_specs_manage:delete": ADMIN,
    "quota:show": READ,
    "quota:defaults": READ,
    "quota:update": ADMIN,
    "quota:delete": ADMIN,
    "limits:other_project": ADMIN,  # Nova's limits ?tenant_id= of another project
    # Keypairs are a user's: its own, or any user's for an admin (Nova's defaults).
    "keypair:list": OWNER,
    "keypair:show": OWNER,
    "keypair:create": OWNER,
    "keypair:delete": OWNER,
    # --- Image (Glance's names and defaults; the target's project is the image's owner) ---
    "get_images": READ,
    "get_image": READ,
    "download_image": READ,
    "add_image": WRITE,
    "modify_image": WRITE,
    "upload_image": WRITE,
    "delete_image": WRITE,
    "deactivate": WRITE,  # Glance's names and defaults: admins, or members of the owner
    "reactivate": WRITE,
    "communitize_image": WRITE,
    "publicize_image": ADMIN,
    # --- Identity (Keystone's defaults for project-scoped tokens) ---
    "identity:validate_token": OWNER,
    "identity:revoke_token": OWNER,
    "identity:get_project": READ,
    "identity:list_projects": ADMIN,
    "identity:list_user_projects": OWNER,
    "identity:create_project": ADMIN,
    "identity:update_project": ADMIN,
    "identity:delete_project": ADMIN,
    "identity:get_user": OWNER,
    "identity:list_users": ADMIN,
    "identity:create_user": ADMIN,
    "identity:update_user": ADMIN,
    "identity:delete_user": ADMIN,
    "identity:get_role": ADMIN,
    "identity:list_roles": ADMIN,
    "identity:create_role": ADMIN,
    "identity:update_role": ADMIN,
    "identity:delete_role": ADMIN,
    "identity:list_grants": ADMIN,
    "identity:check_grant": ADMIN,
    "identity:create_grant": ADMIN,
    "identity:revoke_grant": ADMIN,
    "identity:list_role_assignments": ADMIN,
    "identity:get_domain": ANYONE,
    "identity:list_domains": ANYONE,
    "identity:list_services": ADMIN,
    "identity:get_service": ADMIN,
    "identity:list_endpoints": ADMIN,
    "identity:get_endpoint": ADMIN,
    "identity:list_regions": ANYONE,
    "identity:get_region": ANYONE,
    "identity:create_application_credential": "user_id:%(user_id)s",
    "identity:get_application_credential": OWNER,
    "identity:list_application_credentials": OWNER,
    "identity:delete_application_credential": OWNER,
}


def expand_roles(names: set[str]) -> frozenset[str]:
    """The assigned roles plus every role they imply."""
    out = set(names)
    for name in names:
        out.update(IMPLIED_ROLES.get(name, ()))
    return frozenset(out)


# --- the rule language --------------------------------------------------------------------

Target = Mapping[str, Any]
Check = Callable[[RequestContext, Target, "Policy"], bool]

_TOKEN = re.compile(r"\s*(\w+:%\(\w+\)s|\(|\)|[^\s()]+)")
_CREDENTIALS = ("user_id", "project_id")


class PolicyError(ValueError):
    """A rule that does not parse, or refers to a rule that does not exist."""


def _tokens(text: str) -> list[str]:
    text = text.strip()
    out: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # only trailing blanks are left
            break
        out.append(match.group(1))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent over ``or`` → ``and`` → ``not`` → atom."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, why: str) -> PolicyError:
        return PolicyError(f"policy rule {self.name!r}: {why}")

    def parse(self) -> Check:
        if not self.tokens:
            return _always  # oslo: an empty rule allows everyone
        check = self._or()
        if self.pos != len(self.tokens):
            raise self.fail(f"unexpected {self.tokens[self.pos]!r}")
        return check

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> Check:
        parts = [self._and()]
        while self._peek() == "or":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _any(parts)

    def _and(self) -> Check:
        parts = [self._not()]
        while self._peek() == "and":
            self.pos += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _all(parts)

    def _not(self) -> Check:
        if self._peek() == "not":
            self.pos += 1
            inner = self._not()
            return lambda ctx, target, pol: not inner(ctx, target, pol)
        return self._atom()

    def _atom(self) -> Check:
        token = self._peek()
        if token is None:
            raise self.fail("ends too early")
        self.pos += 1
        if token == "(":
            inner = self._or()
            if self._peek() != ")":
                raise self.fail("missing ')'")
            self.pos += 1
            return inner
        if token == "@":
            return _always
        if token == "!":
            return _never
        kind, sep, value = token.partition(":")
        if not sep or not value:
            raise self.fail(f"cannot read {token!r}")
        if kind == "role":
            return lambda ctx, _target, _pol: value in ctx.roles
        if kind == "rule":
            return lambda ctx, target, pol: pol.check(value, ctx, target)
        if kind in _CREDENTIALS:
            return _match(kind, value)
        raise self.fail(f"unknown check {kind!r} (use role:, rule:, user_id: or project_id:)")


def _always(_ctx: RequestContext, _target: Target, _pol: Policy) -> bool:
    return True


def _never(_ctx: RequestContext, _target: Target, _pol: Policy) -> bool:
    return False


# _any and _all loop instead of any()/all() over a generator: every request checks a rule, and
# building the generator cost more than the checks themselves. Same order, same short cut.


def _any(parts: list[Check]) -> Check:
    def check(ctx: RequestContext, target: Target, pol: Policy) -> bool:
        for part in parts:  # noqa: SIM110 - see above
            if part(ctx, target, pol):
                return True
        return False

    return check


def _all(parts: list[Check]) -> Check:
    def check(ctx: RequestContext, target: Target, pol: Policy) -> bool:
        for part in parts:  # noqa: SIM110 - see above
            if not part(ctx, target, pol):
                return False
        return True

    return check


def _match(attribute: str, value: str) -> Check:
    """``user_id:%(user_id)s`` compares with the target; ``user_id:abc`` with a literal."""
    reference = re.fullmatch(r"%\((\w+)\)s", value)

    def check(ctx: RequestContext, target: Target, _pol: Policy) -> bool:
        mine = getattr(ctx, attribute)
        wanted = target.get(reference.group(1)) if reference else value
        return wanted is not None and mine == wanted

    return check


def parse_rule(name: str, text: str) -> Check:
    return _Parser(name, text).parse()


# --- the table ----------------------------------------------------------------------------


@dataclass
class Policy:
    """The compiled rule table."""

    texts: dict[str, str]
    checks: dict[str, Check]

    @classmethod
    def build(cls, overrides: Mapping[str, str] | None = None) -> Policy:
        texts = {**DEFAULT_RULES, **(overrides or {})}
        checks = {name: parse_rule(name, text) for name, text in texts.items()}
        refs = {name: set(re.findall(r"rule:([^\s()]+)", text)) for name, text in texts.items()}
        for name, names in refs.items():
            for ref in names - set(texts):
                raise PolicyError(f"policy rule {name!r} refers to unknown rule {ref!r}")
        _check_cycles(refs)
        return cls(texts, checks)

    def check(self, action: str, ctx: RequestContext, target: Target) -> bool:
        check = self.checks.get(action)
        if check is None:
            log.warning("no policy rule for %s; using the default rule", action)
            check = self.checks["default"]
        return check(ctx, target, self)


def _check_cycles(refs: dict[str, set[str]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise PolicyError("policy rules refer to each other in a loop: "
                              + " -> ".join((*path, name)))
        if name not in done:
            for ref in refs.get(name, ()):
                visit(ref, (*path, name))
            done.add(name)

    for name in refs:
        visit(name, ())


def load_file(path: Path) -> dict[str, str]:
    """An operator's overrides: a YAML (or JSON) mapping of rule name to rule text."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy file {path} is not valid YAML/JSON: {exc}") from None
    document = document or {}
    if not isinstance(document, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in document.items()):
        raise PolicyError(f"policy file {path} must map rule names to rule strings")
    return document


_policy = Policy.build()


def configure(policy_file: Path | str | None) -> Policy:
    """Install the defaults overridden by ``policy_file`` (if any) for every service."""
    global _policy
    overrides = load_file(Path(policy_file)) if policy_file else {}
    _policy = Policy.build(overrides)
    if overrides:
        log.info("policy: %d rule(s) overridden from %s", len(overrides), policy_file)
    return _policy


def current() -> Policy:
    return _policy


def allowed(ctx: RequestContext, action: str, project_id: str | None = None,
            **target: Any) -> bool:
    """Whether the rule for ``action`` lets ``ctx`` act on the target.

    The target's project defaults to the caller's own (Nova's target for lists and creates).
    """
    full = {"project_id": project_id if project_id is not None else ctx.project_id, **target}
    return _policy.check(action, ctx, full)


def authorize(ctx: RequestContext, action: str, project_id: str | None = None,
              **target: Any) -> None:
    """Raise ``Forbidden`` unless the rule for ``action`` lets ``ctx`` act on the target."""
    if not allowed(ctx, action, project_id, **target):
        raise Forbidden(f"Policy doesn't allow {action} to be performed.")
