"""The host side of the guest agent protocol (``agent_run``) against a stand-in agent that
runs each line with ``sh -c`` as the guest's does, on a real Unix socket."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

from stackvol.virt.guest_image import END_MARK, agent_run


def _agent(server: socket.socket, stale: bytes) -> None:
    """Answer one connection: first ``stale`` (what a command whose caller gave up printed),
    then each line the host sends, run by a shell, followed by the end mark and status."""
    conn, _ = server.accept()
    with conn:
        conn.sendall(stale)
        line = conn.makefile("rb").readline()
        done = subprocess.run(["sh", "-c", line.decode()], capture_output=True, check=False)
        conn.sendall(done.stdout + f"\n{END_MARK} {done.returncode}\n".encode())


def _run(tmp_path: Path, command: str, stale: bytes = b"") -> tuple[int, str]:
    path = str(tmp_path / f"agent-{len(list(tmp_path.iterdir()))}.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        thread = threading.Thread(target=_agent, args=(server, stale))
        thread.start()
        try:
            return agent_run(path, command, timeout=10)
        finally:
            thread.join(10)


def test_output_and_status_of_one_command(tmp_path: Path) -> None:
    assert _run(tmp_path, "printf 'a b\\n'; printf c") == (0, "a b\nc")
    assert _run(tmp_path, "echo no >&2; exit 3") == (3, "")


def test_the_late_answer_to_an_abandoned_command_is_not_taken_for_this_one(
        tmp_path: Path) -> None:
    # What a slow guest's answer to an earlier, timed-out `cat /proc/cmdline` looks like.
    stale = f"console=ttyS0 quiet\n\n{END_MARK} 0\n\n{END_MARK} 0\n".encode()
    assert _run(tmp_path, "echo fresh", stale) == (0, "fresh\n")
