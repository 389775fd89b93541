"""P1: orchestration cost per graph step, without model or tool waits.

Ours: the real investigation graph through `run_investigation` (the orchestrator's state
streamed after each of its steps, progress events handed to a sink by the nodes, as the
service runs it), the scripted model with latency 0, and tools that answer in-process at
once (same masking and capping path as MCP results); the service's checkpointer
(AsyncSqliteSaver, WAL) on a file. Bare: a LangGraph graph of the same topology
(orchestrator route → fetch_runbook → agent subgraph select → execute → partial → … →
final), trivial nodes, the same checkpointer, streamed the same way. Runs alternate
ours/bare; per step = wall time / checkpoints written (the same count for both); medians.
Verdict: ours/bare ≤ 1.5 and ours ≤ 3 ms per step. Process CPU per step is reported too:
the bare graph's wall time is mostly thread hops to the SQLite connection, which stretch
on a busy machine, so its CPU ratio is the steadier figure."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bare import bare_graph, run_bare
from bench.common import Plan, Result, median, scripted_model
from bench.harness import (
    instant_toolbox,
    investigate,
    investigation_graph,
    make_context,
    sqlite_saver,
)

ID = "P1"
TITLE = "orchestration overhead per graph step (no model/tool waits)"
TARGET = "≤ 1.5× bare LangGraph and ≤ 3 ms per step"


async def count_checkpoints(saver: Any, thread: str) -> int:
    return len([t async for t in saver.alist({"configurable": {"thread_id": thread}})])


async def run(smoke: bool) -> Result:
    iterations = 2 if smoke else 5
    pairs = 2 if smoke else 40
    plan = Plan(iterations=iterations, tools=2, latency=0.0, sizes=(1000, 4000))
    ours_steps: list[float] = []
    bare_steps: list[float] = []
    ours_cpu: list[float] = []
    bare_cpu: list[float] = []
    steps_seen: set[tuple[int, int]] = set()
    with tempfile.TemporaryDirectory(prefix="bench-p1-") as tmp:
        async with sqlite_saver(Path(tmp) / "checkpoints.db") as saver:
            graph = investigation_graph(saver)
            bare = bare_graph(saver, iterations)
            context = make_context(scripted_model(0.0), instant_toolbox())
            from bench.common import bench_alert

            alert = bench_alert(plan)
            for n in range(pairs + 1):  # the first pair warms up
                start, cpu = time.perf_counter(), time.process_time()
                thread, _ = await investigate(graph, context, plan)
                ours = time.perf_counter() - start
                ours_cpu_s = time.process_time() - cpu
                ours_count = await count_checkpoints(saver, thread)
                start, cpu = time.perf_counter(), time.process_time()
                bare_thread = await run_bare(bare, alert)
                bare_time = time.perf_counter() - start
                bare_cpu_s = time.process_time() - cpu
                bare_count = await count_checkpoints(saver, bare_thread)
                steps_seen.add((ours_count, bare_count))
                if n:
                    ours_steps.append(ours / ours_count * 1000)
                    bare_steps.append(bare_time / bare_count * 1000)
                    ours_cpu.append(ours_cpu_s / ours_count * 1000)
                    bare_cpu.append(bare_cpu_s / bare_count * 1000)
    ours_ms, bare_ms = median(ours_steps), median(bare_steps)
    ratio = ours_ms / bare_ms
    (ours_count, bare_count) = sorted(steps_seen)[0]
    return Result(
        id=ID,
        title=TITLE,
        value=round(ours_ms, 3),
        unit="ms/step",
        target=TARGET,
        passed=ratio <= 1.5 and ours_ms <= 3.0,
        summary=f"ours {ours_ms:.2f} ms/step vs bare {bare_ms:.2f} ms/step = {ratio:.2f}×; "
        f"overhead {ours_ms - bare_ms:.2f} ms/step; CPU {median(ours_cpu):.2f} vs "
        f"{median(bare_cpu):.2f} ms/step",
        details={
            "ours_ms_per_step": round(ours_ms, 3),
            "bare_ms_per_step": round(bare_ms, 3),
            "ratio": round(ratio, 3),
            "overhead_ms_per_step": round(ours_ms - bare_ms, 3),
            "ours_cpu_ms_per_step": round(median(ours_cpu), 3),
            "bare_cpu_ms_per_step": round(median(bare_cpu), 3),
            "checkpoints_per_run": {"ours": ours_count, "bare": bare_count},
            "iterations": iterations,
            "runs": pairs,
            "tool_output_bytes": list(plan.sizes),
        },
    )
