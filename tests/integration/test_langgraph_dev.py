"""The graph inside `langgraph dev` (the API LangGraph Studio talks to), for real: the
server loads langgraph.json, the mounted app opens the demo (scripted model, fixture
cluster, the real kubernetes-mcp-server), and a client drives it with langgraph_sdk:
stream a run with our progress events, read the history, replay from a checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "node_modules" / ".bin" / "kubernetes-mcp-server"
LANGGRAPH = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which(
    "langgraph"
)
# The project as `langgraph dev` sees it, linked into a temporary folder so that the
# server's state (.langgraph_api/) and a developer's .env stay out of the test.
PROJECT = ["graph", "nodes", "server", "prompts", "examples", "node_modules", "pyproject.toml"]
# `langgraph dev` refuses blocking I/O on the event loop; the graph must not need the flag.
ALLOW_BLOCKING = False
STARTUP_SECONDS = 40
GRAPH = "sre_agent"
AGENT_NODE = "kubernetes_agent"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        LANGGRAPH is None, reason="langgraph CLI missing: pip install -e '.[dev]' (langgraph-cli)"
    ),
    pytest.mark.skipif(not BINARY.exists(), reason="kubernetes-mcp-server missing: run `npm ci`"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment() -> dict[str, str]:
    """Demo mode (no model, no config), offline: no analytics, no tracing."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "SRE_AGENT", "DEFAULT_LLM", "LANGSMITH_", "LANGCHAIN_"))
        and not k.endswith("_API_KEY")
    }
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    return env


@contextlib.contextmanager
def langgraph_dev(workdir: Path) -> Iterator[str]:
    """Start `langgraph dev` on a free port; yield its URL; always stop it (and its MCP
    server children: the whole process group it leads)."""
    for name in PROJECT:
        (workdir / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "langgraph.json", workdir / "langgraph.json")
    log_path = workdir / "langgraph-dev.log"
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--port", str(_free_port())]
    if ALLOW_BLOCKING:
        command.append("--allow-blocking")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield _wait_until_ready(process, log_path)
    finally:
        _stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    """The URL it prints (it moves to another port if ours was taken), once /ok answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    while time.monotonic() < deadline:
        text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace"))
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{text[-4000:]}")
        if url is None and (found := re.search(r"API: (http://127\.0\.0\.1:\d+)", text)):
            url = found.group(1)
        if url is not None and "Application started up" in text:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    return url
        time.sleep(0.2)
    pytest.fail(f"langgraph dev did not start in {STARTUP_SECONDS}s:\n{text[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children left behind, if any
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    with langgraph_dev(tmp_path) as url:
        yield url


async def _stream(client: Any, thread_id: str, **kwargs: Any) -> list[tuple[str, Any]]:
    parts = []
    async for part in client.runs.stream(
        thread_id,
        GRAPH,
        stream_mode=["custom", "updates"],
        stream_subgraphs=True,
        **kwargs,
    ):
        parts.append((part.event, part.data))
    errors = [data for event, data in parts if event == "error"]
    assert not errors, errors
    return parts


def _progress(parts: list[tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, event) for our progress events: the custom stream, any graph level."""
    return [
        (event.partition("|")[2], data)
        for event, data in parts
        if event.partition("|")[0] == "custom" and isinstance(data, dict) and "type" in data
    ]


def _lineage(history: list[dict[str, Any]], head: dict[str, Any]) -> list[str]:
    by_id = {h["checkpoint"]["checkpoint_id"]: h for h in history}
    ids, state = [], head
    while state is not None:
        ids.append(state["checkpoint"]["checkpoint_id"])
        parent = state.get("parent_checkpoint") or {}
        state = by_id.get(parent.get("checkpoint_id"))
    return ids


