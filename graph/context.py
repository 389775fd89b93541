"""The runtime context: the live dependencies and run settings nodes receive through
`Runtime[Context]`. Nodes never read the environment or dig in the run config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langgraph.runtime import Runtime

from graph.bindings import ModelBindings
from graph.events import EventSink
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.toolbox import Toolbox


@dataclass
class Context:
    """Dependencies of one investigation run."""

    model: BaseChatModel
    """The chat model every agent uses (bound to the agent's tools per call)."""
    model_name: str
    """"provider:model" as recorded in the history."""
    toolbox: Toolbox
    """Open MCP sessions; agents see only the tools of their own servers."""
    registry: AgentRegistry
    """Alert type → agent spec (servers, instructions, limits)."""
    runbooks: RunbookFetcher
    """Downloads runbooks from GitHub (or the configured local folder)."""
    tool_output_max_bytes: int = 16_384
    """Each tool result is capped to this many bytes before it enters the state."""
    tool_timeout: float = 60.0
    """Seconds one MCP tool call may take."""
    model_timeout: float = 120.0
    """Seconds one model request may take (LLM_TIMEOUT). The final analysis gets at least
    this long, even when the time budget is spent."""
    runbook_max_chars: int = 24_000
    """Runbook text kept for prompts (the full size and hash are recorded)."""
    bindings: ModelBindings = field(default_factory=ModelBindings)
    """Shaped models (tools bound, structured output); the service shares one across
    sessions."""
    on_event: EventSink | None = None
    """Where the nodes send progress events (`run_investigation` sets it). None: on
    LangGraph's custom stream, for a graph that LangGraph's own server runs (Studio)."""

    def with_tools(self, tools: list[Any]) -> Runnable[Any, Any]:
        """The model with `tools` bound (an AIMessage per call)."""
        return self.bindings.tools(self.model, tools)

    def with_schema(self, schema: type[Any]) -> Runnable[Any, Any]:
        """The model answering `schema` ({"raw", "parsed", "parsing_error"} per call)."""
        return self.bindings.structured(self.model, schema)


def event_sink(runtime: Runtime[Context]) -> EventSink:
    """Where a node sends its progress events: straight to the run's sink, or else on
    LangGraph's custom stream (a no-op when nobody streams it)."""
    return runtime.context.on_event or runtime.stream_writer
