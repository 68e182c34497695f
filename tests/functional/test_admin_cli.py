"""``stackvol admin`` as a subprocess on a real data directory: bootstrap, projects, users, roles,
clouds.yaml, stuck volumes, and repairs that reconcile with the compute driver and storage after
a worker was killed."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.script import ScriptDirectory

from stackvol.cli.main import _parser, main
from stackvol.db.migrate import alembic_config
from tests.support.identity_helpers import osc
from tests.support.server import StackvolProcess, database_env, wait_for
from tests.support.server import query as query_database
from tests.support.servers import new_server
from tests.support.volumes import attach, attach_and_wait, new_attached_pair, new_volume


def admin_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "STACKVOL_PASSWORD_HASH_ROUNDS": "4", **database_env(data_dir)}


def admin_cli(data_dir: Path, *args: str,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``stackvol admin ARGS`` (``stdin``: what is piped in, e.g. for --password-stdin)."""
    return subprocess.run([sys.executable, "-m", "stackvol", "admin", *args, "--data-dir",
                           str(data_dir)], capture_output=True, text=True, timeout=120,
                          env=admin_env(data_dir), input=stdin if stdin is not None else "")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def fails(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def rows(data_dir: Path, query: str, *params: str) -> list[tuple]:
    return query_database(data_dir, query, *params)


def connected(data_dir: Path, server_id: str) -> dict[str, dict]:
    """What the simulated hypervisor has connected to a server (its state file)."""
    state = json.loads((data_dir / "compute" / "simulated" / f"{server_id}.json").read_text())
    return state["volumes"]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple]:
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path
    for action in sub:
        for name, child in action.choices.items():
            yield from _commands(child, (*path, name))


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [c for c in _commands(_parser(), ()) if c[:1] == ("admin",)]
    assert ("admin", "volume", "reset-state") in commands and len(commands) >= 18
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: stackvol " + " ".join(command)), command


