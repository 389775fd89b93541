"""`sre-agent serve` as a real process for the crash tests: started in its own process
group on a free loopback port, killed with SIGKILL (the whole group and its MCP servers),
started again on the same database. Plus the scripted model that drives it through the
fake OpenAI-compatible server, and the flaky MCP server's call log.

Used by tests/integration/test_crash_recovery.py and tests/soak/soak.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.chat_completions import ChatRequest, FakeChatCompletions, Reply

ROOT = Path(__file__).resolve().parents[2]
FLAKY_SERVER = ROOT / "tests" / "servers" / "flaky_server.py"
ALERT_TYPE = "NamespaceTerminating"
TERMINAL = ("completed", "failed")

_ITERATION = re.compile(r"[Ii]teration (\d+) of at most")
_KEY = re.compile(r"^namespace: (\S+)$", re.MULTILINE)


# --- the model ------------------------------------------------------------------------------


@dataclass
class Script:
    """What the scripted model does per alert: `calls[i]` probe calls in iteration i+1,
    each taking `tool_seconds` in the MCP server; the partial analysis concludes after the
    last scripted iteration. Deterministic from the prompt, so a resumed session asks for
    exactly the calls its interrupted run asked for."""

    calls: tuple[int, ...] = (2, 1)
    tool_seconds: float = 0.1

    def __call__(self, request: ChatRequest) -> Reply:
        match = _ITERATION.search(request.text)
        iteration = int(match.group(1)) if match else 0
        key_match = _KEY.search(request.text)
        key = key_match.group(1) if key_match else "unknown"
        if request.structured_output == "PartialAnalysis":
            return Reply.values(
                analysis=f"{key}: after iteration {iteration} [T{iteration}.1]",
                conclude=iteration >= len(self.calls),
            )
        if request.structured_output == "RootCauseAnalysis":
            return Reply.values(
                summary=f"{key} is unhealthy.",
                root_cause="The probes say so.",
                evidence=[{"finding": "probe failed", "tool_call": "T1.1"}],
                remediation=["Fix it."],
                confidence="medium",
            )
        if "probe" not in request.tool_names or not 1 <= iteration <= len(self.calls):
            return Reply.text("Enough evidence; no more tools are needed.")
        return Reply.calls(
            *[
                (
                    "probe",
                    {
                        "key": key,
                        "iteration": iteration,
                        "call": n,
                        "seconds": self.tool_seconds,
                    },
                )
                for n in range(1, self.calls[iteration - 1] + 1)
            ]
        )


def alert(key: str) -> dict[str, Any]:
    """An alert whose namespace is `key` (the scripted model passes it to every probe)."""
    return {
        "alert_type": ALERT_TYPE,
        "severity": "warning",
        "namespace": key,
        "cluster": "soak",
        "message": f"Namespace {key} stuck in Terminating",
    }


def quiet_disconnects(fake: FakeChatCompletions) -> None:
    """Keep the fake server from printing a traceback for each connection a killed service
    drops (the default of `socketserver`); other handler errors still print. Call after
    `start()`."""
    server = fake._server
    assert server is not None, "start the fake server first"
    default = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            default(request, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign]


# --- the MCP server's call log --------------------------------------------------------------

CallKey = tuple[str, int, int]
"""(alert key, iteration, call number)"""


def read_call_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def call_key(entry: dict[str, Any]) -> CallKey:
    return (str(entry["key"]), int(entry["iteration"]), int(entry["call"]))


def executions(entries: list[dict[str, Any]]) -> Counter[CallKey]:
    """How many times each call started executing in the MCP server."""
    return Counter(call_key(e) for e in entries if e["event"] == "start")


async def checkpointed_calls(url: str) -> dict[str, list[CallKey]]:
    """Per session (thread), the tool calls whose results reached the checkpoint store of
    the history database `url`: the `tool_calls` writes of finished `execute_tools` tasks
    in the agent subgraphs, one entry per call written. Read with the service stopped."""
    from graph.checkpoints import open_checkpointer

    out: dict[str, list[CallKey]] = {}
    async with open_checkpointer(url) as saver:
        async for tup in saver.alist(None):
            configurable = tup.config["configurable"]
            calls = out.setdefault(str(configurable["thread_id"]), [])
            if not configurable.get("checkpoint_ns"):
                continue  # the orchestrator: it gets the agent's whole log at its end
            for _, channel, value in tup.pending_writes or []:
                if channel == "tool_calls":
                    calls += [call_key(record["args"]) for record in value or []]
    return out


# --- configuration --------------------------------------------------------------------------


def write_config(
    workdir: Path,
    *,
    call_log: Path,
    failure_rate: float = 0.0,
    seed: int = 0,
    max_iterations: int = 4,
) -> Path:
    """The YAML registries: the Kubernetes agent's alerts go to the flaky server (the
    built-in kubernetes-server is disabled)."""
    config = {
        "mcpServers": {
            "kubernetes-server": {"command": "true", "enabled": False},
            "flaky": {
                "command": sys.executable,
                "args": [str(FLAKY_SERVER)],
                "env": {
                    "FLAKY_STATE_DIR": str(workdir / "flaky"),
                    "FLAKY_CALL_LOG": str(call_log),
                    "FLAKY_FAILURE_RATE": str(failure_rate),
                    "FLAKY_SEED": str(seed),
                },
            },
        },
        "agents": {
            "kubernetes": {
                "mcp_servers": ["flaky"],
                "alert_types": [ALERT_TYPE],
                "max_iterations": max_iterations,
            }
        },
    }
    path = workdir / "sre-agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sre_agent_command() -> list[str]:
    script = Path(sys.executable).with_name("sre-agent")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from server.cli import main; main()"]


_INHERITED_PREFIXES = (
    "LLM_",
    "SRE_AGENT",
    "OPENAI",
    "ANTHROPIC",
    "GOOGLE",
    "GEMINI",
    "XAI",
    "DEFAULT_LLM",
    "HISTORY_",
    "MAX_",
    "AGENT_REGISTRY",
    "MCP_SERVER_REGISTRY",
    "API_TOKENS",
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --- the service ----------------------------------------------------------------------------


class ServiceProcess:
    """`sre-agent serve` in its own process group, in `workdir` (its `data/` goes there).

    `start()` waits until /health answers; `kill()` is SIGKILL for the service's process
    group and for the MCP servers it started (they run in sessions of their own); `stop()`
    is a graceful SIGTERM (SIGKILL after `grace` seconds). Every start logs to
    `workdir/service-<n>.log`."""

    def __init__(self, workdir: Path, env: dict[str, str], *, startup_timeout: float = 60.0):
        self.workdir = workdir
        self.env = env
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_path(self, start: int | None = None) -> Path:
        return self.workdir / f"service-{start or self.starts}.log"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT)
        env.setdefault("LOG_FORMAT", "json")
        return env

    async def start(self) -> None:
        assert not self.running, "already running"
        self.starts += 1
        self.port = free_port()
        with self.log_path().open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - spawning does not block
                [*sre_agent_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"sre-agent serve exited with {self.proc.returncode}: "
                        f"{self.log_path().read_text()[-3000:]}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    await self.kill()
                    raise TimeoutError(f"sre-agent serve did not answer in {self.startup_timeout}s")
                await asyncio.sleep(0.1)

    def mcp_server_pids(self) -> list[int]:
        path = self.workdir / "flaky" / "pids"
        if not path.exists():
            return []
        return [int(line) for line in path.read_text().split() if line.strip()]

    def _kill_mcp_servers(self) -> None:
        """SIGKILL this service's flaky servers still alive: each pid they logged, checked
        to be a flaky server with this service's state folder (never another process)."""
        marker = f"FLAKY_STATE_DIR={self.workdir / 'flaky'}".encode()
        for pid in self.mcp_server_pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if FLAKY_SERVER.name.encode() in cmdline and marker in environ and _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def kill(self) -> None:
        """SIGKILL: the service's process group, then its MCP servers (a host crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:  # not reaped: its process group is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._kill_mcp_servers()
        await asyncio.to_thread(self.proc.wait, 30)
        self._kill_mcp_servers()  # any started in between

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM and wait; SIGKILL when it takes longer than `grace`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, grace)
        await self.kill()


class Client:
    """The HTTP calls the crash tests make, each bounded in time."""

    def __init__(self, service: ServiceProcess, timeout: float = 30.0) -> None:
        self.service = service
        self.timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.service.url, timeout=self.timeout)

    async def submit(self, alert: dict[str, Any], key: str) -> dict[str, Any]:
        async with self._client() as client:
            response = await client.post("/alerts", json=alert, headers={"Idempotency-Key": key})
        response.raise_for_status()
        return dict(response.json())

    async def sessions(self) -> list[dict[str, Any]]:
        """Every session of the index (pages of 100)."""
        out: list[dict[str, Any]] = []
        async with self._client() as client:
            for page in range(1, 1000):
                response = await client.get(
                    "/api/v1/history/sessions", params={"page": page, "page_size": 100}
                )
                response.raise_for_status()
                body = response.json()
                out += body["sessions"]
                if page >= body["pages"]:
                    break
        return out

    async def counts(self) -> dict[str, int]:
        """Sessions per status, from the index."""
        async with self._client() as client:
            response = await client.get("/api/v1/history/health")
        response.raise_for_status()
        sessions = response.json().get("sessions") or {}
        return {k: int(v) for k, v in (sessions.get("by_status") or {}).items()}

    async def load(self) -> dict[str, int]:
        async with self._client() as client:
            response = await client.get("/health")
        response.raise_for_status()
        return dict(response.json()["queue"])

    async def wait_terminal(
        self, session_ids: set[str], *, limit: float, interval: float = 0.25
    ) -> list[dict[str, Any]]:
        """Poll the index until every session in `session_ids` is completed or failed;
        raises TimeoutError naming the ones that are not after `limit` seconds."""
        deadline = time.monotonic() + limit
        while True:
            sessions = {s["session_id"]: s for s in await self.sessions()}
            open_ = {
                sid for sid in session_ids if sessions.get(sid, {}).get("status") not in TERMINAL
            }
            if not open_:
                return [sessions[sid] for sid in session_ids]
            if time.monotonic() > deadline:
                sample = [(sid, sessions.get(sid, {}).get("status")) for sid in sorted(open_)[:5]]
                raise TimeoutError(f"{len(open_)} sessions not terminal after {limit}s: {sample}")
            await asyncio.sleep(interval)