async def test_the_graph_runs_streams_and_replays_in_langgraph_dev(server: str) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=server, timeout=30)
    async with httpx.AsyncClient(base_url=server, timeout=5) as http:
        status = (await http.get("/sre-agent")).json()  # the mounted app's own route
    assert status["model"]["demo"] is True
    assert status["mcp_servers"]["kubernetes-server"]["state"] == "up"
    alert = json.loads((ROOT / "examples/scenarios/stuck-namespace/alert.json").read_text())
    assert status["demo"]["input"] == {"alert": alert}

    # What Studio renders: the orchestrator with the agent's loop as a subgraph, and the
    # JSON-only run options as the context schema.
    (assistant,) = await client.assistants.search(graph_id=GRAPH)
    drawn = await client.assistants.get_graph(assistant["assistant_id"], xray=True)
    nodes = {node["id"] for node in drawn["nodes"]}
    assert {"route", "fetch_runbook", f"{AGENT_NODE}:select_tools"} <= nodes
    assert {f"{AGENT_NODE}:execute_tools", f"{AGENT_NODE}:final_analysis"} <= nodes
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"alert"}
    assert {"status", "tool_calls", "analysis"} <= set(schemas["state_schema"]["properties"])
    subgraphs = await client.assistants.get_subgraphs(assistant["assistant_id"], recurse=True)
    assert AGENT_NODE in subgraphs
    assert set(schemas["context_schema"]["properties"]) == {
        "tool_output_max_bytes",
        "tool_timeout",
        "runbook_max_chars",
    }

    # A run, streamed with our progress events from inside the agent subgraph.
    thread_id = (await client.threads.create())["thread_id"]
    parts = await _stream(
        client, thread_id, input={"alert": alert}, context={"tool_output_max_bytes": 8192}
    )
    progress = _progress(parts)
    types = [event["type"] for _, event in progress]
    for expected in ("agent_selected", "runbook_fetched", "tool_call_started", "final_analysis"):
        assert expected in types, types
    inside = {event["type"] for namespace, event in progress if namespace}
    assert {"tool_call_started", "tool_call_finished", "partial_analysis"} <= inside
    assert all(ns.startswith(f"{AGENT_NODE}:") for ns, _ in progress if ns)
    updated = {node for event, data in parts if event.startswith("updates") for node in data}
    assert {"route", "fetch_runbook", AGENT_NODE, "select_tools", "execute_tools"} <= updated

    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert values["status"] == "completed", values.get("error")
    assert "invoice-controller" in json.dumps(values["analysis"])
    assert {call["server"] for call in values["tool_calls"]} == {"kubernetes-server"}
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success"]

    # The thread's history: the orchestrator's checkpoints, newest first.
    history = await client.threads.get_history(thread_id, limit=100)
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert [h["next"] for h in reversed(history)] == [
        ["__start__"],
        ["route"],
        ["fetch_runbook"],
        [AGENT_NODE],
        [],
    ]
    before_agent = next(h for h in history if h["next"] == [AGENT_NODE])
    assert before_agent["values"]["runbook"]["sha256"]
    assert "analysis" not in before_agent["values"]

    # Replay from the checkpoint before the agent: a new run re-runs the agent only.
    replay = await _stream(
        client, thread_id, input=None, checkpoint_id=before_agent["checkpoint"]["checkpoint_id"]
    )
    replayed = [event["type"] for _, event in _progress(replay)]
    assert "tool_call_started" in replayed and "final_analysis" in replayed
    assert "agent_selected" not in replayed and "runbook_fetched" not in replayed
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "success"]
    assert len({r["run_id"] for r in runs}) == 2

    head = await client.threads.get_state(thread_id)
    assert head["values"]["status"] == "completed"
    assert "invoice-controller" in json.dumps(head["values"]["analysis"])
    history = await client.threads.get_history(thread_id, limit=100)
    lineage = _lineage(history, history[0])
    assert before_agent["checkpoint"]["checkpoint_id"] in lineage
    assert state["checkpoint"]["checkpoint_id"] not in lineage  # a new branch
