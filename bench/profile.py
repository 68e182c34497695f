"""Optional sampling profiles of the server under load, with py-spy (``pip install py-spy``).

py-spy is a profiling aid only, not a dependency: ``--profile DIR`` records one raw
(collapsed-stack) file per workload and prints where the on-CPU samples went, by function
(self time) and by frame on the stack (inclusive time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def find_py_spy() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``out``; the caller waits on the process."""
    py_spy = find_py_spy()
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         # --gil: only the thread running Python, i.e. where the server's CPU goes.
         "--rate", str(rate), "--format", "raw", "--gil", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _frame_name(frame: str) -> str:
    """``func (path/file.py:123)`` without the line number, so a function is one row."""
    match = _FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


# Thread-pool threads parked in ``queue.get`` that py-spy counts as running (without --gil).
_PARKED = "_worker (concurrent/futures/thread.py)"


def _stacks(raw: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame_name(f) for f in stack.split(";")]
        if stack and count.isdigit() and frames[-1] != _PARKED:
            out.append((frames, int(count)))
    return out


def _package(name: str) -> str:
    """The top-level package (or stdlib module) a ``func (path)`` frame belongs to."""
    path = name.rpartition(" (")[2].rstrip(")")
    return path.split("/", 1)[0] if "/" in path else path.removesuffix(".py")


def summarize(raw: Path, top: int = 15) -> str:
    """Where the on-CPU samples went: self share by function and by package, and the share of
    samples with each of our own functions on the stack (inclusive)."""
    stacks = _stacks(raw)
    total = sum(count for _, count in stacks)
    if not total:
        return f"{raw}: no samples"
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            if "(stackvol/" in frame and "(stackvol/cli/" not in frame:
                inclusive[frame] += count
    pct = lambda n: f"{100 * n / total:5.1f}"  # noqa: E731
    lines = [f"{raw}: {total} on-CPU samples (py-spy --gil, unmeasured extra run)",
             "  self% by package: " + ", ".join(f"{name} {pct(n).strip()}"
                                              for name, n in packages.most_common(8)),
             "  self%  function"]
    lines += [f"  {pct(n)}  {name}" for name, n in own.most_common(top)]
    lines.append("  incl%  stackvol function (share of samples with it on the stack)")
    lines += [f"  {pct(n)}  {name}" for name, n in inclusive.most_common(top)
              if "__main__" not in name]
    return "\n".join(lines)
