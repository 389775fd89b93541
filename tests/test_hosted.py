"""The graph as a LangGraph server hosts it (graph/hosted.py, graph/studio.py,
server/studio.py): JSON context in, live Context to the nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from graph.context import Context
from graph.hosted import HostedGraph, HostNotReady, RunOptions, publish, published_graph
from graph.models import ModelChoice
from graph.registry import AgentRegistry
from graph.scripted_model import ScriptedChatModel, calls, structured, tool_call
from graph.services import Services, open_services
from graph.settings import Settings
from graph.studio import make_graph
from server.studio import wants_demo
from tests.conftest import ops_app_config


def _script() -> ScriptedChatModel:
    return ScriptedChatModel(
        script=[
            calls(tool_call("get_namespace", name="billing")),
            structured("PartialAnalysis", analysis="billing is Terminating [T1.1]", conclude=True),
            structured(
                "RootCauseAnalysis",
                summary="s",
                root_cause="a finalizer holds billing",
                evidence=[{"finding": "Terminating", "tool_call": "T1.1"}],
                remediation=["fix"],
                confidence="high",
            ),
        ]
    )


@pytest.fixture
async def services(runbooks_dir: Path) -> AsyncIterator[Services]:
    settings = Settings(_env_file=None, runbooks_dir=runbooks_dir, tool_output_max_bytes=4096)
    async with open_services(
        settings,
        registry=AgentRegistry(ops_app_config()),
        chat_model=(ModelChoice("scripted", "test"), _script()),
    ) as opened:
        yield opened


def test_the_factory_needs_the_published_services() -> None:
    with pytest.raises(HostNotReady, match=r"studio_app\.py"):
        make_graph()


async def test_published_graph_runs_with_a_json_context(
    services: Services, sample_alert: dict[str, Any]
) -> None:
    with publish(services) as graph:
        assert make_graph() is graph and published_graph() is graph
        with pytest.raises(HostNotReady), publish(services):
            pass
        assert graph.checkpointer is None  # the host brings its own
        # What the server does per request: copy with its checkpointer and store.
        hosted = graph.copy(update={"checkpointer": InMemorySaver()})
        assert isinstance(hosted, HostedGraph) and hosted.services is services
        config: Any = {"configurable": {"thread_id": "t"}}
        events = []
        async for namespace, _mode, chunk in hosted.astream(
            {"alert": sample_alert},
            config,
            # What a server passes: the client's JSON (or a copy of `configurable`).
            context={"thread_id": "t", "tool_output_max_bytes": 1024},
            stream_mode=["custom"],
            subgraphs=True,
        ):
            events.append((namespace, chunk["type"]))
        values = (await hosted.aget_state(config)).values
    with pytest.raises(HostNotReady):
        published_graph()

    assert values["status"] == "completed", values.get("error")
    assert values["analysis"]["root_cause"] == "a finalizer holds billing"
    assert ((), "agent_selected") in events
    assert any(ns and kind == "tool_call_started" for ns, kind in events)


async def test_live_context_applies_json_options_only(services: Services) -> None:
    graph = HostedGraph.build(services)
    base = graph.live_context(None)
    assert base.model is services.model and base.toolbox is services.toolbox
    assert base.tool_output_max_bytes == 4096  # the server's setting

    ctx = graph.live_context({"tool_timeout": 5, "thread_id": "t", "runbook_max_chars": 2000})
    assert (ctx.tool_timeout, ctx.runbook_max_chars, ctx.tool_output_max_bytes) == (5, 2000, 4096)
    assert ctx.registry is services.registry

    given = Context(services.model, "x", services.toolbox, services.registry, services.runbooks)
    assert graph.live_context(given) is given
    with pytest.raises(ValidationError):
        graph.live_context({"tool_output_max_bytes": 10})

    schema = graph.get_context_jsonschema()
    assert set(schema["properties"]) == set(RunOptions.model_fields)


@pytest.mark.parametrize(
    ("settings", "demo"),
    [
        ({}, True),
        ({"llm_model": "openai:gpt-4.1"}, False),
        ({"sre_agent_config": Path("c.yaml")}, False),
        ({"mcp_server_registry": "{}"}, False),
    ],
)
def test_demo_mode_when_nothing_is_configured(settings: dict[str, Any], demo: bool) -> None:
    base = {
        "llm_model": None,
        "default_llm_provider": None,
        "sre_agent_config": None,
        "agent_registry": None,
        "mcp_server_registry": None,
    }
    assert wants_demo(Settings(_env_file=None, **{**base, **settings})) is demo
