"""MCP servers in the standard client shape over both transports, and servers that crash.

A stdio server (tests/servers/flaky_server.py) and a streamable HTTP server
(tests/servers/http_server.py, a real subprocess on a loopback port) serve one agent through
the graph; the configured `env` reaches the stdio process and the configured `headers` reach
the HTTP server. A server that crashes mid-session is restarted once and the call retried;
one that stays down leaves the agent going on with the other servers, `degraded`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from graph.config import AppConfig
from graph.mcp_errors import ServerUnavailable
from graph.mcp_launch import expand, resolve_command, resolved
from graph.scripted_model import ScriptedChatModel, calls, tool_call
from graph.toolbox import Toolbox
from tests.conftest import SERVERS, ops_app_config
from tests.test_graph import final, investigate, partial

FLAKY = str(SERVERS / "flaky_server.py")
HEADER_VALUE = "hdr-7f3a-from-config"


@dataclass
class HttpServer:
    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_http_server(port: int = 0) -> HttpServer:
    """tests/servers/http_server.py as a subprocess; returns once it listens."""
    process = subprocess.Popen(
        [sys.executable, str(SERVERS / "http_server.py"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "PORT <n>", printed once the socket is bound
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the HTTP test server did not start: {line!r}")
    return HttpServer(process, int(line.split()[1]))


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpServer]:
    server = start_http_server()
    yield server
    server.stop()


def flaky(state: Path, *args: str, **env: str) -> dict[str, Any]:
    state.mkdir(parents=True, exist_ok=True)
    return {
        "command": sys.executable,
        "args": [FLAKY, *args],
        "env": {"FLAKY_STATE_DIR": str(state), **env},
    }


def app_config(servers: dict[str, Any], agent_servers: list[str]) -> AppConfig:
    return AppConfig.model_validate(
        {
            "mcpServers": servers,
            "agents": {
                "observability": {
                    "mcp_servers": agent_servers,
                    "alert_types": ["HighErrorRate"],
                    "max_iterations": 3,
                }
            },
        }
    )


@pytest.fixture
def alert(sample_alert: dict[str, Any]) -> dict[str, Any]:
    return {**sample_alert, "alert_type": "HighErrorRate", "message": "api 5xx ratio 27%"}


async def test_stdio_and_http_servers_serve_one_agent(
    make_context, alert, http_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-reach-servers")
    config = app_config(
        {
            "flaky": flaky(tmp_path / "flaky", SRE_TEST_ENV="env-from-config"),
            "metrics": {
                "transport": "streamable_http",
                "url": http_server.url,
                "headers": {"X-Sre-Token": HEADER_VALUE},
            },
        },
        ["flaky", "metrics"],
    )
    model = ScriptedChatModel(
        script=[
            calls(
                tool_call("env_value", name="SRE_TEST_ENV"),
                tool_call("env_value", name="OPENAI_API_KEY"),
                tool_call("request_header", name="x-sre-token"),
                tool_call("error_rate", service="api"),
            ),
            partial(conclude=True),
            final(),
        ]
    )
    async with Toolbox(config.mcp_servers) as toolbox:
        status = toolbox.status()
        assert status["flaky"].state == "up" and status["metrics"].state == "up"
        values, _ = await investigate(make_context(model, config=config, toolbox=toolbox), alert)

    assert values["status"] == "completed"
    assert {"env_value", "request_header", "error_rate"} <= set(model.requests[0].tool_names)
    records = values["tool_calls"]
    assert [r["server"] for r in records] == ["flaky", "flaky", "metrics", "metrics"]
    assert all(r["status"] == "ok" for r in records)
    results = model.requests[1].text
    assert "env-from-config" in results  # the configured env reached the stdio process
    assert "sk-must-not-reach-servers" not in results  # provider keys are not passed
    assert "<unset>" in results
    assert HEADER_VALUE in results  # the configured header reached the HTTP server
    assert '"error_rate": 0.27' in results


async def test_crashed_server_is_restarted_and_the_call_retried(make_context, alert, tmp_path):
    config = app_config({"flaky": flaky(tmp_path / "flaky")}, ["flaky"])
    model = ScriptedChatModel(
        script=[
            calls(tool_call("pid")),
            partial(),
            calls(tool_call("crash_once")),
            partial(conclude=True),
            final(),
        ]
    )
    async with Toolbox(config.mcp_servers) as toolbox:
        values, events = await investigate(
            make_context(model, config=config, toolbox=toolbox), alert
        )
        status = toolbox.status()["flaky"]
    assert status.state == "up" and status.restarts == 1
    assert values["status"] == "completed"
    assert [r["status"] for r in values["tool_calls"]] == ["ok", "ok"]
    first_pid = (tmp_path / "flaky" / "crashed").read_text()
    answer = model.requests[3].text
    assert "after a restart" in answer and f"pid {first_pid} " not in answer
    finished = [e["data"] for e in events if e["type"] == "tool_call_finished"]
    assert [f.get("restarted", False) for f in finished] == [False, True]
    assert not [e for e in events if e["type"] == "degraded"]
    assert not values["degraded"]


async def test_server_that_stays_down_leaves_the_agent_going_on(make_context, alert, tmp_path):
    ops = ops_app_config().mcp_servers["ops"].model_dump()
    config = app_config(
        {"flaky": flaky(tmp_path / "flaky", "--die-after-first-start"), "ops": ops},
        ["flaky", "ops"],
    )
    model = ScriptedChatModel(
        script=[
            calls(tool_call("crash"), tool_call("list_pods", namespace="billing")),
            partial("flaky crashed"),
            calls(tool_call("get_namespace", name="billing")),
            partial(conclude=True),
            final(),
        ]
    )
    async with Toolbox(config.mcp_servers) as toolbox:
        values, events = await investigate(
            make_context(model, config=config, toolbox=toolbox), alert
        )
        status = toolbox.status()["flaky"]

    assert status.state == "down" and status.restarts == 1
    assert "failed to restart" in (status.error or "")
    assert values["status"] == "completed"
    crash, pods, namespace = values["tool_calls"]
    assert crash["status"] == "error" and crash["server"] == "flaky"
    assert pods["status"] == "ok" and namespace["status"] == "ok"
    # the failed call is an error result the model reads...
    assert "Error: crash could not run: MCP server flaky is unavailable" in model.requests[1].text
    # ...the node reports the degradation...
    degraded = [e for e in events if e["type"] == "degraded"]
    assert len(degraded) == 1 and degraded[0]["step"] == "execute_tools"
    assert degraded[0]["data"]["server"] == "flaky"
    assert any(d.startswith("MCP server flaky unavailable") for d in values["degraded"])
    # ...and the next iteration offers only the servers still up, saying which is not.
    second = model.requests[2]
    assert "crash" not in second.tool_names and "list_pods" in second.tool_names
    assert "Unavailable tool servers" in second.text


async def test_crash_between_calls_is_noticed_and_restarted(tmp_path):
    config = app_config({"flaky": flaky(tmp_path / "flaky")}, ["flaky"])
    async with Toolbox(config.mcp_servers) as toolbox:
        before = await toolbox.invoke(
            "flaky", {"name": "pid", "args": {}, "id": "1"}, time_limit=10
        )
        os.kill(int(before.output.content[0]["text"]), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while toolbox.status()["flaky"].restarts == 0 or toolbox.status()["flaky"].state != "up":
            assert time.monotonic() < deadline, toolbox.status()["flaky"]
            await asyncio.sleep(0.05)
        after = await toolbox.invoke("flaky", {"name": "pid", "args": {}, "id": "2"}, time_limit=10)
    assert after.restarted is False  # restarted before the call, not because of it
    assert after.output.content[0]["text"] != before.output.content[0]["text"]


async def test_server_crashing_too_often_is_left_down(tmp_path):
    config = app_config({"flaky": flaky(tmp_path / "flaky")}, ["flaky"])
    async with Toolbox(config.mcp_servers, restart_limit=1) as toolbox:
        with pytest.raises(ServerUnavailable, match="crashed again when crash was retried"):
            await toolbox.invoke("flaky", {"name": "crash", "args": {}, "id": "1"}, time_limit=10)
        deadline = time.monotonic() + 20
        while toolbox.status()["flaky"].state != "down":
            assert time.monotonic() < deadline, toolbox.status()["flaky"]
            await asyncio.sleep(0.05)
        status = toolbox.status()["flaky"]
        assert status.restarts == 1 and "crashed 2 times" in (status.error or "")
        assert toolbox.unavailable(["flaky"])["flaky"] == status.error
        assert toolbox.tools_for(["flaky"]) == {}


async def test_http_server_is_reconnected_after_a_restart_and_reported_when_gone():
    server = start_http_server()
    config = app_config(
        {"metrics": {"transport": "streamable_http", "url": server.url}}, ["metrics"]
    )
    call = {"name": "error_rate", "args": {"service": "api"}, "id": "1"}
    try:
        async with Toolbox(config.mcp_servers, startup_timeout=2) as toolbox:
            assert (await toolbox.invoke("metrics", call, time_limit=10)).restarted is False
            server.stop()
            server = start_http_server(server.port)  # the same server, a new process
            again = await toolbox.invoke("metrics", call, time_limit=10)
            assert again.restarted is True and "0.27" in again.output.content[0]["text"]
            assert toolbox.status()["metrics"].restarts == 1

            server.stop()  # gone for good
            with pytest.raises(ServerUnavailable, match="failed to restart"):
                await toolbox.invoke("metrics", call, time_limit=10)
            assert toolbox.status()["metrics"].state == "down"
    finally:
        server.stop()


def test_variables_in_server_config_are_expanded_at_start():
    environ = {"TOKEN": "s3cret", "EMPTY": ""}
    assert expand("Bearer ${TOKEN}", environ) == "Bearer s3cret"
    assert expand("${MISSING:-http://127.0.0.1:9090}", environ) == "http://127.0.0.1:9090"
    assert expand("${EMPTY:-default}", environ) == ""  # set (even empty) wins
    assert expand("$TOKEN and ${TOKEN", environ) == "$TOKEN and ${TOKEN"  # not our syntax
    with pytest.raises(KeyError, match="MISSING"):
        expand("${MISSING}", environ)


def test_bare_commands_are_found_where_the_project_installs_servers(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # not on PATH...
    found = resolve_command(Path(sys.executable).name)
    assert found == str(Path(sys.executable).parent / Path(sys.executable).name)  # ...venv bin
    assert resolve_command("no-such-mcp-server") == "no-such-mcp-server"
    assert resolve_command("/abs/path/server") == "/abs/path/server"


async def test_a_server_whose_variable_is_unset_stays_down_saying_why(tmp_path, monkeypatch):
    monkeypatch.delenv("SRE_TEST_UNSET", raising=False)
    monkeypatch.setenv("SRE_TEST_SET", "from-sre-agent-env")
    server = flaky(tmp_path / "a", SRE_TEST_ENV="${SRE_TEST_SET}")
    config = app_config(
        {"good": server, "bad": flaky(tmp_path / "b", TOKEN="${SRE_TEST_UNSET}")}, ["good"]
    )
    assert config.mcp_servers["good"].env["SRE_TEST_ENV"] == "${SRE_TEST_SET}"  # kept as is
    assert resolved(config.mcp_servers["good"]).env["SRE_TEST_ENV"] == "from-sre-agent-env"
    async with Toolbox(config.mcp_servers) as toolbox:
        status = toolbox.status()
        answer = await toolbox.invoke(
            "good",
            {"name": "env_value", "args": {"name": "SRE_TEST_ENV"}, "id": "1"},
            time_limit=10,
        )
    assert status["bad"].state == "down"
    assert (status["bad"].error or "").startswith(
        "ValueError: environment variable SRE_TEST_UNSET is not set; trying again in"
    )
    assert answer.output.content[0]["text"] == "from-sre-agent-env"


async def test_a_down_server_is_tried_again_and_comes_back(tmp_path):
    command = tmp_path / "mcp-server"  # missing at start-up: the server is down
    config = AppConfig.model_validate(
        {
            "mcpServers": {
                "late": {"command": str(command), "args": [str(SERVERS / "ops_server.py")]}
            },
            "agents": {},
        }
    )
    async with Toolbox(config.mcp_servers, revive_after=0.2, revive_max=0.5) as toolbox:
        status = toolbox.status()["late"]
        assert status.state == "down" and "trying again in" in (status.error or "")
        assert toolbox.tools_for(["late"]) == {}
        command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        command.chmod(0o755)  # the server can start now
        for _ in range(300):  # up to 15 s
            if toolbox.status()["late"].state == "up":
                break
            await asyncio.sleep(0.05)
        assert toolbox.status()["late"].state == "up"
        assert "list_pods" in toolbox.tools_for(["late"])
