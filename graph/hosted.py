"""The investigation graph hosted by a LangGraph server: `langgraph dev` (the API LangGraph
Studio talks to) and LangGraph Server deployments, both driven by langgraph.json.

How the live context reaches runs
---------------------------------
Nodes need live objects in `Runtime[Context]`: the chat model, the open MCP sessions
(`Toolbox`), the agent registry and the runbook fetcher. A LangGraph server cannot carry
them: it hands every run the client's `context` as JSON (or, when the client sends none, a
copy of `configurable`: thread_id, checkpoint_id, ...), and langgraph coerces that dict into
the graph's `context_schema` (`Context(**json)`), which fails. So:

1. langgraph.json mounts our own app (`"http": {"app": "./server/studio_app.py:app"}`).
   The server runs its lifespan once per process, before serving: it opens the services
   (model, MCP sessions; in demo mode also the fixture cluster) and `publish()`es them here,
   in a normally imported module. (The files langgraph.json names are executed by path
   under private module names, so state kept in them is not shared: hence this module.)
2. The graph factory langgraph.json names (graph/studio.py `make_graph`) returns the
   published `HostedGraph`: the orchestrator compiled without a checkpointer (the server
   owns persistence and passes its own), as a thin `CompiledStateGraph` subclass whose
   `astream`/`stream` (which `ainvoke`, `astream_events`, replays and resumes all go
   through) turn whatever context arrives into the live `Context`:
   `services.context()` plus the JSON run options below, when the client sets them.
3. The context schema it advertises is `RunOptions` (JSON only): Studio shows it as the
   assistant's context form, and the server drops every other key before the run.

Why this way: a factory that opened the services itself would start the MCP servers on every
request (1-1.7 s a run, and also on state reads). A server-side parent runtime cannot
supply the context either, because the run's own JSON context is coerced first.
Overriding the entry points is the one place that sees every run and nothing else.

The services live as long as the server process; runs share them, as the HTTP service's
runs do. They must run on the loop that opened them: keep the server's default shared
event loop for background runs (do not set BG_JOB_ISOLATED_LOOPS=true).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field

from graph.builder import build_investigation_graph
from graph.context import Context
from graph.services import Services


class HostNotReady(RuntimeError):
    """The graph was asked for before the host opened the services."""


class RunOptions(BaseModel):
    """What a client may set per run as `context` (JSON); unset means the server's setting."""

    model_config = ConfigDict(extra="ignore", title="sre-agent run options")

    tool_output_max_bytes: int | None = Field(
        default=None, ge=512, description="Cap per tool result kept and shown to the model."
    )
    tool_timeout: float | None = Field(default=None, gt=0, description="Seconds per MCP call.")
    runbook_max_chars: int | None = Field(
        default=None, ge=1000, description="Runbook characters kept for the prompts."
    )


class HostedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """The orchestrator, resolving each run's context from the live services it holds."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        # Pregel.copy() rebuilds instances from their attributes: `services` included.
        super().__init__(**kwargs)
        self.services = services

    @classmethod
    def build(cls, services: Services) -> HostedGraph:
        graph = build_investigation_graph(services.registry)  # no checkpointer: the host's
        attrs = {k: v for k, v in graph.__dict__.items() if k != "__orig_class__"}
        return cls(services=services, **attrs)

    def live_context(self, context: Any = None) -> Context:
        """The run's Context: the live services, with the client's JSON options applied."""
        if isinstance(context, Context):
            return context
        base = self.services.context()
        if not isinstance(context, Mapping):
            return base
        options = RunOptions.model_validate(context).model_dump(exclude_none=True)
        return dataclasses.replace(base, **options)

    def get_context_jsonschema(self) -> dict[str, Any]:
        return RunOptions.model_json_schema()

    def astream(
        self, input: Any, config: Any = None, *, context: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return super().astream(input, config, context=self.live_context(context), **kwargs)

    def stream(
        self, input: Any, config: Any = None, *, context: Any = None, **kwargs: Any
    ) -> Iterator[Any]:
        return super().stream(input, config, context=self.live_context(context), **kwargs)


_published: HostedGraph | None = None


@contextlib.contextmanager
def publish(services: Services) -> Iterator[HostedGraph]:
    """Make the graph over `services` the one the host's graph factory returns."""
    global _published
    if _published is not None:
        raise HostNotReady("sre-agent services are already published in this process")
    _published = HostedGraph.build(services)
    try:
        yield _published
    finally:
        _published = None


def published_graph() -> HostedGraph:
    """The graph the running host published (what langgraph.json's factory returns)."""
    if _published is None:
        raise HostNotReady(
            "the sre-agent services are not open: langgraph.json must mount "
            '"http": {"app": "./server/studio_app.py:app"}, whose lifespan opens them'
        )
    return _published
