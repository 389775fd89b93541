"""The investigation graph, whole:

START → route ─(no agent)→ END
          └→ fetch_runbook → <agent>_agent → END

<agent>_agent (one subgraph per registered agent, same builder):
START → select_tools ─(no tool calls)→ final_analysis → END
          └→ execute_tools → partial_analysis ─(go on)→ select_tools
                                              └─(concluded / budget spent)→ final_analysis

The nodes themselves say where to go next (a `Command`): a conditional edge would decide
the same, but LangGraph reads a copy of every channel of the state for it after each run
of the node.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.context import Context
from graph.registry import AgentRegistry, AgentSpec
from graph.retry import model_retry_policy
from graph.state import (
    AgentInput,
    AgentOutput,
    AgentState,
    InvestigationInput,
    InvestigationState,
)
from nodes.execute_tools import execute_tools
from nodes.fetch_runbook import fetch_runbook
from nodes.final_analysis import final_analysis
from nodes.partial_analysis import partial_analysis
from nodes.route import route
from nodes.select_tools import select_tools

GRAPH_NAME = "sre_agent"


def build_agent_graph(spec: AgentSpec) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The iterative investigation loop of one specialized agent."""
    retry = model_retry_policy()
    builder = StateGraph(
        AgentState, context_schema=Context, input_schema=AgentInput, output_schema=AgentOutput
    )
    builder.add_node("select_tools", select_tools, retry_policy=retry)
    builder.add_node("execute_tools", execute_tools)
    builder.add_node("partial_analysis", partial_analysis, retry_policy=retry)
    builder.add_node("final_analysis", final_analysis, retry_policy=retry)
    builder.add_edge(START, "select_tools")
    builder.add_edge("execute_tools", "partial_analysis")
    builder.add_edge("final_analysis", END)
    return builder.compile(name=spec.node_name)


def build_investigation_graph(
    registry: AgentRegistry, *, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The orchestrator, with one agent subgraph per registered agent."""
    builder = StateGraph(
        InvestigationState, context_schema=Context, input_schema=InvestigationInput
    )
    builder.add_node("route", route)
    agents = [spec.node_name for spec in registry.agents.values()]
    builder.add_node("fetch_runbook", fetch_runbook, destinations=tuple(agents))
    for spec in registry.agents.values():
        builder.add_node(spec.node_name, build_agent_graph(spec))
        builder.add_edge(spec.node_name, END)
    builder.add_edge(START, "route")
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
