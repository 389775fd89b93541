"""A real uvicorn serving the app on a random loopback port (httpx's ASGI transport
buffers SSE and skips the lifespan), with the test MCP servers and a scripted model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langchain_core.messages import AIMessage

from graph.models import ModelChoice
from graph.registry import AgentRegistry
from graph.scripted_model import ModelRequest, ScriptedChatModel, structured, tool_call
from graph.settings import Settings
from server.app import create_app
from tests.conftest import ops_app_config
from tests.pg import fresh_database

_ITERATION = re.compile(r"[Ii]teration (\d+) of at most")


def two_iterations(request: ModelRequest) -> AIMessage:
    """Iteration 1 reads the namespace and pods, iteration 2 one slow check, then concludes."""
    iteration = (
        int(_ITERATION.search(request.text).group(1)) if _ITERATION.search(request.text) else 0
    )
    if request.structured_output == "PartialAnalysis":
        return structured(
            "PartialAnalysis", analysis=f"after iteration {iteration}", conclude=iteration >= 2
        )
    if request.structured_output == "RootCauseAnalysis":
        return structured(
            "RootCauseAnalysis",
            summary="ns stuck",
            root_cause="finalizer",
            evidence=[{"finding": "Terminating", "tool_call": "T1.1"}],
            remediation=["scale the controller"],
            confidence="high",
        )
    if iteration == 1:
        return AIMessage(
            content="",
            tool_calls=[
                tool_call("get_namespace", name="billing"),
                tool_call("list_pods", namespace="billing"),
            ],
        )
    return AIMessage(content="", tool_calls=[tool_call("slow", seconds=0.05, label="check")])


ALERT = {
    "alert_type": "NamespaceTerminating",
    "severity": "warning",
    "namespace": "billing",
    "message": "Namespace billing stuck in Terminating",
    "cluster": "prod",
}


class Service:
    """A running service and an HTTP client for it."""

    def __init__(
        self, base_url: str, client: httpx.AsyncClient, model: ScriptedChatModel, app: Any = None
    ):
        self.url, self.client, self.model, self.app = base_url, client, model, app

    async def submit(self, alert: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = await self.client.post("/alerts", json=alert or ALERT, headers=headers)
        assert response.status_code in (200, 202), response.text
        return response.json()

    async def events(
        self, alert_id: str, *, last_event_id: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Read the SSE stream (to its end, or `limit` events) as parsed events with ids."""
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        events: list[dict[str, Any]] = []
        async with self.client.stream(
            "GET", f"/alerts/{alert_id}/events", headers=headers
        ) as response:
            assert response.status_code == 200
            current: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    current["id"] = int(line[3:].strip())
                elif line.startswith("event:"):
                    current["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    current["data"] = json.loads(line[5:].strip())
                elif line == "" and current:
                    if current.get("event") != "heartbeat":
                        events.append(current)
                    current = {}
                    if limit is not None and len(events) >= limit:
                        break
        return events

    async def wait_done(self, alert_id: str, limit: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(limit):
            while True:
                status = (await self.client.get(f"/processing-status/{alert_id}")).json()
                if status["status"] in ("completed", "failed"):
                    return status
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, model: ScriptedChatModel, registry: AgentRegistry | None = None
) -> AsyncIterator[Service]:
    app = create_app(
        settings,
        registry=registry or AgentRegistry(ops_app_config()),
        chat_model=(ModelChoice("scripted", "test"), model),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield Service(base, client, model, app)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/sre-agent.db"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(
            _env_file=None,
            history_database_url=database_url,  # type: ignore[call-arg]
            **overrides,
        )

    return make


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    model = ScriptedChatModel(responder=two_iterations, latency=0.02)
    async with serve(make_settings(), model) as running:
        yield running
