"""Safety, end to end through the real kubernetes-mcp-server and the fixture cluster:
planted secrets never leave, and a server started without --read-only still cannot
write."""

from __future__ import annotations

import base64
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from graph.builder import build_investigation_graph
from graph.config import AppConfig, load_config
from graph.context import Context
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.runner import run_investigation
from graph.scripted_model import ModelRequest, ScriptedChatModel, calls, structured, tool_call
from graph.settings import Settings
from graph.toolbox import Toolbox
from server.fixture_cluster import FixtureCluster, Scenario
from tests.service.conftest import serve

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "node_modules" / ".bin" / "kubernetes-mcp-server"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not BINARY.exists(), reason="kubernetes-mcp-server missing: run `npm ci`"),
]

PLANTED = {
    "secret data": "PLANTED-SECRET-ONE",
    "secret stringData": "PLANTED-STRINGDATA-TWO",
    "env var": "PLANTED-ENV-THREE",
    "configmap url": "PLANTED-PW-FOUR",
    "log token": "PLANTEDLOGTOKENFIVE123",
    "alert": "PLANTED-ALERT-SIX",
}
ENCODED = base64.b64encode(PLANTED["secret data"].encode()).decode()


def planted_cluster() -> Scenario:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop"},
        "status": {"phase": "Active"},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "db-creds", "namespace": "shop"},
        "data": {"password": ENCODED},
        "stringData": {"token": PLANTED["secret stringData"]},
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": "shop"},
        "data": {"DATABASE_URL": f"postgres://app:{PLANTED['configmap url']}@db/app"},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "web:1",
                    "env": [{"name": "API_TOKEN", "value": PLANTED["env var"]}],
                }
            ]
        },
        "status": {"phase": "Running"},
    }
    logs = {"shop/web-1/web": f"starting\nusing Authorization: Bearer {PLANTED['log token']}\n"}
    return Scenario.from_documents([ns, secret, config_map, pod], logs=logs, name="planted")


@pytest.fixture
def cluster() -> Iterator[tuple[FixtureCluster, Path]]:
    with FixtureCluster(planted_cluster()) as running, tempfile.TemporaryDirectory() as tmp:
        yield running, running.write_kubeconfig(Path(tmp) / "kubeconfig")


def k8s_registry(kubeconfig: Path, *, read_only_flag: bool = True) -> AgentRegistry:
    base = load_config().mcp_servers["kubernetes-server"]
    args = (["--read-only"] if read_only_flag else []) + ["--kubeconfig", str(kubeconfig)]
    return AgentRegistry(
        AppConfig.model_validate(
            {
                "mcpServers": {
                    "kubernetes-server": {
                        "command": str(BINARY),
                        "args": args,
                        "env": {"KUBE_CLIENT_QPS": "1000", "KUBE_CLIENT_BURST": "1000"},
                        "instructions": base.instructions,
                    }
                },
                "agents": {
                    "kubernetes": {
                        "mcp_servers": ["kubernetes-server"],
                        "alert_types": ["PodCrashLooping"],
                        "max_iterations": 2,
                    }
                },
            }
        )
    )


