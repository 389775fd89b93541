"""P3: tool calls chosen together run together. One iteration in which the model picks 4
tools of the fixture MCP server (one persistent stdio session), each taking 0.5 s; model
latency 0. The tool phase is measured from the graph's own checkpoints: the agent
subgraph's checkpoint written after `select_tools` to the one written after
`execute_tools` (so scheduling, the calls, masking, capping and the checkpoint write are
all in it), against the slowest tool (0.5 s). Median of repeated runs."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import Plan, Result, median, scripted_model
from bench.harness import investigate, investigation_graph, make_context, mcp_toolbox, sqlite_saver

ID = "P3"
TITLE = "4 tools chosen in one iteration, 0.5 s each"
TARGET = "≤ 1.1× the slowest tool"


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


async def tool_phase(saver: Any, thread: str) -> float:
    """Seconds from the checkpoint before execute_tools to the one after it."""
    from server.history import describe_checkpoints, load_checkpoints

    infos = [
        i for i in describe_checkpoints(await load_checkpoints(saver, thread)) if i.checkpoint_ns
    ]
    before = next(i for i in infos if i.node == "execute_tools")
    after = next(i for i in infos if i.parent_checkpoint_id == before.checkpoint_id)
    return _seconds(before.created_at, after.created_at)


async def run(smoke: bool) -> Result:
    tool_seconds = 0.1 if smoke else 0.5
    runs = 2 if smoke else 7
    plan = Plan(iterations=1, tools=4, latency=tool_seconds, sizes=(2000,))
    phases: list[float] = []
    windows: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-p3-") as tmp:
        async with mcp_toolbox() as toolbox, sqlite_saver(Path(tmp) / "c.db") as saver:
            graph = investigation_graph(saver)
            context = make_context(scripted_model(0.0), toolbox)
            await investigate(graph, context, Plan(iterations=1, tools=4))  # warm-up
            for _ in range(runs):
                events: list[dict[str, Any]] = []
                thread, _ = await investigate(graph, context, plan, events=events)
                phases.append(await tool_phase(saver, thread))
                started = [e["ts"] for e in events if e["type"] == "tool_call_started"]
                finished = [e["ts"] for e in events if e["type"] == "tool_call_finished"]
                windows.append(_seconds(min(started), max(finished)))
    phase = median(phases)
    ratio = phase / tool_seconds
    return Result(
        id=ID,
        title=TITLE.replace("0.5 s", f"{tool_seconds:g} s"),
        value=round(ratio, 3),
        unit="×",
        target=TARGET,
        passed=ratio <= 1.1 if not smoke else None,
        summary=f"tool phase {phase * 1000:.0f} ms for 4 × {tool_seconds * 1000:.0f} ms tools "
        f"= {ratio:.2f}× the slowest (serial would be 4×)",
        details={
            "tool_phase_ms": [round(p * 1000, 1) for p in phases],
            "first_start_to_last_finish_ms": round(median(windows) * 1000, 1),
            "tool_seconds": tool_seconds,
            "tools": plan.tools,
            "ratio": round(ratio, 3),
        },
    )
