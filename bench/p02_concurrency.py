"""P2: many alerts at once. The service runs in its own process (uvicorn, workers,
SQLite history) with MAX_CONCURRENT_ALERTS = the burst size, the scripted model at a
fixed latency and the fixture MCP server (2 tools per iteration, fixed latency, 4 kB and
20 kB results). Wall time = from the first POST /alerts to the moment the session index
reports no investigation running or queued (GET /health, polled every 50 ms); every
session's /processing-status must then say completed. One alert alone is measured the same
way on the same warmed-up service; both are medians of repeated runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Plan, Result, bench_alert, median
from bench.service import service_for

ID = "P2"
TITLE = "N concurrent alerts (model 0.5 s, 3 iterations) vs one alone"
TARGET = "≤ 1.3× one alone (N = 200)"


async def run(smoke: bool) -> Result:
    n = 5 if smoke else 200
    latency = 0.05 if smoke else 0.5
    plan = Plan(iterations=3, tools=2, latency=0.02 if smoke else 0.1, sizes=(4000, 20000))
    single_runs = 1 if smoke else 3
    burst_runs = 1 if smoke else 3
    with tempfile.TemporaryDirectory(prefix="bench-p2-") as tmp:
        async with await service_for(
            smoke, Path(tmp), latency=latency, max_concurrent=n, max_queued=n
        ) as service:
            if not smoke:
                await service.run_burst([bench_alert(plan)])  # warm-up
            singles, single_cpu = [], []
            for _ in range(single_runs):
                cpu = service.cpu_seconds()
                singles.append((await service.run_burst([bench_alert(plan)]))[0])
                single_cpu.append(service.cpu_seconds() - cpu)
            bursts, burst_cpu = [], []
            for _ in range(burst_runs):
                cpu = service.cpu_seconds()
                wall, _ = await service.run_burst([bench_alert(plan) for _ in range(n)])
                bursts.append(wall)
                burst_cpu.append((service.cpu_seconds() - cpu) / n)
            locked = service.log_lines("database is locked")
    single, burst = median(singles), median(bursts)
    ratio = burst / single
    model_wait = (2 * plan.iterations + 1) * latency
    tool_wait = plan.iterations * plan.latency
    return Result(
        id=ID,
        title=TITLE.replace("N ", f"{n} ").replace("0.5 s", f"{latency:g} s"),
        value=round(ratio, 3),
        unit="×",
        target=TARGET,
        passed=ratio <= 1.3 if not smoke else None,
        summary=f"{n} at once {burst:.2f} s vs one alone {single:.2f} s = {ratio:.2f}× "
        f"(waits alone: model {model_wait:.2f} s + tools {tool_wait:.2f} s)"
        + f"; service CPU {median(burst_cpu) * 1000:.0f} ms per alert in the burst "
        f"({median(single_cpu) * 1000:.0f} alone)"
        + (f"; {locked} index writes failed: database is locked" if locked else ""),
        details={
            "alerts": n,
            "model_latency_s": latency,
            "iterations": plan.iterations,
            "tool_latency_s": plan.latency,
            "tool_output_bytes": list(plan.sizes),
            "single_wall_s": [round(s, 3) for s in singles],
            "burst_wall_s": [round(b, 3) for b in bursts],
            "ratio": round(ratio, 3),
            "service_cpu_ms_per_alert_alone": round(median(single_cpu) * 1000, 1),
            "service_cpu_ms_per_alert_in_burst": round(median(burst_cpu) * 1000, 1),
            "waits_alone_s": round(model_wait + tool_wait, 3),
            "index_writes_failed_database_locked": locked,
        },
    )
