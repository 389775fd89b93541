"""The real kubernetes-mcp-server (pinned in package.json) against the fixture cluster.

One read-only MCP server per example scenario is started over stdio for the whole module;
tools are called through langchain-mcp-adapters, as the agent calls them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from langchain_core.tools import BaseTool
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from server.fixture_cluster import FixtureCluster, load_scenario

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "node_modules" / ".bin" / "kubernetes-mcp-server"
SCENARIOS = ("stuck-namespace", "crashloop-pod", "pending-pod")

if not BINARY.exists():
    pytest.skip(
        f"{BINARY.relative_to(REPO)} is missing - run `npm ci` to install kubernetes-mcp-server",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

READ_TOOLS = {
    "namespaces_list",
    "pods_list",
    "pods_list_in_namespace",
    "pods_get",
    "pods_log",
    "events_list",
    "resources_get",
    "resources_list",
}
WRITE_TOOLS = {
    "pods_delete",
    "pods_exec",
    "pods_run",
    "resources_create_or_update",
    "resources_delete",
    "resources_scale",
}


@dataclass
class Investigation:
    cluster: FixtureCluster
    session: ClientSession
    tools: dict[str, BaseTool]

    async def call(self, tool: str, **arguments: Any) -> str:
        """Call a tool the way the agent does and return its text."""
        return _text(await self.tools[tool].ainvoke(arguments))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text(block) for block in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return str(content)


async def _serve(
    params: StdioServerParameters, ready: asyncio.Future[ClientSession], stop: asyncio.Event
) -> None:
    """Own the stdio client and session in one task (anyio needs enter/exit in one task)."""
    try:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            ready.set_result(session)
            await stop.wait()
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(exc)
        raise


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def investigations(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Investigation]]:
    tmp = tmp_path_factory.mktemp("kubernetes-mcp-server")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env |= {"KUBE_CLIENT_QPS": "1000", "KUBE_CLIENT_BURST": "1000"}
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    with ExitStack() as stack:
        clusters: dict[str, FixtureCluster] = {}
        readies: dict[str, asyncio.Future[ClientSession]] = {}
        for name in SCENARIOS:
            cluster = stack.enter_context(
                FixtureCluster(load_scenario(REPO / "examples" / "scenarios" / name))
            )
            kubeconfig = cluster.write_kubeconfig(tmp / f"{name}.kubeconfig")
            params = StdioServerParameters(
                command=str(BINARY),
                args=["--read-only", "--kubeconfig", str(kubeconfig)],
                env=env,
            )
            clusters[name] = cluster
            readies[name] = asyncio.get_running_loop().create_future()
            tasks.append(asyncio.create_task(_serve(params, readies[name], stop)))
        try:
            result = {}
            for name, ready in readies.items():
                session = await asyncio.wait_for(ready, timeout=30)
                tools = {tool.name: tool for tool in await load_mcp_tools(session)}
                result[name] = Investigation(clusters[name], session, tools)
            yield result
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_read_only_tools_are_listed(investigations: dict[str, Investigation]) -> None:
    tools = investigations["stuck-namespace"].tools
    assert set(tools) >= READ_TOOLS
    assert not set(tools) & WRITE_TOOLS  # --read-only hides every mutating tool
    pods_log = tools["pods_log"].args
    assert {"name", "namespace", "container", "previous", "tail"} <= set(pods_log)
    assert {"apiVersion", "kind", "name", "namespace"} <= set(tools["resources_get"].args)


async def test_namespace_is_terminating(investigations: dict[str, Investigation]) -> None:
    stuck = investigations["stuck-namespace"]
    listing = await stuck.call("namespaces_list")
    billing = next(line for line in listing.splitlines() if " billing " in line)
    assert "Terminating" in billing

    namespace = await stuck.call("resources_get", apiVersion="v1", kind="Namespace", name="billing")
    assert "phase: Terminating" in namespace
    assert "NamespaceFinalizersRemaining" in namespace
    assert "Some resources are remaining: invoices.billing.example.com" in namespace


async def test_custom_resource_shows_finalizer(investigations: dict[str, Investigation]) -> None:
    stuck = investigations["stuck-namespace"]
    invoice = await stuck.call(
        "resources_get",
        apiVersion="billing.example.com/v1",
        kind="Invoice",
        name="invoice-2024-001",
        namespace="billing",
    )
    assert "billing.example.com/invoice-protection" in invoice
    assert "deletionTimestamp" in invoice

    invoices = await stuck.call(
        "resources_list", apiVersion="billing.example.com/v1", kind="Invoice"
    )
    assert "invoice-2024-001" in invoices and "PendingExport" in invoices

    controller = await stuck.call(
        "resources_get",
        apiVersion="apps/v1",
        kind="Deployment",
        name="invoice-controller",
        namespace="billing-system",
    )
    assert "replicas: 0" in controller


async def test_crashloop_pod_and_logs(investigations: dict[str, Investigation]) -> None:
    crash = investigations["crashloop-pod"]
    pods = await crash.call("pods_list_in_namespace", namespace="payments")
    row = next(line for line in pods.splitlines() if "payment-api-7f9c8d6b5-x7k2m" in line)
    assert "CrashLoopBackOff" in row and " 12 " in row

    pod = "payment-api-7f9c8d6b5-x7k2m"
    current = await crash.call("pods_log", name=pod, namespace="payments")
    assert "DATABASE_URL is not set" in current and "09:57:41" in current
    previous = await crash.call("pods_log", name=pod, namespace="payments", previous=True)
    assert "connection refused" in previous
    assert "09:52:30" in previous and "09:57:41" not in previous
    tail = await crash.call("pods_log", name=pod, namespace="payments", tail=1)
    assert tail.strip().endswith("(is DATABASE_URL set?)") and "starting" not in tail

    events = await crash.call("events_list", namespace="payments")
    assert "BackOff" in events


async def test_pending_pod_events(investigations: dict[str, Investigation]) -> None:
    pending = investigations["pending-pod"]
    events = await pending.call("events_list", namespace="analytics")
    assert "FailedScheduling" in events
    assert "0/3 nodes are available: 3 Insufficient memory" in events

    warnings = await pending.call("events_list", fieldSelector="type=Warning")
    assert "FailedScheduling" in warnings and "NotTriggerScaleUp" not in warnings

    pending_pods = await pending.call("pods_list", fieldSelector="status.phase=Pending")
    assert "report-generator-5c7d9b8f6-9tq4z" in pending_pods
    nodes = await pending.call("resources_list", apiVersion="v1", kind="Node")
    assert len([line for line in nodes.splitlines() if line.startswith("v1 ")]) == 3


async def test_missing_object_is_a_tool_error(investigations: dict[str, Investigation]) -> None:
    session = investigations["pending-pod"].session
    result = await session.call_tool(
        "pods_get", {"name": "does-not-exist", "namespace": "analytics"}
    )
    assert result.isError
    assert 'pods "does-not-exist" not found' in _text([c.model_dump() for c in result.content])


async def test_nothing_was_written(investigations: dict[str, Investigation]) -> None:
    for name, investigation in investigations.items():
        requests = investigation.cluster.requests
        assert requests, name
        assert investigation.cluster.write_requests == [], name
    reviews = [
        r
        for i in investigations.values()
        for r in i.cluster.requests
        if r.path.endswith("/selfsubjectaccessreviews")
    ]
    assert reviews  # the server asks before it lists; those POSTs are not writes
