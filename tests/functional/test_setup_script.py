"""scripts/setup: ``--serve`` installs no PostgreSQL; a non-root user without sudo is told what
to run as root; the Dockerfile builds an image that runs ``stackvol serve``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup"


def _fake_path(tmp_path: Path) -> Path:
    """A PATH with the tools the script needs, no sudo, and a dpkg-query that says nothing is
    installed (so the script wants to install)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "grep", "id", "sed", "dirname", "cat", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    dpkg = bin_dir / "dpkg-query"
    dpkg.write_text("#!/bin/sh\nexit 1\n")
    dpkg.chmod(0o755)
    return bin_dir


def _run_setup(_: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The script (copied) as the unprivileged user ``nobody``, with no sudo on its PATH."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to run the script as another user) and setpriv")
    with tempfile.TemporaryDirectory() as tmp:  # pytest's own is private to root
        return _as_nobody(Path(tmp), *args)


def _as_nobody(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, repo / "scripts" / "setup")
    bin_dir = _fake_path(tmp_path)
    for path in (tmp_path, repo, repo / "scripts", bin_dir):
        path.chmod(0o755)
    return subprocess.run(
        [shutil.which("setpriv") or "setpriv", "--reuid=nobody", "--regid=nogroup",
         "--clear-groups", str(bin_dir / "bash"), str(repo / "scripts" / "setup"), *args],
        capture_output=True, text=True, timeout=60, env={"PATH": str(bin_dir)})


def test_no_sudo_says_what_to_run_as_root(tmp_path: Path) -> None:
    done = _run_setup(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs root (there is no sudo). Run as root:" in done.stderr
    assert "apt-get install -y --no-install-recommends" in done.stderr
    assert "postgresql" in done.stderr and "qemu-utils" in done.stderr


def test_serve_mode_wants_no_postgresql(tmp_path: Path) -> None:
    done = _run_setup(tmp_path, "--serve")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "qemu-utils" in done.stderr and "postgresql" not in done.stderr
    assert "scripts/setup --serve again" in done.stderr


def test_unknown_option(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(SETUP), "--bogus"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "usage: scripts/setup [--serve]" in done.stderr


def test_readme_commands_match_the_script() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/setup --serve && .venv/bin/stackvol serve" in readme
    assert "./scripts/setup && .venv/bin/pytest -q" in readme


def test_pyproject_has_ranges_and_constraints_the_pins() -> None:
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for extra in project["optional-dependencies"]
                                          .values() for d in extra)]
    pins = {line.split("==")[0].lower() for line in
            (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    for requirement in wanted:
        assert "==" not in requirement, requirement
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()
        assert name in pins, f"{name} has no exact pin in constraints.txt"


def _docker_works() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, timeout=30).returncode == 0


def test_dockerfile_runs_stackvol_serve() -> None:
    """Built where a container engine answers; else linted with hadolint where installed;
    always read: its instructions name real files and real settings."""
    from stackvol.config import Settings

    dockerfile = ROOT / "Dockerfile"
    lines = [line for line in dockerfile.read_text().replace("\\\n", " ").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    instructions = [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in lines]
    assert instructions[0][0] == "FROM"
    assert dict(instructions)["ENTRYPOINT"] == '["stackvol"]'
    assert dict(instructions)["CMD"] == '["serve"]'
    assert dict(instructions)["EXPOSE"] == "8774"
    for verb, rest in instructions:
        if verb == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
        if verb == "ENV":
            names = [part.split("=")[0] for part in rest.split() if "=" in part]
            settings = {n.removeprefix("STACKVOL_").lower()
                        for n in names if n.startswith("STACKVOL_")}
            assert settings and settings <= set(Settings.__dataclass_fields__
                                                if hasattr(Settings, "__dataclass_fields__")
                                                else Settings.model_fields), settings
    if _docker_works():
        built = subprocess.run(["docker", "build", "-q", "-t", "stackvol-test", str(ROOT)],
                               capture_output=True, text=True, timeout=1800)
        assert built.returncode == 0, built.stderr
    elif shutil.which("hadolint"):
        linted = subprocess.run(["hadolint", str(dockerfile)], capture_output=True, text=True,
                                timeout=60)
        assert linted.returncode == 0, linted.stdout + linted.stderr