def database_bytes(folder: Path) -> bytes:
    """The database file with its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("history.db*")))


def read_everything(request: ModelRequest) -> AIMessage:
    if request.structured_output == "PartialAnalysis":
        return structured("PartialAnalysis", analysis="read it all", conclude=True)
    if request.structured_output == "RootCauseAnalysis":
        return structured(
            "RootCauseAnalysis",
            summary="s",
            root_cause="rc",
            evidence=[],
            remediation=[],
            confidence="low",
        )
    return calls(
        tool_call(
            "resources_get", apiVersion="v1", kind="Secret", name="db-creds", namespace="shop"
        ),
        tool_call(
            "resources_get", apiVersion="v1", kind="ConfigMap", name="app-config", namespace="shop"
        ),
        tool_call("pods_get", name="web-1", namespace="shop"),
        tool_call("pods_log", name="web-1", namespace="shop"),
    )


async def test_planted_secrets_reach_no_prompt_event_database_or_log(
    cluster: tuple[FixtureCluster, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    fixture, kubeconfig = cluster
    caplog.set_level(logging.DEBUG)
    database = tmp_path / "history.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        history_database_url=f"sqlite+aiosqlite:///{database}",
    )
    model = ScriptedChatModel(responder=read_everything)
    alert = {
        "alert_type": "PodCrashLooping",
        "namespace": "shop",
        "pod": "web-1",
        "message": f"web-1 crashed; password={PLANTED['alert']}",
    }
    async with serve(settings, model, registry=k8s_registry(kubeconfig)) as service:
        accepted = await service.submit(alert)
        async with service.client.stream(
            "GET", f"/alerts/{accepted['alert_id']}/events"
        ) as response:
            stream = "".join([chunk async for chunk in response.aiter_text()])
        session = (await service.client.get(accepted["session_url"])).json()

    prompts = "\n".join(r.text for r in model.requests)
    assert "[MASKED]" in prompts and "kind: Secret" in prompts  # the results did arrive
    mcp = [e for e in session["timeline"] if e["type"] == "mcp_communication"]
    assert [e["status"] for e in mcp] == ["ok"] * 4
    assert sum(e["masked"] for e in mcp) >= 4
    stored = database_bytes(tmp_path)
    logs = caplog.text
    for where, value in [*PLANTED.items(), ("encoded secret", ENCODED)]:
        assert value not in prompts, f"{where} reached the model"
        assert value not in stream, f"{where} reached the SSE stream"
        assert value.encode() not in stored, f"{where} reached the database"
        assert value not in logs, f"{where} reached the logs"
        assert value not in str(session), f"{where} reached the history API"
    assert fixture.write_requests == []


async def test_read_only_policy_holds_without_the_servers_read_only_flag(
    cluster: tuple[FixtureCluster, Path],
):
    fixture, kubeconfig = cluster
    registry = k8s_registry(kubeconfig, read_only_flag=False)
    model = ScriptedChatModel(
        script=[
            calls(
                tool_call(
                    "resources_delete", apiVersion="v1", kind="Pod", name="web-1", namespace="shop"
                ),
                tool_call("pods_delete", name="web-1", namespace="shop"),
                tool_call("pods_get", name="web-1", namespace="shop"),
            ),
            structured("PartialAnalysis", analysis="x", conclude=True),
            structured(
                "RootCauseAnalysis",
                summary="s",
                root_cause="rc",
                evidence=[],
                remediation=[],
                confidence="low",
            ),
        ]
    )
    async with Toolbox(registry.servers) as toolbox, RunbookFetcher() as runbooks:
        status = toolbox.status()["kubernetes-server"]
        assert {
            "pods_delete",
            "resources_delete",
            "pods_exec",
            "resources_create_or_update",
            "resources_scale",
            "pods_run",
        } <= set(status.blocked)
        context = Context(
            model=model,
            model_name="scripted",
            toolbox=toolbox,
            registry=registry,
            runbooks=runbooks,
        )
        graph = build_investigation_graph(registry)
        values: dict[str, Any] = await run_investigation(
            graph,
            thread_id="policy",
            context=context,
            alert={"alert_type": "PodCrashLooping", "message": "m", "namespace": "shop"},
        )

    offered = set(model.requests[0].tool_names)
    assert "pods_get" in offered and not offered & set(status.blocked)
    blocked = [c for c in values["tool_calls"] if c["status"] == "blocked"]
    assert [c["tool"] for c in blocked] == ["resources_delete", "pods_delete"]
    assert "blocked by the kubernetes-server server's policy" in model.requests[1].text
    assert [c["status"] for c in values["tool_calls"]][-1] == "ok"
    assert fixture.write_requests == []
