"""Processes held to a share of one core (the CPU bandwidth limit of Linux cgroups, v1 or
v2), so that a benchmark can be measured as on a slower CPU. This machine's speed varies
about twofold within a day, and P2, a ratio of wall times where the waits take as long on
any CPU and the work does not, moves with it. The limit works in periods of a few
milliseconds: a held process runs and waits in steps that short, as on a slower CPU.
Needs write access to the cgroup file system (root in a container); `unavailable` says
why not otherwise."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
PERIOD_US = 10000


def _root() -> tuple[Path, bool] | None:
    """The cgroup folder where groups with a CPU limit are made, and whether it is v2."""
    if (CGROUPS / "cpu" / "cpu.cfs_quota_us").exists():
        return CGROUPS / "cpu", False
    controllers = CGROUPS / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUPS, True
    return None


def unavailable() -> str | None:
    """Why processes cannot be held to a share of a core here; None when they can."""
    found = _root()
    if found is None:
        return "no cgroup CPU controller at /sys/fs/cgroup"
    if not os.access(found[0], os.W_OK):
        return f"no write access to {found[0]} (needs root)"
    return None


@contextlib.contextmanager
def held(pids: Sequence[int], share: float) -> Iterator[None]:
    """Each of `pids` (with all its threads) held to `share` of one core, until the end."""
    found = _root()
    assert found is not None, unavailable()
    root, v2 = found
    groups: list[Path] = []
    try:
        for pid in pids:
            group = root / f"sre-bench-{os.getpid()}-{pid}"
            group.mkdir(exist_ok=True)
            groups.append(group)
            quota = int(share * PERIOD_US)
            if v2:
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(pid))
        yield
    finally:
        for group in groups:
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):  # it may have ended meanwhile
                        (root / "cgroup.procs").write_text(pid)
                group.rmdir()


_LOOP = """
import sys
from bench.common import reference_loop
sys.stdin.readline()  # once it is held
print(reference_loop())
"""


def loop_seconds(share: float) -> float:
    """The reference loop (`bench.common.reference_loop`) in a process held to `share` of
    a core: how fast a held process runs."""
    process = subprocess.Popen(
        [sys.executable, "-c", _LOOP],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with held([process.pid], share):
        time.sleep(0.05)
        out, _ = process.communicate("go\n", timeout=60)
    return round(float(out), 3)
