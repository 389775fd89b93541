"""The bare LangGraph reference: the investigation's topology (orchestrator route →
fetch_runbook → agent subgraph select → execute → partial → … → final) with trivial
nodes, run on our checkpointer and streamed as the runner streams. P1 runs it without
waits; P2 gives it the model's and the tools' waits, to measure what LangGraph alone
costs under the same burst."""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import statistics
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from typing_extensions import TypedDict


class BareOrchestrator(TypedDict, total=False):
    alert: dict[str, Any]
    status: str
    agent: str
    iteration: int
    runbook: str


class BareAgent(TypedDict, total=False):
    alert: dict[str, Any]
    agent: str
    runbook: str
    status: str
    iteration: int
    pending: list[int]
    results: list[int]
    conclude: bool
    tool_calls: Annotated[list[int], operator.add]


def bare_graph(
    saver: Any,
    iterations: int,
    *,
    tools: int = 2,
    model_wait: float = 0.0,
    tool_wait: float = 0.0,
) -> Any:
    """`model_wait`: seconds each model-calling node (select, partial, final) sleeps;
    `tool_wait`: seconds each of the `tools` concurrent tool calls sleeps."""
    from langgraph.graph import END, START, StateGraph

    async def wait(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def select_tools(state: BareAgent) -> dict[str, Any]:
        await wait(model_wait)
        return {"iteration": state.get("iteration", 0) + 1, "pending": list(range(tools))}

    async def execute_tools(state: BareAgent) -> dict[str, Any]:
        await asyncio.gather(*(wait(tool_wait) for _ in state["pending"]))
        return {"results": state["pending"], "tool_calls": state["pending"], "pending": []}

    async def partial_analysis(state: BareAgent) -> dict[str, Any]:
        await wait(model_wait)
        return {"conclude": state["iteration"] >= iterations}

    async def final_analysis(state: BareAgent) -> dict[str, Any]:
        await wait(model_wait)
        return {"status": "completed"}

    agent = StateGraph(BareAgent)
    agent.add_node("select_tools", select_tools)
    agent.add_node("execute_tools", execute_tools)
    agent.add_node("partial_analysis", partial_analysis)
    agent.add_node("final_analysis", final_analysis)
    agent.add_edge(START, "select_tools")
    agent.add_conditional_edges(
        "select_tools", lambda s: "execute_tools" if s.get("pending") else "final_analysis"
    )
    agent.add_edge("execute_tools", "partial_analysis")
    agent.add_conditional_edges(
        "partial_analysis", lambda s: "final_analysis" if s.get("conclude") else "select_tools"
    )
    agent.add_edge("final_analysis", END)

    async def route(state: BareOrchestrator) -> dict[str, Any]:
        return {"status": "running", "agent": "kubernetes"}

    async def fetch_runbook(state: BareOrchestrator) -> dict[str, Any]:
        return {"runbook": "runbook"}

    top = StateGraph(BareOrchestrator)
    top.add_node("route", route)
    top.add_node("fetch_runbook", fetch_runbook)
    top.add_node("kubernetes_agent", agent.compile(name="kubernetes_agent"))
    top.add_edge(START, "route")
    top.add_conditional_edges("route", lambda s: "fetch_runbook", ["fetch_runbook", END])
    top.add_conditional_edges("fetch_runbook", lambda s: "kubernetes_agent", ["kubernetes_agent"])
    top.add_edge("kubernetes_agent", END)
    return top.compile(checkpointer=saver, name="bare")


async def run_bare(graph: Any, alert: dict[str, Any]) -> str:
    """One run, streamed as `run_investigation` streams; returns its thread id."""
    thread = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread}, "recursion_limit": 1000}
    async for _ in graph.astream({"alert": alert}, config, stream_mode="values"):
        pass
    return thread


async def timed_burst(graph: Any, alert: dict[str, Any], n: int) -> tuple[float, float]:
    """`n` runs at once: (wall seconds, process CPU seconds per run)."""
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(run_bare(graph, alert) for _ in range(n)))
    return time.perf_counter() - start, (time.process_time() - cpu) / n


async def _floor(args: argparse.Namespace) -> dict[str, Any]:
    from bench.harness import sqlite_saver
    from server import collector

    alert = {"labels": {"alertname": "bench"}}
    async with sqlite_saver(Path(args.db)) as saver:
        graph = bare_graph(
            saver, args.iterations, tools=args.tools, model_wait=args.model, tool_wait=args.tool
        )
        collector.settle()  # as the service does before it serves
        await run_bare(graph, alert)  # warm-up
        singles = [(await timed_burst(graph, alert, 1))[0] for _ in range(args.runs)]
        wall, cpu = await timed_burst(graph, alert, args.burst)
    single = statistics.median(singles)
    return {
        "single_wall_s": round(single, 3),
        "burst_wall_s": round(wall, 3),
        "ratio": round(wall / single, 3),
        "cpu_ms_per_alert": round(cpu * 1000, 1),
    }


def main() -> None:
    """`python -m bench.bare --db F --burst N ...`: the floor of a burst, as one JSON line,
    measured in a process of its own set up as the service's (collector, event loop)."""
    from bench.serve import run
    from server import collector

    collector.pause()
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--burst", type=int, required=True)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--tools", type=int, default=2)
    parser.add_argument("--model", type=float, default=0.5, help="model wait, seconds")
    parser.add_argument("--tool", type=float, default=0.1, help="tool wait, seconds")
    parser.add_argument("--runs", type=int, default=3, help="runs of one alone")
    result: dict[str, Any] = {}

    async def measure() -> None:
        result.update(await _floor(parser.parse_args()))

    run(measure())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
