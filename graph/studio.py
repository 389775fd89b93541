"""The graph as `langgraph dev` (LangGraph Studio) and LangGraph Server load it: the
factory langgraph.json names.

The server calls it on every request that needs the graph (runs, state and history reads,
schemas); it returns the orchestrator the mounted app's lifespan published (see
graph/hosted.py for how the live context reaches runs). That graph is compiled without a
checkpointer: the server owns persistence. The CLI and the HTTP service compile the same
builder with their own checkpointer.

This file is executed by path, once per graph id, under a private module name: it keeps
no state of its own.
"""

from __future__ import annotations

from graph.hosted import HostedGraph, published_graph


def make_graph() -> HostedGraph:
    """The published orchestrator (agent subgraphs included, no checkpointer)."""
    return published_graph()
