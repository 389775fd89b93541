"""Configuration: defaults, YAML, the seed's JSON overrides, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.config import KUBERNETES_SERVER, ConfigError, load_config
from graph.registry import AgentRegistry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_built_in_defaults_route_namespace_terminating_to_kubernetes():
    registry = AgentRegistry(load_config())
    spec = registry.agent_for("NamespaceTerminating")
    assert spec is not None and spec.name == "kubernetes"
    assert spec.mcp_servers == (KUBERNETES_SERVER,)
    assert spec.max_iterations == 10
    assert registry.servers[KUBERNETES_SERVER].args == ["--read-only"]
    assert registry.agent_for("Nope") is None


def test_yaml_adds_servers_and_agents_in_the_standard_shape(tmp_path):
    config = load_config(
        write(
            tmp_path,
            """
mcpServers:
  grafana:
    transport: streamable_http
    url: http://127.0.0.1:8000/mcp
    headers: {Authorization: "Bearer x"}
    instructions: Dashboards live in folder SRE.
  prom:
    command: prometheus-mcp-server
    args: [--url, http://prom:9090]
    env: {PROMETHEUS_URL: http://prom:9090}
agents:
  observability:
    mcp_servers: [grafana, prom]
    alert_types: [HighLatency]
    instructions: Look at p99 first.
    max_iterations: 4
""",
        )
    )
    registry = AgentRegistry(config)
    spec = registry.agent_for("HighLatency")
    assert spec is not None and spec.mcp_servers == ("grafana", "prom")
    assert spec.max_iterations == 4
    assert registry.agent_for("NamespaceTerminating") is not None  # defaults kept
    assert registry.server_instructions(spec) == {"grafana": "Dashboards live in folder SRE."}
    assert config.mcp_servers["prom"].child_env()["PROMETHEUS_URL"] == "http://prom:9090"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "agents:\n  k:\n    mcp_servers: [nope]\n    alert_types: [A]\n",
            "agents.k.mcp_servers: unknown server 'nope'",
        ),
        (
            "agents:\n  k:\n    mcp_servers: [kubernetes-server]\n    alert_types: [A]\n"
            "    max_iterations: 0\n",
            "agents.k.max_iterations: Input should be greater than",
        ),
        ("mcpServers:\n  s:\n    args: [x]\n", "mcpServers.s: Value error, a stdio server needs"),
        (
            "mcpServers:\n  s:\n    transport: streamable_http\n",
            "mcpServers.s: Value error, a streamable_http server needs 'url'",
        ),
        (
            "mcpServers:\n  s:\n    command: x\n    colour: red\n",
            "mcpServers.s.colour: Extra inputs are not permitted",
        ),
        (
            "agents:\n  k2:\n    mcp_servers: [kubernetes-server]\n"
            "    alert_types: [NamespaceTerminating]\n",
            "'NamespaceTerminating' is already handled by agent",
        ),
        ("- a list\n", "the top level must be a mapping"),
        ("agents: [\n", "not valid YAML"),
    ],
)
def test_invalid_config_names_the_bad_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert expected in str(error.value)
    if "YAML" not in expected and "mapping" not in expected:
        assert str(path) in str(error.value)


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_seed_json_overrides_are_honoured():
    servers = json.dumps(
        {
            "argocd-server": {
                "server_id": "argocd-server",
                "server_type": "argocd",
                "enabled": True,
                "connection_params": {"command": "argocd-mcp", "args": ["--read-only"]},
                "instructions": "ArgoCD notes",
            }
        }
    )
    config = load_config(
        mcp_server_registry=servers,
        agent_registry=json.dumps({"PodCrashLooping": "KubernetesAgent"}),
    )
    registry = AgentRegistry(config)
    assert config.mcp_servers["argocd-server"].command == "argocd-mcp"
    assert config.mcp_servers["argocd-server"].instructions == "ArgoCD notes"
    spec = registry.agent_for("PodCrashLooping")
    assert spec is not None and spec.name == "kubernetes"
    assert registry.agent_for("NamespaceTerminating") is spec


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("agent_registry", "{not json", "AGENT_REGISTRY: not valid JSON"),
        ("agent_registry", '{"X": "ArgoCDAgent"}', "AGENT_REGISTRY.X: unknown agent 'ArgoCDAgent'"),
        ("mcp_server_registry", "[]", "MCP_SERVER_REGISTRY: must be a JSON object"),
    ],
)
def test_bad_seed_overrides_are_reported(variable, value, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_config(**{variable: value})


def test_stdio_servers_do_not_inherit_provider_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("KUBECONFIG", "/tmp/kc")
    env = load_config().mcp_servers[KUBERNETES_SERVER].child_env()
    assert "OPENAI_API_KEY" not in env
    assert env["KUBECONFIG"] == "/tmp/kc"


def test_changing_servers_keeps_the_registrys_limits():
    registry = AgentRegistry(load_config(), max_iterations=3, max_tokens=9000)
    changed = registry.with_servers(**{KUBERNETES_SERVER: {"args": ["--read-only", "-v"]}})
    assert changed.servers[KUBERNETES_SERVER].args == ["--read-only", "-v"]
    spec = changed.agent_for("NamespaceTerminating")
    assert spec is not None and (spec.max_iterations, spec.max_tokens) == (3, 9000)
    assert registry.servers[KUBERNETES_SERVER].args == ["--read-only"]  # the original stays
