"""P7: the cost of one MCP tool call (fixture server, no latency, 1 kB result) through the
persistent session our Toolbox keeps, against a session opened per call (what
langchain-mcp-adapters does for tools loaded from a connection without a session: spawn
the stdio server, initialize, call, close). Medians."""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.common import ROOT, SERVER, SERVER_SCRIPT, Result, median
from bench.harness import mcp_toolbox

ID = "P7"
TITLE = "MCP tool call: persistent session vs a session per call"
TARGET = "≤ 0.1×"

ARGS = {"target": "obj-1", "seconds": 0.0, "size": 1000}


async def call(tool: Any, n: int) -> float:
    start = time.perf_counter()
    await tool.ainvoke({"type": "tool_call", "name": tool.name, "args": ARGS, "id": f"c{n}"})
    return time.perf_counter() - start


async def run(smoke: bool) -> Result:
    from langchain_mcp_adapters.tools import load_mcp_tools

    persistent_n = 20 if smoke else 300
    per_call_n = 1 if smoke else 12
    async with mcp_toolbox() as toolbox:
        tool = toolbox.tools_for([SERVER])["get_object"][1]
        for n in range(5):
            await call(tool, n)
        persistent = [await call(tool, n) for n in range(persistent_n)]
    connection: Any = {
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(SERVER_SCRIPT)],
        "env": {"PYTHONPATH": str(ROOT)},
    }
    tools = {t.name: t for t in await load_mcp_tools(None, connection=connection)}
    per_call = [await call(tools["get_object"], n) for n in range(per_call_n)]
    kept, fresh = median(persistent), median(per_call)
    ratio = kept / fresh
    return Result(
        id=ID,
        title=TITLE,
        value=round(ratio, 4),
        unit="×",
        target=TARGET,
        passed=ratio <= 0.1 if not smoke else None,
        summary=f"persistent {kept * 1000:.2f} ms vs per call {fresh * 1000:.0f} ms = {ratio:.4f}×",
        details={
            "persistent_ms_median": round(kept * 1000, 3),
            "per_call_ms_median": round(fresh * 1000, 1),
            "persistent_calls": persistent_n,
            "per_call_calls": per_call_n,
            "ratio": round(ratio, 5),
        },
    )
