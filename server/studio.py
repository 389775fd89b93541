"""The app langgraph.json mounts into the LangGraph API server (`"http": {"app": ...}`,
through server/studio_app.py): `langgraph dev` for LangGraph Studio, or a LangGraph Server
deployment.

Its lifespan, run once per server process before it serves, opens what investigations
need (the model, the MCP sessions, the runbook fetcher) and publishes them to the graph
factory (graph/hosted.py explains how they reach each run). With no model and no
configuration set (LLM_MODEL, DEFAULT_LLM_PROVIDER, SRE_AGENT_CONFIG unset) it runs the
demo, as `sre-agent demo` does: the scripted demo model, the bundled fixture Kubernetes API
server for one scenario (SRE_AGENT_DEMO_SCENARIO, default stuck-namespace) and the real
kubernetes-mcp-server pointed at it. The server's own routes (/threads, /runs, ...) stay;
this app adds one: GET /sre-agent, what is open (model, MCP servers, demo alert).

Blocking start-up work (config files, the fixture cluster) runs in threads: `langgraph dev`
raises on blocking calls in the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Request

from graph.hosted import HostedGraph, publish
from graph.models import choose_model
from graph.registry import AgentRegistry
from graph.services import Services, load_registry, open_services
from graph.settings import Settings
from server.demo import DEFAULT_SCENARIO, Demo, demo_environment, examples_dir

log = logging.getLogger(__name__)

SCENARIO_VARIABLE = "SRE_AGENT_DEMO_SCENARIO"
T = TypeVar("T")


@dataclass
class Hosted:
    """What the lifespan opened."""

    services: Services
    graph: HostedGraph
    demo: Demo | None
    scenario: str | None

    def describe(self) -> dict[str, Any]:
        choice = self.services.model_choice
        return {
            "graph": self.graph.name,
            "model": {"name": choice.label, "demo": choice.is_demo},
            "mcp_servers": {n: asdict(s) for n, s in self.services.toolbox.status().items()},
            "demo": None
            if self.demo is None
            else {
                "scenario": self.scenario,
                "cluster": self.demo.cluster.url,
                "input": {"alert": self.demo.alert},
            },
        }


def wants_demo(settings: Settings) -> bool:
    """No model and no configuration: investigate the bundled fixture cluster."""
    configured = (
        settings.sre_agent_config or settings.agent_registry or settings.mcp_server_registry
    )
    return choose_model(settings).is_demo and not configured


def _settings() -> Settings:
    return Settings()  # reads .env


def _demo_registry(settings: Settings) -> AgentRegistry:
    return load_registry(settings, examples_dir() / "sre-agent.yaml")


async def _enter_in_thread(
    stack: contextlib.AsyncExitStack, manager: contextlib.AbstractContextManager[T]
) -> T:
    value = await asyncio.to_thread(manager.__enter__)
    stack.push_async_callback(asyncio.to_thread, manager.__exit__, None, None, None)
    return value


@contextlib.asynccontextmanager
async def open_hosted(given: Settings | None = None) -> AsyncIterator[Hosted]:
    """Open the services (and the demo cluster when no model/config is set); publish them."""
    settings = given if given is not None else await asyncio.to_thread(_settings)
    async with contextlib.AsyncExitStack() as stack:
        demo, scenario = None, None
        registry: AgentRegistry
        if wants_demo(settings):
            scenario = os.environ.get(SCENARIO_VARIABLE) or DEFAULT_SCENARIO
            registry = await asyncio.to_thread(_demo_registry, settings)
            demo = await _enter_in_thread(stack, demo_environment(registry, scenario))
            registry = demo.registry
            settings = settings.model_copy(update={"runbooks_dir": demo.runbooks_dir})
        else:
            registry = await asyncio.to_thread(load_registry, settings)
        services = await stack.enter_async_context(open_services(settings, registry=registry))
        graph = stack.enter_context(publish(services))
        hosted = Hosted(services, graph, demo, scenario)
        if demo is not None:
            log.warning(
                "sre-agent demo: scripted model, fixture cluster '%s' at %s; "
                "run the graph with input %s (GET /sre-agent shows it)",
                scenario,
                demo.cluster.url,
                json.dumps({"alert": demo.alert}),
            )
        yield hosted


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with open_hosted() as hosted:
        app.state.sre_agent = hosted
        yield


def create_studio_app() -> FastAPI:
    studio = FastAPI(title="sre-agent (LangGraph server add-on)", lifespan=lifespan)

    @studio.get("/sre-agent", tags=["sre-agent"])
    async def status(request: Request) -> dict[str, Any]:
        """The model, MCP servers and (demo mode) the fixture cluster and sample input."""
        hosted: Hosted = request.app.state.sre_agent
        return hosted.describe()

    return studio
