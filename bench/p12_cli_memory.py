"""P12: peak resident memory of one CLI investigation (`sre-agent demo`, the
stuck-namespace scenario, see `bench/cli_run.py`): the CLI process's own VmHWM; the
largest peak among it and its waited-for children (wait4) is reported alongside.
Median of the runs P10 makes."""

from __future__ import annotations

from bench.cli_run import cli_runs, demo_available
from bench.common import MIB, Result, median

ID = "P12"
TITLE = "CLI: peak resident memory of one investigation"
TARGET = "≤ 145 MiB"


async def run(smoke: bool) -> Result:
    missing = demo_available()
    if missing:
        raise RuntimeError(f"cannot run the demo: {missing}")
    runs = await cli_runs(1 if smoke else 5)
    peak = median([r.peak_rss for r in runs]) / MIB
    children = median([r.peak_rss_children for r in runs]) / MIB
    return Result(
        id=ID,
        title=TITLE,
        value=round(peak, 1),
        unit="MiB",
        target=TARGET,
        passed=peak <= 145,
        summary=f"peak RSS {peak:.1f} MiB (largest of it and its children {children:.1f} MiB)",
        details={
            "peak_rss_mib": [round(r.peak_rss / MIB, 1) for r in runs],
            "peak_rss_with_children_mib": [round(r.peak_rss_children / MIB, 1) for r in runs],
        },
    )
