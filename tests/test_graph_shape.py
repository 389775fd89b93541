"""The graph's topology, pinned: a change to the flow shows up as a snapshot diff."""

from __future__ import annotations

from graph.builder import build_investigation_graph
from graph.config import load_config
from graph.registry import AgentRegistry


def test_orchestrator_and_agent_subgraph_shape(snapshot):
    graph = build_investigation_graph(AgentRegistry(load_config()))
    assert graph.get_graph(xray=1).draw_mermaid() == snapshot


def test_every_registered_agent_is_a_subgraph_node(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "agents:\n  argo:\n    mcp_servers: [kubernetes-server]\n    alert_types: [SyncFailed]\n"
    )
    graph = build_investigation_graph(AgentRegistry(load_config(config_file)))
    nodes = set(graph.get_graph().nodes)
    assert {"route", "fetch_runbook", "kubernetes_agent", "argo_agent"} <= nodes
    subgraphs = dict(graph.get_subgraphs())
    assert set(subgraphs) == {"kubernetes_agent", "argo_agent"}
    assert set(subgraphs["argo_agent"].get_graph().nodes) >= {
        "select_tools",
        "execute_tools",
        "partial_analysis",
        "final_analysis",
    }
