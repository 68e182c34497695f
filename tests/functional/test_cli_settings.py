"""Settings at start-up: every bad setting stops ``stackvol`` with one line naming it (exit 2)
before anything is written; the generated settings reference is current; Nova's and Cinder's
quota defaults ship; the bootstrap passwords are printed on the first start only;
``--ephemeral`` leaves nothing behind; ``--version``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from stackvol.cli.main import main
from stackvol.config import Settings, load_settings
from stackvol.services.quotas.api import configured_defaults
from tests.support.server import StackvolProcess, free_port, running, wait_for

REPO = Path(__file__).resolve().parents[2]
CINDER_DEFAULTS = {"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
                   "backup_gigabytes": 1000, "per_volume_gigabytes": -1, "groups": 10}
NOVA_DEFAULTS = {"instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128,
                 "injected_files": 5, "injected_file_content_bytes": 10240,
                 "injected_file_path_bytes": 255, "key_pairs": 100, "server_groups": 10,
                 "server_group_members": 10}


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any STACKVOL_* (a CI run's database, say)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKVOL_")}
    return {**env, **{f"STACKVOL_{k.upper()}": v for k, v in settings.items()}}


def stackvol(cwd: Path, *args: str, timeout: float = 60,
             **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackvol", *args], cwd=cwd,
                          env={**clean_env(**env), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=timeout)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def assert_refused(done: subprocess.CompletedProcess[str], setting: str,
                   *words: str) -> str:
    """Exit 2, one line on stderr naming the setting, no traceback, nothing on stdout."""
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("stackvol: "), done.stderr
    assert re.search(rf"\b{setting}\b", lines[0]), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert done.stdout == ""
    return lines[0]


# --- one CLI test per bad setting -------------------------------------------------------------


# Each case names its own port (a free one, unless the port is what it gets wrong): a setting
# accepted by mistake would start a server, and the test would time out saying so.
def _port() -> list[str]:
    return ["--port", str(free_port())]


def _file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("not a directory")
    return ["--data-dir", "afile", *_port()]


def _under_a_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("not a directory")
    return ["--data-dir", "afile/data", *_port()]


def _unwritable(tmp: Path) -> list[str]:
    if os.geteuid() == 0:  # root writes anywhere permissions say; /proc/sys refuses even root
        return ["--data-dir", "/proc/sys/stackvol-test/data", *_port()]
    locked = tmp / "locked"
    locked.mkdir(mode=0o555)
    return ["--data-dir", "locked/data", *_port()]


def _toml(text: str) -> Callable[[Path], list[str]]:
    def write(tmp: Path) -> list[str]:
        port = "" if text.startswith("port") else f"port = {free_port()}\n"
        (tmp / "stackvol.toml").write_text(f"[stackvol]\n{port}{text}\n")
        return ["--config", "stackvol.toml", "--data-dir", "data"]
    return write


def _flags(*flags: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["--data-dir", "data", *flags, *([] if "--port" in flags else _port())]


BAD = {
    "database_url_no_driver": (_flags("--database-url", "bogus://x"), "database_url",
                               ["no driver 'bogus'", "sqlite:///PATH"]),
    "database_url_in_memory": (_flags("--database-url", "sqlite:///:memory:"), "database_url",
                               ["in-memory", "sqlite:///PATH"]),
    "database_url_unsupported": (_flags("--database-url", "mysql+pymysql://u:pw@h/d"),
                                 "database_url", ["not supported", "u:***@h"]),
    "log_level": (_flags("--log-level", "LOUD"), "log_level",
                  ["one of CRITICAL, ERROR, WARNING, INFO, DEBUG"]),
    "data_dir_is_a_file": (_file, "data_dir", ["not a directory"]),
    "data_dir_under_a_file": (_under_a_file, "data_dir", ["cannot be created"]),
    "data_dir_unwritable": (_unwritable, "data_dir", ["not writable"]),
    "port_out_of_range": (_flags("--port", "99999"), "port", ["from 1 to 65535"]),
    "port_not_a_number_in_toml": (_toml('port = "abc"'), "port", ["'abc'", "from 1 to 65535"]),
    "volume_format": (_toml('volume_format = "vmdk"'), "volume_format", ["one of raw, qcow2"]),
    "quota_below_unlimited": (_toml("quota_volumes = -2"), "quota_volumes", [">= -1"]),
    "unknown_setting": (_toml("colour = 1"), "colour", ["unknown setting"]),
    "public_url": (_flags("--public-url", "nowhere"), "public_url", ["http"]),
    "ephemeral_with_a_database": (
        lambda tmp: ["--ephemeral", "--database-url", f"sqlite:///{tmp}/x.sqlite", *_port()],
        "ephemeral", ["leave data_dir and database_url unset"]),
    "config_file_missing": (lambda tmp: ["--config", "nowhere.toml", *_port()], "config",
                            ["cannot read it"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_setting_stops_serve_in_one_line_writing_nothing(tmp_path: Path,
                                                               case: str) -> None:
    make_args, setting, words = BAD[case]
    args = make_args(tmp_path)
    before = tree(tmp_path)
    done = stackvol(tmp_path, "serve", *args, timeout=30)
    assert_refused(done, setting, *words)
    assert tree(tmp_path) == before


def test_a_bad_setting_from_the_environment_names_the_setting(tmp_path: Path) -> None:
    done = stackvol(tmp_path, "serve", "--data-dir", "data", token_ttl_seconds="0",
                    port=str(free_port()))
    assert_refused(done, "token_ttl_seconds", ">= 1")
    assert tree(tmp_path) == []


def test_an_unreachable_database_is_refused_after_a_short_wait(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://stackvol:secret@127.0.0.1:{free_port()}/stackvol"
    done = stackvol(tmp_path, "serve", "--data-dir", "data", "--database-url", url,
                    "--port", str(free_port()))
    line = assert_refused(done, "database_url", "cannot connect")
    assert "secret" not in line and "stackvol:***@127.0.0.1" in line
    assert tree(tmp_path) == []


def test_a_port_in_use_is_refused_before_the_data_dir_exists(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = stackvol(tmp_path, "serve", "--data-dir", "data", "--port", str(port))
    assert_refused(done, "port", str(port), "in use")
    assert tree(tmp_path) == []  # no data dir, no database, no passwords


@pytest.mark.parametrize(("args", "setting"), [
    (["--database-url", "bogus://x"], "database_url"),
    (["--database-url", "sqlite:///:memory:"], "database_url"),
    (["--data-dir", "afile"], "data_dir"),
])
def test_the_admin_cli_refuses_bad_settings_the_same_way(tmp_path: Path, args: list[str],
                                                          setting: str) -> None:
    (tmp_path / "afile").write_text("not a directory")
    done = stackvol(tmp_path, "admin", "project", "list", *args)
    assert_refused(done, setting)
    assert tree(tmp_path) == ["afile"]


def test_layers_keep_their_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("STACKVOL_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "c.toml"
    config.write_text('[stackvol]\nport = 9001\nregion = "FromFile"\nquota_volumes = 3\n'
                      'log_level = "debug"\n')
    monkeypatch.setenv("STACKVOL_PORT", "9002")
    monkeypatch.setenv("STACKVOL_CONFIG", str(config))
    settings = load_settings(port="9003")
    assert (settings.port, settings.region, settings.log_level) == (9003, "FromFile", "DEBUG")
    assert load_settings().port == 9002
    assert configured_defaults(settings)["volumes"] == 3
    monkeypatch.delenv("STACKVOL_CONFIG")
    monkeypatch.delenv("STACKVOL_PORT")
    assert (load_settings().port, load_settings().quota_volumes) == (8774, 10)


# --- the settings reference -------------------------------------------------------------------


def test_the_committed_settings_reference_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "docs"]) == 0
    generated = capsys.readouterr().out
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == generated, (
        "docs/configuration.md is stale: run `stackvol config docs > docs/configuration.md`")
    for name, info in Settings.model_fields.items():  # every setting, described
        assert f"| `{name}` |" in generated and f"`STACKVOL_{name.upper()}`" in generated
        assert info.description, name
    assert "docs/configuration.md" in (REPO / "README.md").read_text()


# --- quota defaults ---------------------------------------------------------------------------


def test_nova_and_cinder_quota_defaults_ship(tmp_path: Path) -> None:
    with running(tmp_path / "data", shipped_quotas=True) as server:
        token, body = server.token("demo")
        project = body["project"]["id"]
        headers = {"X-Auth-Token": token}
        nova = httpx.get(f"{server.url}/v2.1/os-quota-sets/{project}/defaults",
                         headers=headers, timeout=30).json()["quota_set"]
        assert {k: nova[k] for k in NOVA_DEFAULTS} == NOVA_DEFAULTS
        cinder = httpx.get(f"{server.url}/volume/v3/{project}/os-quota-sets/{project}/defaults",
                           headers=headers, timeout=30).json()["quota_set"]
        assert {k: cinder[k] for k in CINDER_DEFAULTS} == CINDER_DEFAULTS
        # A project's own limits start from them.
        shown = httpx.get(f"{server.url}/volume/v3/{project}/os-quota-sets/{project}",
                          headers=headers, timeout=30).json()["quota_set"]
        assert (shown["volumes"], shown["gigabytes"]) == (10, 1000)


# --- what a start prints ----------------------------------------------------------------------


def test_passwords_are_printed_on_the_first_start_only(tmp_path: Path) -> None:
    server = StackvolProcess(tmp_path / "data")
    server.start()
    server.stop()
    first = server.log_path.read_text()
    passwords = [entry["password"] for entry in server.credentials().values()]
    assert all(p in first for p in passwords) and "first start only" in first
    assert f"clouds.yaml (clouds stackvol-admin, stackvol-demo): {server.clouds_yaml}" in first
    server.start()
    server.stop()
    second = server.log_path.read_text()[len(first):]
    assert "stackvol is serving at" in second and str(server.clouds_yaml) in second
    assert "bootstrap-credentials.json" in second
    assert not [p for p in passwords if p in second]
    assert "first start" not in second


def test_ephemeral_serves_from_a_directory_removed_at_exit(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stackvol", "serve", "--ephemeral", "--port", str(port)],
        cwd=tmp_path, env={**clean_env(password_hash_rounds="4"), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        announced = []
        for line in proc.stdout:  # type: ignore[union-attr]
            announced.append(line)
            if line.startswith("ephemeral:"):  # the last line of the announcement
                break
        where = Path(re.search(r"everything is in (\S+),", announced[-1]).group(1))
        assert (where / "stackvol.sqlite").exists() and (where / "clouds.yaml").exists()
        health = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthcheck",
                                            timeout=5).status_code, lambda s: s == 200)
        assert health == 200
        assert any("first start: created user admin" in line for line in announced)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not where.exists()
    assert tree(tmp_path) == []  # no ./data either


def test_version(tmp_path: Path) -> None:
    done = stackvol(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"stackvol {metadata.version('stackvol')}"
