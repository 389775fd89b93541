"""The agent registry: which specialized agent handles an alert type, and what it may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graph.config import AppConfig, MCPServerConfig

DEFAULT_MAX_TOKENS = 500_000
DEFAULT_MAX_DURATION = 1800.0


@dataclass(frozen=True)
class AgentSpec:
    """A specialized agent is data: a name, its MCP servers, its instructions, its limits."""

    name: str
    mcp_servers: tuple[str, ...]
    instructions: str
    alert_types: tuple[str, ...]
    max_iterations: int
    max_tokens: int
    max_duration: float

    @property
    def node_name(self) -> str:
        """The orchestrator node (and subgraph name) that runs this agent."""
        return f"{self.name}_agent"


class AgentRegistry:
    """Alert type → agent lookups over an immutable configuration."""

    def __init__(
        self,
        config: AppConfig,
        *,
        max_iterations: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_duration: float = DEFAULT_MAX_DURATION,
    ) -> None:
        self.config = config
        self._limits = {
            "max_iterations": max_iterations,
            "max_tokens": max_tokens,
            "max_duration": max_duration,
        }
        self.agents: dict[str, AgentSpec] = {
            name: AgentSpec(
                name=name,
                mcp_servers=tuple(agent.mcp_servers),
                instructions=agent.instructions,
                alert_types=tuple(agent.alert_types),
                max_iterations=max_iterations or agent.max_iterations,
                max_tokens=agent.max_tokens or max_tokens,
                max_duration=agent.max_duration or max_duration,
            )
            for name, agent in config.agents.items()
        }
        self._by_alert_type = {
            alert_type: spec for spec in self.agents.values() for alert_type in spec.alert_types
        }

    def with_servers(self, **updates: dict[str, Any]) -> AgentRegistry:
        """The same registry (limits included) with some servers' settings changed — the
        demo points the Kubernetes server at its fixture cluster this way."""
        servers = dict(self.config.mcp_servers)
        for name, changes in updates.items():
            servers[name] = servers[name].model_copy(update=changes)
        config = self.config.model_copy(update={"mcp_servers": servers})
        return AgentRegistry(config, **self._limits)  # type: ignore[arg-type]

    def agent_for(self, alert_type: str) -> AgentSpec | None:
        return self._by_alert_type.get(alert_type)

    def alert_types(self) -> list[str]:
        return sorted(self._by_alert_type)

    @property
    def servers(self) -> Mapping[str, MCPServerConfig]:
        return self.config.mcp_servers

    def server_instructions(self, spec: AgentSpec) -> dict[str, str]:
        """Per-server instructions for the servers this agent uses, in its order."""
        return {
            server: self.servers[server].instructions
            for server in spec.mcp_servers
            if self.servers[server].instructions
        }
