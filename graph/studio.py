"""The graph as LangGraph Studio / `langgraph dev` load it (see langgraph.json).

Compiled without a checkpointer: the LangGraph server owns persistence there. The CLI and
the HTTP service compile the same builder with their own checkpointer."""

from __future__ import annotations

from typing import Any

from langgraph.graph.state import CompiledStateGraph

from graph.builder import build_investigation_graph
from graph.services import load_registry
from graph.settings import Settings


def make_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the orchestrator from the environment's configuration."""
    return build_investigation_graph(load_registry(Settings()))
