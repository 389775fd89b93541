"""P11: prompt characters sent for one investigation of the stuck-namespace scenario with
the demo model (2 tool rounds, then the conclusion): the characters of every message of
every model call, read from the session's timeline after a real `sre-agent demo` run
(see `bench/cli_run.py`). Deterministic: one run is enough."""

from __future__ import annotations

from bench.cli_run import cli_runs, demo_available
from bench.common import Result

ID = "P11"
TITLE = "prompt characters per stuck-namespace investigation (demo model)"
TARGET = "≤ 45,000 characters"


async def run(smoke: bool) -> Result:
    missing = demo_available()
    if missing:
        raise RuntimeError(f"cannot run the demo: {missing}")
    run_ = (await cli_runs(1))[0]
    chars = run_.prompt_chars
    by_call = ", ".join(
        f"{c['step']}#{c['iteration']} {c['chars']:,}" for c in run_.prompt_chars_by_call
    )
    return Result(
        id=ID,
        title=TITLE,
        value=chars,
        unit="chars",
        target=TARGET,
        passed=chars <= 45_000,
        summary=f"{chars:,} characters in {run_.model_calls} model calls ({by_call})",
        details={"model_calls": run_.model_calls, "calls": run_.prompt_chars_by_call},
    )
