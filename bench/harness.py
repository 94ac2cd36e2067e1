"""What every benchmark here shares: memory and CPU probes, fresh-interpreter workers, and the
result table's row. Imported by ``bench/*.py`` (run as scripts, so this folder is on the path).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
INCLUDE = REPO / "include"
GIB = 1 << 30

Result = dict[str, Any]


# ---- memory and CPU probes -------------------------------------------------------------------
def _status_bytes(key: str) -> int:
    """A ``kB`` field of /proc/self/status in bytes (0 where /proc is missing)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def rss_now() -> int:
    return _status_bytes("VmRSS")


def ru_maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_peak() -> int:
    """Peak RSS since the last :func:`reset_peak`: VmHWM, else ``ru_maxrss``."""
    return _status_bytes("VmHWM") or ru_maxrss()


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a phase's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def sessions_cpu_s(sessions: set[int]) -> float:
    """CPU seconds of every live process in ``sessions`` (by session id), with what the children
    they reaped used (``cutime``/``cstime``): read at two moments, the difference is what those
    process trees used in between, the ones that exited meanwhile included (a process reaped by
    one that is gone too is lost; rare)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        # after the command: state ppid pgrp session ... utime(11) stime cutime cstime
        if int(fields[3]) in sessions:
            total += sum(int(x) for x in fields[11:15])
    return total / tick


class OutsideLoad:
    """The mean cores processes other than ours kept busy between :meth:`start` and :meth:`stop`:
    all cores' busy time (``/proc/stat``) less this process's CPU, its reaped children's, and that
    of the process sessions named (a stack's components and the tasks they fork)."""

    def __init__(self, sessions: set[int] | None = None) -> None:
        self.sessions = sessions or set()

    def _ours(self) -> float:
        return _self_cpu_s() + _children_cpu_s() + sessions_cpu_s(self.sessions)

    def start(self) -> None:
        self.t0, self.busy0, self.ours0 = time.perf_counter(), _cpu_busy_s(), self._ours()

    def stop(self) -> Result:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        busy, ours = _cpu_busy_s() - self.busy0, self._ours() - self.ours0
        return {"other_cores": max(0.0, busy - ours) / wall, "own_cores": ours / wall, "wall_s": wall}


# ---- workers in fresh interpreters -----------------------------------------------------------
def code_fingerprint(modules: tuple[str, ...]) -> str:
    """A short hash of the measured ``nightshift`` modules, to tell runs of different code apart."""
    h = hashlib.sha256()
    for name in modules:
        h.update((INCLUDE / "nightshift" / name).read_bytes())
    return h.hexdigest()[:12]


def git_commit() -> str:
    """``git rev-parse --short HEAD`` of the repository, with ``+dirty`` when tracked files
    differ from it (``unknown`` outside a git checkout)."""
    try:
        git = ["git", "-C", str(REPO)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


@dataclass
class Run:
    """One worker run seen from outside: its result, wall time and the load of others."""

    result: Result
    wall_s: float
    other_cores: float  # mean cores busy with processes other than the worker


def run_worker(
    script: str, name: str, args: Result, tmp_dir: Path, env: dict[str, str], show_stderr: bool = False
) -> Run:
    """Run ``script --worker name`` in a fresh interpreter with ``env``; its JSON result, wall
    time and the cores other processes kept busy meanwhile."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", dir=tmp_dir, delete=False) as fh:
        out = Path(fh.name)
    env = {**env, "PYTHONPATH": os.pathsep.join([str(INCLUDE), env.get("PYTHONPATH", "")])}
    cmd = [sys.executable, script, "--worker", name, "--args", json.dumps(args), "--out", str(out)]
    busy0, own0, t0 = _cpu_busy_s(), _children_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    other = max(0.0, (_cpu_busy_s() - busy0) - (_children_cpu_s() - own0)) / max(wall, 1e-9)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        out.unlink(missing_ok=True)
        raise RuntimeError(f"worker {name} failed with exit code {proc.returncode}")
    if show_stderr:
        sys.stderr.write(proc.stderr)
    result: Result = json.loads(out.read_text())
    out.unlink()
    return Run(result, wall, other)


def worker_main(workers: dict[str, Any], name: str, args_json: str, out: str) -> None:
    """The worker side of :func:`run_worker`."""
    result = workers[name](json.loads(args_json))
    Path(out).write_text(json.dumps(result, default=str))


# ---- the report ------------------------------------------------------------------------------
def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass
class Row:
    metric: str
    value: str
    baseline: str
    ratio: float | None
    goal: str
    verdict: str
