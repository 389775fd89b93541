"""The agent and MCP server registries as configuration: built-in defaults, a YAML file,
and the seed's JSON environment overrides, validated into one immutable `AppConfig`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graph.validation import describe_errors

KUBERNETES_SERVER = "kubernetes-server"

KUBERNETES_SERVER_INSTRUCTIONS = """\
Kubernetes MCP server (read-only). Prefer namespaced queries to cluster-wide listings, which
can be very large. Read the namespace object first for stuck namespaces: its status.conditions
name the remaining resources and finalizers. Use events for scheduling and restart problems,
pod logs (previous=true for the crashed container) for application failures. Custom resources
are read with resources_list/resources_get and their apiVersion and kind."""

KUBERNETES_AGENT_INSTRUCTIONS = """\
You investigate Kubernetes incidents. For a namespace stuck in Terminating, find which
resources remain and which finalizers hold them, then find the controller that should remove
those finalizers and why it does not (scaled down, crashing, uninstalled, webhook failing).
Never recommend removing finalizers without saying what cleanup is skipped by doing so."""


class ConfigError(ValueError):
    """Configuration is invalid; the message names the bad field and where it came from."""


class MCPServerConfig(BaseModel):
    """One MCP server, in the standard MCP client shape plus our `instructions` and `enabled`."""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["stdio", "streamable_http", "sse"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    instructions: str = ""
    enabled: bool = True
    read_only: bool = Field(True, description="Offer only tools annotated readOnlyHint.")
    allow: list[str] = Field(default_factory=list, description="Tool name patterns to allow.")
    deny: list[str] = Field(default_factory=list, description="Tool name patterns to refuse.")
    mask_secrets: bool = Field(True, description="Mask secrets in this server's results.")
    mask_patterns: list[str] = Field(default_factory=list, description="Extra regexes to mask.")

    @model_validator(mode="after")
    def _check_transport(self) -> MCPServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs 'command'")
        if self.transport != "stdio" and not self.url:
            raise ValueError(f"a {self.transport} server needs 'url'")
        return self

    def child_env(self) -> dict[str, str]:
        """The environment of a stdio server: a safe base (PATH, HOME, ...), the Kubernetes
        and proxy variables, then the configured `env`. Provider API keys are not passed."""
        from mcp.client.stdio import get_default_environment

        passed = {k: v for k, v in os.environ.items() if k in _PASS_THROUGH_ENV}
        return {**get_default_environment(), **passed, **self.env}


_PASS_THROUGH_ENV = frozenset(
    {
        "KUBECONFIG",
        "KUBE_CLIENT_QPS",
        "KUBE_CLIENT_BURST",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)


class AgentConfig(BaseModel):
    """One specialized agent: which servers it may use, what it is told, what it handles."""

    model_config = ConfigDict(extra="forbid")

    mcp_servers: list[str] = Field(min_length=1)
    instructions: str = ""
    alert_types: list[str] = Field(min_length=1)
    max_iterations: int = Field(default=10, ge=1, le=50)
    max_tokens: int | None = Field(default=None, ge=1000, description="Token budget per alert.")
    max_duration: float | None = Field(default=None, gt=0, description="Seconds per alert.")


class AppConfig(BaseModel):
    """The whole registry configuration."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mcp_servers: dict[str, MCPServerConfig] = Field(default_factory=dict, alias="mcpServers")
    agents: dict[str, AgentConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self) -> AppConfig:
        owners: dict[str, str] = {}
        for name, agent in self.agents.items():
            for server in agent.mcp_servers:
                if server not in self.mcp_servers:
                    known = ", ".join(sorted(self.mcp_servers)) or "none"
                    raise ValueError(
                        f"agents.{name}.mcp_servers: unknown server '{server}' (known: {known})"
                    )
            for alert_type in agent.alert_types:
                if alert_type in owners:
                    raise ValueError(
                        f"agents.{name}.alert_types: '{alert_type}' is already handled by "
                        f"agent '{owners[alert_type]}'"
                    )
                owners[alert_type] = name
        return self


