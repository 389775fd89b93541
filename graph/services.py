"""Everything an investigation needs, opened once per process from the settings: the
registry, the model, the MCP toolbox and the runbook fetcher."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from graph.bindings import ModelBindings
from graph.config import AppConfig, load_config
from graph.context import Context
from graph.demo_model import demo_model
from graph.fallback import with_fallbacks
from graph.models import ModelChoice, build_chat_model, build_fallback_models, choose_model
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.settings import Settings
from graph.toolbox import Toolbox


@dataclass
class Services:
    settings: Settings
    config: AppConfig
    registry: AgentRegistry
    model_choice: ModelChoice
    model: BaseChatModel
    toolbox: Toolbox
    runbooks: RunbookFetcher
    fallback_models: list[tuple[str, BaseChatModel]] = field(default_factory=list)
    """LLM_FALLBACK_MODELS as (label, model), tried in order when the model fails."""
    bindings: ModelBindings = field(default_factory=ModelBindings)
    """Shaped models shared by all sessions (graph/bindings.py)."""

    def context(
        self, *, model: BaseChatModel | None = None, model_name: str | None = None
    ) -> Context:
        model_name = model_name or self.model_choice.label
        return Context(
            # A fresh fallback wrapper per session: a switch sticks to that session only.
            model=with_fallbacks(model_name, model or self.model, self.fallback_models),
            model_name=model_name,
            toolbox=self.toolbox,
            registry=self.registry,
            runbooks=self.runbooks,
            tool_output_max_bytes=self.settings.tool_output_max_bytes,
            tool_timeout=self.settings.tool_timeout,
            model_timeout=self.settings.llm_timeout,
            bindings=self.bindings,
        )


def load_registry(settings: Settings, config_path: Path | None = None) -> AgentRegistry:
    """Validate the configuration (raises ConfigError naming the bad field)."""
    config = load_config(
        config_path or settings.sre_agent_config,
        agent_registry=settings.agent_registry,
        mcp_server_registry=settings.mcp_server_registry,
    )
    return AgentRegistry(
        config,
        max_iterations=settings.max_iterations,
        max_tokens=settings.max_tokens,
        max_duration=settings.max_duration,
    )


def load_model(settings: Settings) -> tuple[ModelChoice, BaseChatModel]:
    """The configured model, or the scripted demo model when none is configured."""
    choice = choose_model(settings)
    if choice.is_demo:
        return choice, demo_model(settings.demo_model_latency)
    return choice, build_chat_model(choice, settings)


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    config_path: Path | None = None,
    registry: AgentRegistry | None = None,
    log_dir: Path | None = None,
    chat_model: tuple[ModelChoice, BaseChatModel] | None = None,
    wait_for_servers: bool = True,
) -> AsyncIterator[Services]:
    """Check configuration and model first (fail fast), then start the MCP servers.
    `wait_for_servers=False` yields as soon as they are launched: the caller does its own
    start-up meanwhile and awaits `services.toolbox.ready()` before the first run."""
    registry = registry or load_registry(settings, config_path)
    choice, model = chat_model or load_model(settings)
    fallbacks = build_fallback_models(settings)
    used = {server for spec in registry.agents.values() for server in spec.mcp_servers}
    toolbox = Toolbox({n: c for n, c in registry.servers.items() if n in used}, log_dir=log_dir)
    async with contextlib.AsyncExitStack() as stack:
        runbooks = await stack.enter_async_context(
            RunbookFetcher(
                github_token=settings.github_token,
                runbooks_dir=settings.runbooks_dir,
                allowed_hosts=settings.runbook_allowed_hosts,
                allow_http=settings.runbook_allow_http,
                allow_private_networks=settings.runbook_allow_private_networks,
            )
        )
        stack.push_async_callback(toolbox.aclose)
        toolbox.launch()
        if wait_for_servers:
            await toolbox.ready()
        yield Services(
            settings, registry.config, registry, choice, model, toolbox, runbooks, fallbacks
        )
