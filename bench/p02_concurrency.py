"""P2: many alerts at once. The service runs in its own process (uvicorn, workers,
SQLite history) with MAX_CONCURRENT_ALERTS = the burst size, the scripted model at a
fixed latency and the fixture MCP server (2 tools per iteration, fixed latency, 4 kB and
20 kB results). Wall time = from the first POST /alerts to the moment the session index
reports no investigation running or queued (GET /health, polled every 50 ms); every
session's /processing-status must then say completed. One alert alone is measured the same
way on the same warmed-up service; both are medians of repeated runs.

The CPU the burst costs is reported per alert for the service, the fixture MCP server and
this measuring client: on a machine of 2 cores they share the cores. How busy the service
process was during the burst (its CPU time over the wall time, in cores) shows whether it
was bound by its own CPU: one Python process runs its Python code on one core at a time
(the GIL). And, for scale, the floor: the bare LangGraph graph of the same topology
(`bench/bare.py`) with the same model and tool waits, on the same SQLite checkpointer, N
at once against one alone, in a process of its own set up as the service's (no HTTP, no
MCP, no events). And what worker processes would gain at best here: the same burst split
over two services in processes of their own, half each, at once."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Plan, Result, bench_alert, median
from bench.service import Service, service_for

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
            bursts, burst_cpu, harness_cpu, busy = [], [], [], []
            for _ in range(burst_runs):
                cpu, fixture = service.cpu_seconds(), service.children_cpu_seconds()
                client = time.process_time()
                wall, _ = await service.run_burst([bench_alert(plan) for _ in range(n)])
                spent = service.cpu_seconds() - cpu
                bursts.append(wall)
                busy.append(spent / wall)
                burst_cpu.append(spent / n)
                harness_cpu.append(
                    (
                        (service.children_cpu_seconds() - fixture) / n,
                        (time.process_time() - client) / n,
                    )
                )
            locked = service.log_lines("database is locked")
        floor = await bare_floor(Path(tmp), plan, n, latency, runs=single_runs)
        split = None if smoke else await two_processes(Path(tmp), plan, n, latency, burst_runs)
    single, burst = median(singles), median(bursts)
    ratio = burst / single
    fixture_ms = median([f for f, _ in harness_cpu]) * 1000
    client_ms = median([c for _, c in harness_cpu]) * 1000
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
        + f"; CPU per alert in the burst: service {median(burst_cpu) * 1000:.0f} ms "
        f"({median(single_cpu) * 1000:.0f} alone), fixture MCP server {fixture_ms:.0f} ms, "
        f"client {client_ms:.0f} ms; the service process was busy {median(busy):.2f} of a "
        "core throughout the burst; the bare LangGraph graph with the same waits: "
        f"{floor['ratio']:.2f}× ({floor['cpu_ms_per_alert']:.0f} ms CPU per alert)"
        + (
            f"; two service processes, half the burst each: {median(split) / single:.2f}×"
            if split
            else ""
        )
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
            "fixture_mcp_server_cpu_ms_per_alert_in_burst": round(fixture_ms, 1),
            "client_cpu_ms_per_alert_in_burst": round(client_ms, 1),
            "service_cores_busy_in_burst": round(median(busy), 2),
            "bare_langgraph_floor": floor,
            "two_processes": {
                "burst_wall_s": [round(b, 3) for b in split],
                "ratio": round(median(split) / single, 3),
            }
            if split
            else None,
            "waits_alone_s": round(model_wait + tool_wait, 3),
            "index_writes_failed_database_locked": locked,
        },
    )


async def two_processes(
    workdir: Path, plan: Plan, n: int, latency: float, runs: int
) -> list[float]:
    """The burst split over two services of their own (each its own process, database and
    fixture MCP server), half each, submitted at once: what worker processes would gain
    at best on this machine, without any cost of coordinating them. Wall times of `runs`
    split bursts."""

    def half() -> list[dict[str, Any]]:
        return [bench_alert(plan) for _ in range(n // 2)]

    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    services = [Service(workdir / d, latency=latency, max_concurrent=n, max_queued=n) for d in "ab"]
    async with services[0] as first, services[1] as second:
        await asyncio.gather(first.run_burst(half()[:1]), second.run_burst(half()[:1]))  # warm-up
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            await asyncio.gather(first.run_burst(half()), second.run_burst(half()))
            walls.append(time.perf_counter() - start)
    return walls


async def bare_floor(
    workdir: Path, plan: Plan, n: int, latency: float, *, runs: int
) -> dict[str, Any]:
    """The bare graph with the same waits (`python -m bench.bare`, in a process of its own
    set up as the service's): one alone (median of `runs`), then `n` at once."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bare",
        *("--db", str(workdir / "bare.db"), "--burst", str(n), "--runs", str(runs)),
        *("--iterations", str(plan.iterations), "--tools", str(plan.tools)),
        *("--model", str(latency), "--tool", str(plan.latency)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.bare exited with {proc.returncode}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))