def _kubernetes_server_command() -> str:
    """The pinned npm binary if installed next to the project, else one on PATH."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root / "node_modules" / ".bin" / "kubernetes-mcp-server"
        if candidate.exists():
            return str(candidate)
    return shutil.which("kubernetes-mcp-server") or "kubernetes-mcp-server"


def default_config_data() -> dict[str, Any]:
    """Built-in registries: the Kubernetes agent for NamespaceTerminating."""
    return {
        "mcpServers": {
            KUBERNETES_SERVER: {
                "command": _kubernetes_server_command(),
                "args": ["--read-only"],
                "instructions": KUBERNETES_SERVER_INSTRUCTIONS,
            }
        },
        "agents": {
            "kubernetes": {
                "mcp_servers": [KUBERNETES_SERVER],
                "instructions": KUBERNETES_AGENT_INSTRUCTIONS,
                "alert_types": ["NamespaceTerminating"],
                "max_iterations": 10,
            }
        },
    }


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Entries (servers, agents) of `override` replace those of `base` with the same name."""
    merged = {key: dict(value) for key, value in base.items()}
    for section, entries in override.items():
        if isinstance(entries, dict) and isinstance(merged.get(section), dict):
            merged[section].update(entries)
        else:
            merged[section] = entries
    return merged


def _agent_name(class_name: str) -> str:
    """The seed names agents by class ('KubernetesAgent'); we name them 'kubernetes'."""
    name = class_name.strip()
    if name.lower().endswith("agent") and len(name) > len("agent"):
        name = name[: -len("agent")]
    return name.lower()


def _apply_agent_registry(data: dict[str, Any], raw: str) -> dict[str, Any]:
    """AGENT_REGISTRY='{"AlertType": "KubernetesAgent"}' re-assigns alert types to agents."""
    mapping = _load_json("AGENT_REGISTRY", raw)
    agents = {name: dict(spec) for name, spec in data.get("agents", {}).items()}
    for alert_type, class_name in mapping.items():
        target = _agent_name(str(class_name))
        if target not in agents:
            raise ConfigError(
                f"AGENT_REGISTRY.{alert_type}: unknown agent '{class_name}' "
                f"(known: {', '.join(sorted(agents)) or 'none'})"
            )
        for spec in agents.values():
            spec["alert_types"] = [t for t in spec.get("alert_types", []) if t != alert_type]
        agents[target]["alert_types"] = [*agents[target]["alert_types"], alert_type]
    for name, spec in list(agents.items()):
        if not spec["alert_types"]:
            del agents[name]  # an agent left with no alert type is unreachable
    return {**data, "agents": agents}


def _seed_server_shape(entry: dict[str, Any]) -> dict[str, Any]:
    """Accept the seed's MCPServerConfig shape (connection_params, server_type) too."""
    if "connection_params" not in entry:
        return entry
    converted = {
        k: v for k, v in entry.items() if k not in ("connection_params", "server_type", "server_id")
    }
    converted.update(entry["connection_params"])
    return converted


def _load_json(variable: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{variable}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{variable}: must be a JSON object")
    return value


def _format_validation(source: str, exc: ValidationError) -> str:
    return f"invalid configuration in {source}: {describe_errors(exc.errors())}"


def load_config(
    path: Path | None = None,
    *,
    agent_registry: str | None = None,
    mcp_server_registry: str | None = None,
) -> AppConfig:
    """Defaults, then the YAML file, then the JSON overrides; raises ConfigError."""
    data = default_config_data()
    source = "built-in defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        if "mcp_servers" in loaded and "mcpServers" not in loaded:
            loaded["mcpServers"] = loaded.pop("mcp_servers")
        data = _merge(data, loaded)
    if mcp_server_registry:
        servers = _load_json("MCP_SERVER_REGISTRY", mcp_server_registry)
        data = _merge(data, {"mcpServers": {k: _seed_server_shape(v) for k, v in servers.items()}})
        source += " + MCP_SERVER_REGISTRY"
    if agent_registry:
        data = _apply_agent_registry(data, agent_registry)
        source += " + AGENT_REGISTRY"
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(source, exc)) from exc
