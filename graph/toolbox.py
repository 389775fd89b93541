"""MCP servers as a toolbox: one persistent session per server for the process lifetime,
tools loaded once, per-server health, and the tool subset an agent may use.

Each server runs in its own task that owns its session (the MCP transports use anyio
cancel scopes, which must be exited by the task that entered them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.sessions import create_session
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from graph.config import MCPServerConfig
from graph.masking import Masker
from graph.policy import blocked_reason

log = logging.getLogger(__name__)


@dataclass
class ServerStatus:
    """What a server is doing now, as /health and the state report it."""

    name: str
    state: Literal["starting", "up", "down", "disabled"] = "starting"
    tools: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # tool → why the policy refuses it
    error: str | None = None


def describe_error(exc: BaseException) -> str:
    """One line for a server failure, digging through exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc} (for kubernetes-mcp-server run `npm ci`)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Toolbox:
    """Starts the enabled MCP servers, keeps their sessions open, hands out their tools."""

    def __init__(
        self,
        servers: Mapping[str, MCPServerConfig],
        *,
        startup_timeout: float = 30.0,
        log_dir: Path | None = None,
    ) -> None:
        self._configs = dict(servers)
        self._startup_timeout = startup_timeout
        self._log_dir = log_dir
        self._tools: dict[str, list[BaseTool]] = {}
        self._blocked: dict[str, dict[str, str]] = {}
        self._maskers = {
            name: Masker.with_patterns(config.mask_patterns)
            for name, config in servers.items()
            if config.mask_secrets
        }
        self._status = {name: ServerStatus(name) for name in servers}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start every enabled server concurrently; failures are recorded, not raised."""
        waits = []
        for name, config in self._configs.items():
            if not config.enabled:
                self._status[name].state = "disabled"
                continue
            ready = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._serve(name, config, ready)))
            waits.append(self._wait_ready(name, ready))
        await asyncio.gather(*waits)

    async def _wait_ready(self, name: str, ready: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(ready.wait(), self._startup_timeout)
        except TimeoutError:
            status = self._status[name]
            status.state, status.error = "down", f"did not start within {self._startup_timeout}s"
            log.error("MCP server %s %s", name, status.error)

    async def _serve(self, name: str, config: MCPServerConfig, ready: asyncio.Event) -> None:
        status = self._status[name]
        try:
            async with contextlib.AsyncExitStack() as stack:
                session = await stack.enter_async_context(self._open(name, config, stack))
                loaded = await load_mcp_tools(session, server_name=name)
                reasons = {t.name: blocked_reason(t, config) for t in loaded}
                tools = [t for t in loaded if reasons[t.name] is None]
                blocked = {n: r for n, r in reasons.items() if r is not None}
                self._tools[name], self._blocked[name] = tools, blocked
                status.state, status.tools, status.error = "up", [t.name for t in tools], None
                status.blocked = blocked
                log.info("MCP server %s up with %d tools", name, len(tools))
                ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            status.state, status.error = "down", describe_error(exc)
            self._tools.pop(name, None)
            log.error("MCP server %s is down: %s", name, status.error)
        finally:
            ready.set()

    @contextlib.asynccontextmanager
    async def _open(
        self, name: str, config: MCPServerConfig, stack: contextlib.AsyncExitStack
    ) -> AsyncIterator[ClientSession]:
        if config.transport != "stdio":
            connection: Any = {
                "transport": config.transport,
                "url": config.url,
                "headers": dict(config.headers),
            }
            async with create_session(connection) as session:
                await session.initialize()
                yield session
            return
        assert config.command is not None
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env=config.child_env(),
            cwd=config.cwd,
        )
        errlog = stack.enter_context(self._errlog(name))
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session

    @contextlib.contextmanager
    def _errlog(self, name: str) -> Iterator[TextIO]:
        """The server's stderr goes to a log file, never over the user's terminal."""
        handle: TextIO
        if self._log_dir is None:
            handle = open(  # noqa: SIM115 - closed below
                "/dev/null", "w"
            )
        else:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            handle = (self._log_dir / f"mcp-{name}.log").open("a")
        try:
            yield handle
        finally:
            handle.close()

    async def aclose(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> Toolbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def status(self) -> dict[str, ServerStatus]:
        return dict(self._status)

    def tools_for(self, servers: Sequence[str]) -> dict[str, tuple[str, BaseTool]]:
        """Tool name → (server, tool) for the servers given, in order (first name wins)."""
        tools: dict[str, tuple[str, BaseTool]] = {}
        for server in servers:
            for tool in self._tools.get(server, []):
                if tool.name in tools:
                    log.warning(
                        "tool %s of %s hidden by %s", tool.name, server, tools[tool.name][0]
                    )
                    continue
                tools[tool.name] = (server, tool)
        return tools

    def blocked_for(self, servers: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Tool name → (server, reason) for tools the policy keeps from these servers."""
        return {
            tool: (server, reason)
            for server in servers
            for tool, reason in self._blocked.get(server, {}).items()
        }

    def masker_for(self, server: str) -> Masker | None:
        """The secret masker for a server's results (None: masking is off for it)."""
        return self._maskers.get(server)

    def unavailable(self, servers: Sequence[str]) -> dict[str, str]:
        """Server → reason, for those of `servers` that cannot be used now."""
        out: dict[str, str] = {}
        for server in servers:
            status = self._status.get(server)
            if status is None:
                out[server] = "not configured"
            elif status.state != "up":
                out[server] = status.error or status.state
        return out
