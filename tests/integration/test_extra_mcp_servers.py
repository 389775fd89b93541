"""The MCP servers shipped in examples/mcp/observability.yaml start from that file, as
configured, and list their tools - with no Prometheus, Grafana or Argo CD behind them (their
URLs point at a closed loopback port). Prometheus also answers a query from a fake
Prometheus API on loopback, proving the configured `env` reaches it.

Install them with `make install` (or `pip install -e '.[mcp-servers]'` and `npm ci`); each
test is skipped, saying so, when its server is not installed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from graph.config import MCPServerConfig, load_config
from graph.mcp_launch import resolve_command
from graph.toolbox import Toolbox

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "mcp" / "observability.yaml"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there

INSTALL = {
    "prometheus": "pip install -e '.[mcp-servers]'",
    "grafana": "pip install -e '.[mcp-servers]'",
    "argocd": "npm ci",
}
EXPECTED = {
    "prometheus": {"execute_query", "execute_range_query", "get_metric_metadata", "get_targets"},
    "grafana": {
        "list_datasources",
        "query_prometheus",
        "query_loki_logs",
        "search_dashboards",
        "get_dashboard_panel_queries",
        "alerting_rules_read",
        "get_annotations",
    },
    "argocd": {"list_applications", "get_application", "get_application_resource_tree"},
}
WRITE_TOOLS = {  # what the servers offer without their read-only switches
    "grafana": {"update_dashboard", "create_alert_rule", "create_annotation"},
    "argocd": {"create_application", "sync_application", "delete_application"},
}

pytestmark = [pytest.mark.integration]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an operator exports; the YAML reads it through ${VAR}."""
    for name in ("PROMETHEUS_URL", "GRAFANA_URL", "ARGOCD_BASE_URL"):
        monkeypatch.setenv(name, NOWHERE)
    monkeypatch.setenv("ARGOCD_API_TOKEN", "dummy-token")


def server_config(name: str) -> MCPServerConfig:
    config = load_config(CONFIG).mcp_servers[name]
    assert config.command is not None
    if not Path(resolve_command(config.command)).is_file():
        pytest.skip(f"{config.command} is not installed: run `{INSTALL[name]}` (or make install)")
    return config


@pytest.mark.parametrize("name", ["prometheus", "grafana", "argocd"])
async def test_server_starts_and_lists_its_tools(name: str, environment: None) -> None:
    config = server_config(name)
    started = time.perf_counter()
    async with Toolbox({name: config}, startup_timeout=60) as toolbox:
        elapsed = time.perf_counter() - started
        status = toolbox.status()[name]
        assert status.state == "up", status.error
        assert EXPECTED[name] <= set(status.tools)
        assert not WRITE_TOOLS.get(name, set()) & (set(status.tools) | set(status.blocked))
        assert not status.blocked  # the server's own read-only mode left only read tools
        print(f"{name}: up in {elapsed:.2f}s with {len(status.tools)} tools")


async def test_argocd_without_its_token_stays_down_saying_why(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = server_config("argocd")
    monkeypatch.delenv("ARGOCD_API_TOKEN")
    async with Toolbox({"argocd": config}) as toolbox:
        status = toolbox.status()["argocd"]
    assert status.state == "down"
    assert "environment variable ARGOCD_API_TOKEN is not set" in (status.error or "")


class _FakePrometheus(BaseHTTPRequestHandler):
    """/api/v1/query answers one sample; records what it was asked."""

    queries: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        type(self).queries.append({"path": self.path, "auth": self.headers.get("Authorization")})
        sample = {"metric": {"job": "api"}, "value": [time.time(), "0.27"]}
        body = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakePrometheus.queries = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_prometheus_queries_the_configured_url(
    environment: None, fake_prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", fake_prometheus)
    monkeypatch.setenv("PROMETHEUS_TOKEN", "prom-token-from-env")
    config = server_config("prometheus")
    query = 'sum(rate(http_requests_total{job="api",code=~"5.."}[5m]))'
    async with Toolbox({"prometheus": config}, startup_timeout=60) as toolbox:
        outcome = await toolbox.invoke(
            "prometheus",
            {"name": "execute_query", "args": {"query": query}, "id": "q1"},
            time_limit=30,
        )
    text = json.dumps(outcome.output.content)
    assert "0.27" in text and "vector" in text
    assert any("/api/v1/query" in q["path"] for q in _FakePrometheus.queries)
    assert {q["auth"] for q in _FakePrometheus.queries} == {"Bearer prom-token-from-env"}
