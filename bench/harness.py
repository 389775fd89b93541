"""Running the real graph in-process: contexts, toolboxes (the fixture MCP server over
stdio, or in-process tools that answer at once), checkpointers and one-call runs."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.common import RUNBOOKS_DIR, SERVER, Plan, app_config, bench_alert, registry


def make_context(model: Any, toolbox: Any, *, fallbacks: bool = True) -> Any:
    """The Context a service session gets (model wrapped like `Services.context` does)."""
    from graph.context import Context
    from graph.fallback import with_fallbacks
    from graph.runbooks import RunbookFetcher

    label = "scripted:bench"
    return Context(
        model=with_fallbacks(label, model, []) if fallbacks else model,
        model_name=label,
        toolbox=toolbox,
        registry=registry(),
        runbooks=RunbookFetcher(runbooks_dir=RUNBOOKS_DIR),
        tool_output_max_bytes=16_384,
        tool_timeout=60.0,
    )


_toolbox: Any = None


@contextlib.asynccontextmanager
async def mcp_toolbox() -> AsyncIterator[Any]:
    """The fixture MCP server over stdio, one persistent session (the real Toolbox),
    started once per suite run and shared by the in-process benchmarks."""
    global _toolbox
    from graph.toolbox import Toolbox

    if _toolbox is None:
        toolbox = Toolbox(app_config().mcp_servers)
        await toolbox.start()
        status = toolbox.status()[SERVER]
        if status.state != "up":
            await toolbox.aclose()
            raise RuntimeError(f"bench MCP server did not start: {status.error}")
        _toolbox = toolbox
    yield _toolbox


async def close_shared_toolbox() -> None:
    global _toolbox
    if _toolbox is not None:
        toolbox, _toolbox = _toolbox, None
        await toolbox.aclose()


class InstantToolbox:
    """The Toolbox's public surface over in-process tools that answer at once (no tool
    wait at all); results go through the same masking and capping in `execute_tools`."""

    def __init__(self) -> None:
        from langchain_core.tools import StructuredTool

        from bench.mcp_server import TOOL_NAMES, payload
        from graph.masking import Masker
        from graph.toolbox import ServerStatus

        schema = {
            "type": "object",
            "properties": {
                "target": {"type": "string"},
                "seconds": {"type": "number", "default": 0.0},
                "size": {"type": "integer", "default": 1000},
            },
            "required": ["target"],
        }

        def make(name: str) -> StructuredTool:
            # Shaped as langchain-mcp-adapters shapes an MCP tool: a JSON-schema dict for
            # the arguments, a `**arguments` coroutine, (content, artifact) results.
            async def call(**arguments: Any) -> tuple[list[dict[str, str]], None]:
                text = payload(arguments["target"], arguments.get("size", 1000))
                return [{"type": "text", "text": text}], None

            return StructuredTool(
                name=name,
                description=f"{name} (bench, in-process)",
                args_schema=schema,
                coroutine=call,
                response_format="content_and_artifact",
            )

        self._tools = {name: make(name) for name in TOOL_NAMES}
        self._masker = Masker.with_patterns([])
        self._status = ServerStatus(SERVER, state="up", tools=list(self._tools))

    def status(self) -> dict[str, Any]:
        return {SERVER: self._status}

    def tools_for(self, servers: Any) -> dict[str, tuple[str, Any]]:
        return {n: (SERVER, t) for n, t in self._tools.items()} if SERVER in servers else {}

    def blocked_for(self, servers: Any) -> dict[str, tuple[str, str]]:
        return {}

    def masker_for(self, server: str) -> Any:
        return self._masker

    def unavailable(self, servers: Any) -> dict[str, str]:
        return {s: "not configured" for s in servers if s != SERVER}

    async def invoke(self, server: str, call: dict[str, Any], *, time_limit: float) -> Any:
        from graph.direct_calls import ainvoke_tool
        from graph.toolbox import ToolOutcome

        output = await ainvoke_tool(self._tools[call["name"]], call)
        return ToolOutcome(output)


def instant_toolbox() -> Any:
    return InstantToolbox()


@contextlib.asynccontextmanager
async def sqlite_saver(path: Path) -> AsyncIterator[Any]:
    """The service's checkpointer (AsyncSqliteSaver, WAL) on a file."""
    from graph.checkpoints import open_checkpointer

    async with open_checkpointer(f"sqlite+aiosqlite:///{path}") as saver:
        yield saver


def investigation_graph(saver: Any | None) -> Any:
    from graph.builder import build_investigation_graph

    return build_investigation_graph(registry(), checkpointer=saver)


async def investigate(
    graph: Any, context: Any, plan: Plan, *, events: list[dict[str, Any]] | None = None
) -> tuple[str, dict[str, Any]]:
    """One investigation through `run_investigation`; returns (thread id, final values)."""
    from graph.runner import run_investigation

    thread = str(uuid.uuid4())

    def sink(event: dict[str, Any]) -> None:
        if events is not None:
            events.append(event)

    values = await run_investigation(
        graph, thread_id=thread, context=context, alert=bench_alert(plan), on_event=sink
    )
    if values.get("status") != "completed":
        raise RuntimeError(f"bench investigation failed: {values.get('error')}")
    return thread, values
