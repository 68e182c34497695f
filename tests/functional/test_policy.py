"""The policy table: its rule language, its defaults (reader reads, member writes, admin acts
across projects), that every action a service checks has a rule, and overrides from a file on a
real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import stackvol
from stackvol.services.common import policy
from stackvol.services.common.context import RequestContext
from stackvol.services.common.policy import DEFAULT_RULES, Policy, PolicyError, parse_rule
from tests.support.server import running

SOURCE = Path(stackvol.__file__).parent


def ctx(*roles: str, project: str = "p1", user: str = "u1") -> RequestContext:
    return RequestContext(user_id=user, project_id=project,
                          roles=policy.expand_roles(set(roles)))


@pytest.mark.parametrize(("rule", "expected"), [
    ("role:reader", True),
    ("role:admin", False),
    ("@", True),
    ("!", False),
    ("", True),
    ("not role:admin", True),
    ("role:admin or role:member and project_id:%(project_id)s", True),
    ("(role:admin or role:member) and project_id:%(other)s", False),
    ("user_id:u1 and project_id:p1", True),
    ("user_id:%(user_id)s", False),  # the target names no user: no match
    ("not (role:reader and not role:member)", True),
])
def test_rule_language(rule: str, expected: bool) -> None:
    check = parse_rule("t", rule)
    target = {"project_id": "p1", "other": "p2"}
    assert check(ctx("member"), target, Policy.build()) is expected


@pytest.mark.parametrize("rule", ["role:", "(role:a", "role:a or", "nope:x", "role:a )"])
def test_rules_that_do_not_parse_are_refused(rule: str) -> None:
    with pytest.raises(PolicyError, match="policy rule 'bad'"):
        Policy.build({"bad": rule})


def test_unknown_references_and_loops_are_refused() -> None:
    with pytest.raises(PolicyError, match="unknown rule 'missing'"):
        Policy.build({"volume:list": "rule:missing"})
    with pytest.raises(PolicyError, match="loop"):
        Policy.build({"a": "rule:b", "b": "rule:a"})


@pytest.mark.parametrize(("roles", "project", "read", "write", "admin_only"), [
    (("reader",), "p1", True, False, False),
    (("member",), "p1", True, True, False),
    (("member",), "p2", False, False, False),  # another project's things
    (("admin",), "p2", True, True, True),  # admin acts across projects
    ((), "p1", False, False, False),
])
def test_default_roles(roles: tuple[str, ...], project: str, read: bool, write: bool,
                       admin_only: bool) -> None:
    caller = ctx(*roles)
    assert policy.allowed(caller, "volume:show", project) is read
    assert policy.allowed(caller, "attachment:create", project) is write
    assert policy.allowed(caller, "volume:reset_status", project) is admin_only
    assert policy.allowed(caller, "volume:force_delete", project) is admin_only
    assert policy.allowed(caller, "volume:list_all_projects") is admin_only


def test_unknown_actions_fall_back_to_the_admin_only_default() -> None:
    assert policy.allowed(ctx("admin"), "something:new")
    assert not policy.allowed(ctx("member"), "something:new")


def test_every_action_the_code_checks_has_its_own_rule() -> None:
    called = set()
    for path in SOURCE.rglob("*.py"):
        called |= set(re.findall(r"(?:authorize|allowed)\(\s*\w+,\s*\"([\w:.-]+)\"",
                                 path.read_text()))
    assert len(called) > 30  # the scan found the calls
    assert called - set(DEFAULT_RULES) == set()


def test_a_policy_file_overrides_rules_on_a_real_server(tmp_path: Path) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text('"volume:create": "rule:admin_api"\n'
                     '"volume:list": "role:member and project_id:%(project_id)s"\n')
    with running(tmp_path / "data", policy_file=str(rules)) as proc:
        with proc.client("demo") as demo, proc.client("admin") as admin:
            denied = demo.post("/os-volumes", json={"volume": {"size": 1}})
            assert denied.status_code == 403
            assert denied.json() == {"forbidden": {
                "code": 403, "message": "Policy doesn't allow volume:create to be performed."}}
            assert demo.get("/os-volumes").status_code == 200
            assert admin.post("/os-volumes", json={"volume": {"size": 1}}).status_code == 200
            # The admin holds "member" by implication, so the narrowed list rule still allows.
            assert admin.get("/os-volumes").status_code == 200
        token, _ = proc.token("demo")
        keystone = httpx.get(proc.url + "/identity/v3/projects", headers={"X-Auth-Token": token})
        assert keystone.status_code == 403 and keystone.json()["error"]["code"] == 403


def test_a_json_policy_file_works_too(tmp_path: Path) -> None:
    rules = tmp_path / "policy.json"
    rules.write_text('{"identity:list_projects": "@"}')
    with running(tmp_path / "data", policy_file=str(rules)) as proc:
        token, _ = proc.token("demo")
        resp = httpx.get(proc.url + "/identity/v3/projects", headers={"X-Auth-Token": token})
        assert resp.status_code == 200
        assert {"admin", "demo"} <= {p["name"] for p in resp.json()["projects"]}


@pytest.mark.parametrize(("content", "message"), [
    ("volume:list: [not, a, string]\n", "must map rule names to rule strings"),
    ("volume:list: 'role:reader or'\n", "policy rule 'volume:list'"),
    ("volume:list: 'rule:nowhere'\n", "unknown rule 'nowhere'"),
])
def test_a_broken_policy_file_stops_the_server_with_a_clear_message(
        tmp_path: Path, content: str, message: str) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "stackvol", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", "1", "--policy-file", str(rules)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
