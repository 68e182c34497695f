"""The policy rule language (stackvol/services/common/policy.py): parsing, evaluation, the
table's checks (unknown rules, loops), an operator's overrides and the implied roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.errors import Forbidden
from stackvol.services.common.policy import Policy, PolicyError, expand_roles, parse_rule

OWN_RULE = "role:admin or project_id:%(project_id)s"


def caller(*roles: str, project: str = "p1", user: str = "u1") -> RequestContext:
    return RequestContext(user_id=user, project_id=project, roles=frozenset(roles))


def holds(text: str, ctx: RequestContext, **target: str) -> bool:
    """Whether the rule ``text`` lets ``ctx`` act on ``target`` (in the default table)."""
    return parse_rule("probe", text)(ctx, target, Policy.build())


@pytest.fixture
def default_policy() -> Iterator[None]:
    """The process-wide table back at its defaults before and after the test."""
    policy.configure(None)
    yield
    policy.configure(None)


# --- evaluation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("ctx", "project", "allowed"), [
    (caller("admin", project="other"), "p1", True),  # an admin, any project
    (caller("member"), "p1", True),  # its own project
    (caller("member"), "p2", False),  # another project
    (caller(), "p1", True),  # no role at all: the project still matches
])
def test_role_or_own_project(ctx: RequestContext, project: str, allowed: bool) -> None:
    assert holds(OWN_RULE, ctx, project_id=project) is allowed


def test_an_attribute_missing_from_the_target_matches_nothing() -> None:
    assert holds("project_id:%(project_id)s", caller()) is False
    assert holds("user_id:%(owner)s", caller(user="u1"), owner="u1") is True


def test_a_literal_value_is_compared_as_written() -> None:
    assert holds("user_id:u1", caller(user="u1")) is True
    assert holds("user_id:u1", caller(user="u2")) is False


@pytest.mark.parametrize(("text", "allowed"), [
    ("@", True),
    ("!", False),
    ("", True),  # oslo.policy: an empty rule allows everyone
    ("   ", True),
    ("not role:admin", True),
    ("not not role:admin", False),
    # not > and > or: (not admin and member) or reader
    ("not role:admin and role:member or role:reader", True),
    ("role:reader or role:admin and role:member", False),  # reader or (admin and member)
    ("role:member and (role:admin or role:member)", True),
    ("(role:member and role:admin) or !", False),
    ("((role:member))", True),
])
def test_precedence_and_parentheses(text: str, allowed: bool) -> None:
    assert holds(text, caller("member")) is allowed


def test_rule_refers_to_another_rule_of_the_table() -> None:
    table = Policy.build()
    member = caller("member", "reader")
    assert parse_rule("x", "rule:project_member")(member, {"project_id": "p1"}, table) is True
    assert parse_rule("x", "rule:project_member")(member, {"project_id": "p2"}, table) is False


# --- parse errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "why"), [
    ("role:", "cannot read 'role:'"),
    ("admin", "cannot read 'admin'"),
    ("tenant:%(project_id)s", "unknown check 'tenant'"),
    ("(role:admin", "missing ')'"),
    ("role:admin)", "unexpected ')'"),
    ("role:admin role:member", "unexpected 'role:member'"),
    ("role:admin and", "ends too early"),
    ("not", "ends too early"),
])
def test_a_rule_that_does_not_parse_names_itself_and_the_reason(text: str, why: str) -> None:
    with pytest.raises(PolicyError, match=r"policy rule 'broken': ") as raised:
        parse_rule("broken", text)
    assert why in str(raised.value)


# --- the table ------------------------------------------------------------------------------


def test_the_defaults_build_and_every_action_has_a_rule() -> None:
    table = Policy.build()
    assert table.texts == {**policy.DEFAULT_RULES}
    assert set(table.checks) == set(table.texts)


def test_an_action_without_a_rule_falls_back_to_the_default_rule() -> None:
    table = Policy.build()
    assert table.check("no:such:action", caller("admin"), {}) is True
    assert table.check("no:such:action", caller("member", "reader"), {"project_id": "p1"}) \
        is False


def test_a_reference_to_an_unknown_rule_is_refused() -> None:
    with pytest.raises(PolicyError, match="'volume:create' refers to unknown rule 'nobody'"):
        Policy.build({"volume:create": "rule:nobody"})


def test_rules_that_refer_to_each_other_in_a_loop_are_refused() -> None:
    with pytest.raises(PolicyError, match=r"in a loop: .*(a -> b -> a|b -> a -> b)"):
        Policy.build({"a": "rule:b", "b": "rule:a or role:admin"})


def test_an_override_replaces_one_rule_and_reaches_the_rules_that_use_it() -> None:
    member = caller("member", "reader")
    own = {"project_id": "p1"}
    assert Policy.build().check("volume:create", member, own) is True
    assert Policy.build({"volume:create": "role:admin"}).check("volume:create", member, own) \
        is False
    # A base rule redefined: every rule written with it follows.
    table = Policy.build({"admin_api": "role:operator"})
    assert table.check("volume:force_delete", caller("admin"), own) is False
    assert table.check("volume:force_delete", caller("operator"), own) is True
    assert table.check("volume:delete", caller("operator", project="p9"), own) is True


# --- implied roles --------------------------------------------------------------------------


@pytest.mark.parametrize(("assigned", "expanded"), [
    ({"admin"}, {"admin", "member", "reader"}),
    ({"member"}, {"member", "reader"}),
    ({"reader"}, {"reader"}),
    ({"auditor"}, {"auditor"}),
    ({"auditor", "member"}, {"auditor", "member", "reader"}),
    (set(), set()),
])
def test_expand_roles(assigned: set[str], expanded: set[str]) -> None:
    assert expand_roles(assigned) == frozenset(expanded)


def test_an_admin_passes_reader_rules_once_its_roles_are_expanded() -> None:
    reader_rule = "role:reader and project_id:%(project_id)s"
    assert holds(reader_rule, caller("admin"), project_id="p1") is False
    assert holds(reader_rule, caller(*expand_roles({"admin"})), project_id="p1") is True


# --- the process-wide table: authorize and the operator's file -----------------------------


@pytest.mark.usefixtures("default_policy")
def test_authorize_raises_forbidden_with_novas_message() -> None:
    member = caller("member", "reader")
    policy.authorize(member, "volume:create")  # its own project by default
    with pytest.raises(Forbidden, match=r"^Policy doesn't allow volume:create to be performed\.$"):
        policy.authorize(member, "volume:create", project_id="p2")
    assert policy.allowed(member, "volume:show", "p2") is False
    assert policy.allowed(caller("admin", "member", "reader"), "volume:show", "p2") is True


@pytest.mark.usefixtures("default_policy")
@pytest.mark.parametrize("name", ["policy.yaml", "policy.json"])
def test_configure_reads_the_operators_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps({"volume:create": "role:admin"}))  # JSON is YAML too
    table = policy.configure(path)
    assert policy.current() is table
    assert table.texts["volume:create"] == "role:admin"
    assert policy.allowed(caller("member", "reader"), "volume:create") is False
    assert policy.allowed(caller("member", "reader"), "volume:show") is True  # the rest: defaults


@pytest.mark.parametrize(("content", "why"), [
    ("- a list\n", "must map rule names to rule strings"),
    ("volume:create: 3\n", "must map rule names to rule strings"),
    ("volume:create: [unclosed\n", "is not valid YAML/JSON"),
])
def test_a_bad_policy_file_is_refused(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(PolicyError, match=why):
        policy.load_file(path)


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        policy.load_file(tmp_path / "absent.yaml")


def test_an_empty_policy_file_overrides_nothing(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("")
    assert policy.load_file(path) == {}
