"""P9: resident memory of the service process (its own RSS from /proc; the MCP server is a
separate process): idle after start-up and one warm-up investigation, then at its peak
while N investigations are in flight at once (MAX_CONCURRENT_ALERTS = N, model latency
1 s, 3 iterations, 2 tools of 4 kB / 20 kB per iteration), sampled every 20 ms. Per
session = (peak − idle) / N."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import MIB, Plan, Result, bench_alert
from bench.service import service_for

ID = "P9"
TITLE = "service resident memory: idle and N sessions in flight"
TARGET = "report; ≤ 2 MB per session (N = 200)"


async def run(smoke: bool) -> Result:
    n = 5 if smoke else 200
    plan = Plan(iterations=3, tools=2, latency=0.05, sizes=(4000, 20000))
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-p9-") as tmp:
        async with await service_for(
            smoke, Path(tmp), latency=1.0, max_concurrent=n, max_queued=n
        ) as service:
            await service.run_burst([bench_alert(plan)])  # warm-up: lazy imports, caches
            settle = 0.1 if smoke else 1.0
            await asyncio.sleep(settle)
            idle = service.memory().get("VmRSS", 0)
            stop = asyncio.Event()

            async def sample() -> None:
                start = time.perf_counter()
                while not stop.is_set():
                    rss = service.memory().get("VmRSS", 0)
                    samples.append((time.perf_counter() - start, rss))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            try:
                wall, _ = await service.run_burst([bench_alert(plan) for _ in range(n)])
            finally:
                stop.set()
                await sampler
            await asyncio.sleep(settle)
            after = service.memory().get("VmRSS", 0)
    peak = max(rss for _, rss in samples)
    per_session = (peak - idle) / n
    return Result(
        id=ID,
        title=TITLE.replace("N ", f"{n} "),
        value=round(per_session / MIB, 3),
        unit="MiB/session",
        target=TARGET,
        passed=per_session <= 2 * 1000 * 1000 if not smoke else None,
        summary=f"idle {idle / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB with {n} in flight "
        f"= {per_session / MIB:.2f} MiB/session; {after / MIB:.0f} MiB after",
        details={
            "idle_mib": round(idle / MIB, 1),
            "peak_mib": round(peak / MIB, 1),
            "after_mib": round(after / MIB, 1),
            "per_session_mib": round(per_session / MIB, 3),
            "sessions": n,
            "burst_wall_s": round(wall, 2),
            "samples": len(samples),
        },
    )
