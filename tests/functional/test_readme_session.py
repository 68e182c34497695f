"""The README's copy-paste CLI session (the block after ``<!-- readme-session``), run as written
with bash against a real server: on the simulated driver always, on libvirt where a daemon can
be had (CI)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.server import StackvolProcess

ROOT = Path(__file__).resolve().parents[2]


def readme_session() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- readme-session[^\n]*-->\n```sh\n(.*?)\n```", text, re.S)
    assert match, "README.md has no readme-session block"
    return match.group(1)


def run_session(server: StackvolProcess) -> subprocess.CompletedProcess[str]:
    """The block in a bash with ``set -e``, from the directory holding ``data/`` and ``.venv``
    (a link to this checkout's), as a reader runs it after ``stackvol serve``."""
    cwd = server.data_dir.parent
    assert server.data_dir.name == "data"
    if not (cwd / ".venv").exists():
        (cwd / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    script = "set -euo pipefail\nset -x\n" + readme_session()
    return subprocess.run([shutil.which("bash") or "bash", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_session_parses() -> None:
    session = readme_session()
    for step in ("openstack volume create", "openstack server create --image "
                 "70a599e0-31e7-49b7-b260-868f441e862b", "openstack server add volume",
                 "openstack console log show", "openstack server remove volume",
                 "openstack server delete", "openstack volume delete"):
        assert step in session, step


def _check(done: subprocess.CompletedProcess[str], server: StackvolProcess) -> None:
    assert done.returncode == 0, (done.stdout[-3000:] + done.stderr[-5000:]
                                  + server.log_path.read_text()[-3000:])
    assert "stackvol-guest" in done.stdout  # image list
    assert re.search(r"stackvol guest: disk vd[a-z] serial [0-9a-f-]{20}", done.stdout)
    with server.client("demo") as demo:
        assert demo.get("/servers").json()["servers"] == []
        assert demo.get("/os-volumes").json()["volumes"] == []


def test_readme_session_on_the_simulated_driver(tmp_path: Path) -> None:
    server = StackvolProcess(tmp_path / "data").start()
    try:
        # The README's clouds.yaml is the server's own (data/clouds.yaml), on its real port.
        _check(run_session(server), server)
    finally:
        server.stop()


def test_readme_session_on_libvirt(tmp_path: Path) -> None:
    from tests.support.libvirt_guest import libvirt_cloud, require_libvirt

    require_libvirt()
    with libvirt_cloud(tmp_path) as server:
        _check(run_session(server), server)
