"""The Kubernetes agent investigates the stuck-namespace scenario through the real
kubernetes-mcp-server (npm) against the fixture Kubernetes API server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graph.analysis import render_markdown
from graph.builder import build_investigation_graph
from graph.checkpoints import open_checkpointer
from graph.config import KUBERNETES_SERVER, load_config
from graph.context import Context
from graph.demo_model import demo_responder
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.runner import run_investigation
from graph.scripted_model import ScriptedChatModel
from graph.toolbox import Toolbox
from server.demo import demo_environment, examples_dir

BINARY = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "kubernetes-mcp-server"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not BINARY.exists(), reason="kubernetes-mcp-server missing: run `npm ci`"),
]


async def test_kubernetes_agent_finds_the_stuck_namespace_cause(tmp_path):
    registry = AgentRegistry(load_config())
    model = ScriptedChatModel(responder=demo_responder)
    with demo_environment(registry, "stuck-namespace") as demo:
        async with (
            Toolbox(demo.registry.servers) as toolbox,
            RunbookFetcher(runbooks_dir=demo.runbooks_dir) as runbooks,
            open_checkpointer(f"sqlite+aiosqlite:///{tmp_path}/history.db") as saver,
        ):
            assert toolbox.status()[KUBERNETES_SERVER].state == "up"
            ctx = Context(
                model=model,
                model_name="demo",
                toolbox=toolbox,
                registry=demo.registry,
                runbooks=runbooks,
            )
            graph = build_investigation_graph(demo.registry, checkpointer=saver)
            values = await run_investigation(
                graph, thread_id="stuck", context=ctx, alert=demo.alert
            )
        requests = list(demo.cluster.requests)
        writes = demo.cluster.write_requests

    assert values["status"] == "completed", values.get("error")
    assert values["runbook"]["error"] is None and values["runbook"]["sha256"]
    assert {c["server"] for c in values["tool_calls"]} == {KUBERNETES_SERVER}
    assert all(c["status"] == "ok" for c in values["tool_calls"])

    # The model was offered only the read-only Kubernetes tools...
    offered = set(model.requests[0].tool_names)
    assert {"resources_get", "resources_list", "events_list", "pods_log"} <= offered
    assert not {"pods_delete", "resources_delete", "resources_create_or_update"} & offered
    # ...and the fixture cluster's data reached it through the real MCP server.
    seen = "\n".join(r.text for r in model.requests)
    assert "billing.example.com/invoice-protection" in seen
    assert "invoice-controller   0/0" in seen
    assert any("/api/v1/namespaces/billing" in r.path for r in requests)

    report = render_markdown(values["analysis"], values["tool_calls"])
    expected = yaml.safe_load(
        (examples_dir() / "scenarios" / "stuck-namespace" / "expected.yaml").read_text()
    )
    for phrase in expected["must_mention"]:
        assert phrase in report
    assert values["analysis"]["confidence"] == "high"

    assert writes == []