def test_commands_without_a_database_say_what_to_do(tmp_path: Path) -> None:
    fails(admin_cli(tmp_path / "none", "project", "list"), "run `stackvol admin bootstrap`")
    missing = subprocess.run([sys.executable, "-m", "stackvol", "admin", "volume",
                              "reset-state", "x"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--state" in missing.stderr


def test_db_upgrade_reaches_the_single_head(tmp_path: Path) -> None:
    (head,) = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    out = ok(admin_cli(tmp_path / "data", "db", "upgrade"))
    assert "newest schema" in out
    assert rows(tmp_path / "data", "SELECT version_num FROM alembic_version") == [(head,)]


def test_bootstrap_projects_users_roles_and_clouds_yaml(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ok(admin_cli(data, "bootstrap", "--admin-password-stdin", stdin="chosen-pw\n"))
    assert "created user admin (project admin), password: chosen-pw" in first
    assert "created user demo" in first
    assert "nothing to create" in ok(admin_cli(data, "bootstrap"))
    assert "team-a" in ok(admin_cli(data, "project", "create", "team-a",
                                    "--description", "first team"))
    fails(admin_cli(data, "project", "create", "team-a"), "Duplicate entry")
    ok(admin_cli(data, "user", "create", "alice", "--password-stdin", "--project",
                 "team-a", "--role", "member", stdin="alice-pw\n"))
    ok(admin_cli(data, "role", "create", "auditor"))
    assert "gave alice the role auditor on project team-a" in ok(
        admin_cli(data, "role", "add", "auditor", "--user", "alice", "--project", "team-a"))
    fails(admin_cli(data, "role", "add", "nope", "--user", "alice", "--project", "team-a"),
          "Could not find role: nope")
    fails(admin_cli(data, "role", "add", "member", "--user", "bob", "--project", "team-a"),
          "Could not find user: bob")
    listed = ok(admin_cli(data, "role", "list", "--project", "team-a"))
    assert "| team-a  | alice | auditor |" in listed and "| team-a  | alice | member  |" in listed
    assert "alice" in ok(admin_cli(data, "user", "list"))
    assert "first team" in ok(admin_cli(data, "project", "list"))
    fails(admin_cli(data, "clouds-yaml", "--user", "alice", "--password-stdin", stdin="wrong"),
          "not the password")
    server = StackvolProcess(data)
    server.start()
    try:
        text = ok(admin_cli(data, "clouds-yaml", "--user", "alice", "--password-stdin",
                            "--auth-url", server.url + "/identity", stdin="alice-pw\n"))
        cloud = yaml.safe_load(text)["clouds"]["stackvol-alice"]
        assert cloud["auth"]["project_name"] == "team-a"
        (tmp_path / "clouds.yaml").write_text(text)
        server_list = osc(server, "server", "list", "-f", "json", cloud="stackvol-alice",
                          env={"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")})
        assert server_list.returncode == 0, server_list.stderr
        assert json.loads(server_list.stdout) == []
        # The admin password chosen at bootstrap is the one the API accepts.
        assert server.credentials()["admin"]["password"] == "chosen-pw"
        server.token("admin")
    finally:
        server.stop()


@pytest.fixture
def killed_while_attaching(tmp_path: Path) -> Iterator[tuple[StackvolProcess, str, str]]:
    """A server killed -9 while its worker was attaching a volume (parked by the test hook)."""
    server = StackvolProcess(tmp_path / "data").start(pause_at="attachment.attach")
    try:
        with server.client("admin") as client:
            server_id, volume_id = new_server(client), new_volume(client)
            assert attach(client, server_id, volume_id).status_code == 200
            assert client.get(f"/os-volumes/{volume_id}").json()["volume"]["status"] \
                == "attaching"
        # The backend's volume.initialize_connection step runs first, then the attach.
        parked = [("attachment.attach", "running")]
        running = wait_for(lambda: rows(server.data_dir, "SELECT kind, state FROM tasks"),
                           lambda found: found == parked)
        assert running == parked  # the worker holds it, parked before the driver
        server.kill()
        yield server, server_id, volume_id
    finally:
        server.stop()


def test_reset_state_after_a_killed_attach(
        killed_while_attaching: tuple[StackvolProcess, str, str]) -> None:
    server, server_id, volume_id = killed_while_attaching
    data = server.data_dir
    stuck = ok(admin_cli(data, "volumes", "stuck"))
    assert volume_id in stuck and "attachment.attach (running on" in stuck
    assert stuck.count("attaching") >= 2  # the volume and its attachment
    # The dead worker's lease has not expired: refused unless forced.
    fails(admin_cli(data, "volume", "reset-state", volume_id, "--state", "available"),
          "--force")
    # The hypervisor never connected it, so it cannot be called in-use.
    fails(admin_cli(data, "volume", "reset-state", volume_id, "--state", "in-use", "--force"),
          "connected to no server")
    out = ok(admin_cli(data, "volume", "reset-state", volume_id, "--state", "available",
                       "--force"))
    assert f"disconnecting volume {volume_id} from server {server_id}" in out
    assert "attaching -> available" in out
    assert rows(data, "SELECT status FROM volumes WHERE id = ?", volume_id) == [("available",)]
    assert rows(data, "SELECT id FROM volume_attachments WHERE volume_id = ?", volume_id) == []
    assert rows(data, "SELECT kind FROM tasks") == []
    assert volume_id not in connected(data, server_id)
    assert (data / "volumes" / f"volume-{volume_id}.raw").exists()
    assert "nothing is in a transitional status" in ok(admin_cli(data, "volumes", "stuck"))
    # Restarted, nothing redoes the dropped attach, and the volume attaches cleanly.
    server.start()
    with server.client("admin") as client:
        assert client.get(f"/os-volumes/{volume_id}").json()["volume"]["status"] == "available"
        assert volume_id not in connected(data, server_id)
        attach_and_wait(client, server_id, volume_id)
    assert volume_id in connected(data, server_id)


def test_force_detach_disconnects_through_the_compute_driver(tmp_path: Path) -> None:
    server = StackvolProcess(tmp_path / "data").start()
    data = server.data_dir
    try:
        with server.client("admin") as client:
            server_id, volume_id = new_attached_pair(client)
        assert volume_id in connected(data, server_id)
        server.stop()
        # A truly connected volume may be (re)declared in-use; that changes nothing.
        assert "in-use -> in-use" in ok(admin_cli(data, "volume", "reset-state", volume_id,
                                                  "--state", "in-use"))
        fails(admin_cli(data, "volume", "force-detach", volume_id, "--server", "elsewhere"),
              "has no attachment from server elsewhere")
        out = ok(admin_cli(data, "volume", "force-detach", volume_id))
        assert "via compute driver simulated" in out and "in-use -> available" in out
        assert volume_id not in connected(data, server_id)
        assert rows(data, "SELECT status FROM volumes WHERE id = ?", volume_id) == [
            ("available",)]
        fails(admin_cli(data, "volume", "force-detach", volume_id), "has no attachment")
        fails(admin_cli(data, "volume", "reset-state", "no-such-volume", "--state", "error"),
              "could not be found")
        server.start()
        with server.client("admin") as client:
            volume = client.get(f"/os-volumes/{volume_id}").json()["volume"]
            assert volume["status"] == "available" and volume["attachments"] == [{}]
            attachments = client.get(f"/servers/{server_id}/os-volume_attachments").json()
            assert attachments["volumeAttachments"] == []
            assert client.delete(f"/os-volumes/{volume_id}").status_code == 202
            wait_for(lambda: client.get(f"/os-volumes/{volume_id}").status_code,
                     lambda code: code == 404)
    finally:
        server.stop()


def test_reset_to_available_needs_the_bytes(tmp_path: Path) -> None:
    server = StackvolProcess(tmp_path / "data").start()
    data = server.data_dir
    try:
        with server.client("admin") as client:
            volume_id = new_volume(client)
    finally:
        server.stop()
    (data / "volumes" / f"volume-{volume_id}.raw").unlink()
    fails(admin_cli(data, "volume", "reset-state", volume_id, "--state", "available"),
          "holds no data")
    assert "available -> error" in ok(admin_cli(data, "volume", "reset-state", volume_id,
                                                "--state", "error"))
    assert rows(data, "SELECT status FROM volumes WHERE id = ?", volume_id) == [("error",)]


# --- passwords, new commands, output formats, help (issue 15) ---------------------------------


def test_help_is_plain_text_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    leaves = [c for c in _commands(_parser(), ()) if c[:1] == ("admin",)
              and not any(isinstance(a, argparse._SubParsersAction)
                          for a in _subparser(c)._actions)]
    assert ("admin", "token", "rotate-keys") in leaves and ("admin", "user", "delete") in leaves
    for command in [("admin",), *leaves]:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        assert "``" not in out and ":class:" not in out, (command, out)
        assert "examples:\n  stackvol admin" in out, command


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = _parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("admin") / "data"
    ok(admin_cli(data, "bootstrap"))
    return data


@pytest.mark.parametrize("argv", [
    ("user", "create", "carol", "--password", "in-history"),
    ("clouds-yaml", "--user", "admin", "--password", "in-history"),
    ("bootstrap", "--admin-password", "in-history"),
    ("user", "password-reset", "admin", "--password", "in-history"),
])
def test_passwords_are_never_arguments(bootstrapped: Path, argv: tuple[str, ...]) -> None:
    done = admin_cli(bootstrapped, *argv)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "passwords are not taken as arguments" in done.stderr
    assert "--password-stdin" in done.stderr and "Traceback" not in done.stderr


def test_without_a_terminal_a_password_must_be_piped(bootstrapped: Path) -> None:
    fails(admin_cli(bootstrapped, "user", "create", "dave"), "--password-stdin")
    fails(admin_cli(bootstrapped, "user", "create", "dave", "--password-stdin", stdin="\n"),
          "held no password")
    assert "dave" not in ok(admin_cli(bootstrapped, "user", "list"))


def test_password_prompt_on_a_terminal(bootstrapped: Path) -> None:
    """At a terminal the password is asked twice (getpass: not echoed)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pty as its controlling terminal
        os.execve(sys.executable, [sys.executable, "-m", "stackvol", "admin", "user", "create",
                                   "erin", "--data-dir", str(bootstrapped)],
                  admin_env(bootstrapped))
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        while text not in seen:
            chunk = os.read(fd, 1024)
            assert chunk, seen
            seen += chunk

    expect(b"password for erin: ")
    os.write(fd, b"erin-pw\n")
    expect(b"(again): ")
    os.write(fd, b"erin-pw\n")
    try:
        while chunk := os.read(fd, 1024):
            seen += chunk
    except OSError:  # the child closed the terminal
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"erin-pw" not in seen  # never echoed
    hashed = rows(bootstrapped, "SELECT password_hash FROM users WHERE name = 'erin'")[0][0]
    from stackvol.services.identity.directory import check_secret

    assert check_secret("erin-pw", hashed)


def test_output_formats(bootstrapped: Path) -> None:
    listed = json.loads(ok(admin_cli(bootstrapped, "project", "list", "-f", "json")))
    assert {p["name"] for p in listed} >= {"admin", "demo"}
    assert set(listed[0]) == {"id", "name", "enabled", "description"}
    made = yaml.safe_load(ok(admin_cli(bootstrapped, "project", "create", "fmt", "-f", "yaml")))
    assert made["name"] == "fmt" and len(made["id"]) == 32  # one record: a mapping
    values = ok(admin_cli(bootstrapped, "user", "list", "-f", "value")).splitlines()
    assert any(line.split()[1] == "admin" for line in values)
    created = json.loads(ok(admin_cli(bootstrapped, "user", "create", "fmt-user", "-f", "json",
                                      "--password-stdin", "--project", "fmt", "--role",
                                      "member", stdin="pw\n")))
    assert created["default project"] == made["id"]
    assigned = json.loads(ok(admin_cli(bootstrapped, "role", "list", "--project", "fmt",
                                       "-f", "json")))
    assert assigned == [{"project": "fmt", "user": "fmt-user", "role": "member"}]
    assert json.loads(ok(admin_cli(bootstrapped, "volumes", "stuck", "-f", "json"))) == []
    table = ok(admin_cli(bootstrapped, "role", "list", "--project", "fmt"))
    assert table.startswith("+") and "| fmt     | fmt-user | member |" in table


def test_no_log_lines_on_stderr(bootstrapped: Path) -> None:
    for argv in (("project", "list"), ("user", "list", "-f", "json"), ("volumes", "stuck")):
        done = admin_cli(bootstrapped, *argv)
        assert done.returncode == 0 and done.stderr == "", (argv, done.stderr)


def test_delete_reset_rotate_against_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(admin_cli(data, "bootstrap"))
    ok(admin_cli(data, "project", "create", "gone"))
    ok(admin_cli(data, "user", "create", "frank", "--password-stdin", "--project", "gone",
                 "--role", "member", stdin="frank-pw\n"))
    server = StackvolProcess(data)
    server.start()
    try:
        # clouds-yaml, without --auth-url: the server's real port, not the default 8774
        text = ok(admin_cli(data, "clouds-yaml", "--user", "frank", "--password-stdin",
                            stdin="frank-pw\n"))
        cloud = yaml.safe_load(text)["clouds"]["stackvol-frank"]
        assert cloud["auth"]["auth_url"] == f"{server.url}/identity" != \
            "http://127.0.0.1:8774/identity"
        old = _token(server, "frank", "frank-pw", "gone")
        admin_token, _ = server.token("admin")
        assert _valid(server, admin_token, old)

        # password reset: the new password works, the old one does not, old tokens revoked
        out = ok(admin_cli(data, "user", "password-reset", "frank", "--password-stdin",
                           stdin="frank-new\n"))
        assert "set the password of user frank" in out
        # revoked in the database; the server's validation cache holds it ≤ 5 s more
        assert not wait_for(lambda: _valid(server, admin_token, old), lambda v: not v, 15)
        assert _auth(server, "frank", "frank-pw", "gone").status_code == 401
        fresh = _token(server, "frank", "frank-new", "gone")

        # key rotation: tokens signed by the previous key stay valid (after a restart too)
        out = ok(admin_cli(data, "token", "rotate-keys", "--keep", "1"))
        assert "kept 1 older key(s), removed 0" in out
        server.stop()
        server.start()
        admin_token, _ = server.token("admin")
        assert _valid(server, admin_token, fresh)
        signed_by_new = _token(server, "frank", "frank-new", "gone")
        assert rows(data, "SELECT count(*) FROM token_keys") == [(2,)]
        # rotating with no older key kept: what the previous key signed stops working
        assert "removed 2" in ok(admin_cli(data, "token", "rotate-keys", "--keep", "0"))
        server.stop()
        server.start()
        admin_token, _ = server.token("admin")
        assert not _valid(server, admin_token, signed_by_new)
        fails(admin_cli(data, "token", "rotate-keys", "--keep", "-1"), "--keep")

        # user and project delete
        assert "deleted user frank" in ok(admin_cli(data, "user", "delete", "frank"))
        assert _auth(server, "frank", "frank-new", "gone").status_code == 401
        fails(admin_cli(data, "user", "delete", "frank"), "Could not find user: frank")
        assert "deleted project gone" in ok(admin_cli(data, "project", "delete", "gone"))
        assert "gone" not in ok(admin_cli(data, "project", "list", "-f", "value"))
        fails(admin_cli(data, "project", "delete", "gone"), "Could not find project: gone")
    finally:
        server.stop()


def _auth(server: StackvolProcess, user: str, password: str, project: str) -> Any:
    import httpx

    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    return httpx.post(server.url + "/identity/v3/auth/tokens", json=body, timeout=10)


def _token(server: StackvolProcess, user: str, password: str, project: str) -> str:
    resp = _auth(server, user, password, project)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def _valid(server: StackvolProcess, admin_token: str, token: str) -> bool:
    import httpx

    resp = httpx.get(server.url + "/identity/v3/auth/tokens", timeout=10,
                     headers={"X-Auth-Token": admin_token, "X-Subject-Token": token})
    return resp.status_code == 200
