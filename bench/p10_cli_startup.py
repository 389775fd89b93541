"""P10: `sre-agent demo` (the stuck-namespace investigation through the real CLI, in a
subprocess): from spawning the process to its first model request. See `bench/cli_run.py`
for how the moment of the first request is read (the graph's own record of the call) and
cross-checked (the first `iteration 1/N` line). Median of several runs; CPU seconds of the
whole run are reported too, as they vary less than wall time on a busy machine."""

from __future__ import annotations

from bench.cli_run import cli_runs, demo_available
from bench.common import Result, median

ID = "P10"
TITLE = "CLI: process start to first model request"
TARGET = "≤ 1.7 s"


async def run(smoke: bool) -> Result:
    missing = demo_available()
    if missing:
        raise RuntimeError(f"cannot run the demo: {missing}")
    runs = await cli_runs(1 if smoke else 5)
    first = [r.first_model_s for r in runs if r.first_model_s is not None]
    lines = [r.first_iteration_line_s for r in runs if r.first_iteration_line_s is not None]
    value = median(first)
    return Result(
        id=ID,
        title=TITLE,
        value=round(value, 3),
        unit="s",
        target=TARGET,
        passed=value <= 1.7 if not smoke else None,
        summary=f"first model request {value:.2f} s after spawn (first 'iteration 1' line "
        f"{median(lines):.2f} s); whole demo {median([r.wall_s for r in runs]):.2f} s wall, "
        f"{median([r.cpu_s for r in runs]):.2f} s CPU",
        details={
            "first_model_request_s": [round(v, 3) for v in first],
            "first_iteration_line_s": [round(v, 3) for v in lines],
            "wall_s": [round(r.wall_s, 3) for r in runs],
            "cpu_s": [round(r.cpu_s, 3) for r in runs],
            "runs": len(runs),
        },
    )
