"""MCP servers as a toolbox: one persistent session per server for the process lifetime,
tools loaded once, per-server health, and the tool subset an agent may use.

Each server runs in its own task that owns its session (the MCP transports use anyio
cancel scopes, which must be exited by the task that entered them). That task supervises
the session: when a server that was up crashes (a stdio process exits, an HTTP connection
breaks), the task closes the dead session and opens a new one, once per crash; a server
that then fails to start, or that crashes too often, is left down. Tool calls go through
`Toolbox.invoke`, which retries a call whose session died once the server is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession

from graph.config import MCPServerConfig
from graph.direct_calls import ainvoke_tool
from graph.masking import Masker
from graph.mcp_errors import ServerUnavailable, SessionLost, connection_lost, describe_error
from graph.mcp_launch import resolved
from graph.mcp_session import open_session
from graph.policy import blocked_reason

log = logging.getLogger(__name__)


@dataclass
class ServerStatus:
    """What a server is doing now, as /health and the state report it."""

    name: str
    state: Literal["starting", "up", "restarting", "down", "disabled"] = "starting"
    tools: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # tool → why the policy refuses it
    error: str | None = None
    restarts: int = 0  # times the server was restarted after a crash


@dataclass
class ToolOutcome:
    """What a tool returned, and whether its server had to be restarted to get it."""

    output: Any
    restarted: bool = False


@dataclass
class _Slot:
    """One server's supervision state."""

    config: MCPServerConfig
    generation: int = 0  # sessions opened so far: a new one after each restart
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # the session has died
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    crashes: deque[float] = field(default_factory=deque)  # monotonic times of crashes
    revivals: int = 0  # attempts to bring a down server back since it was last up


async def _wait_first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _gather(waits: list[Coroutine[Any, Any, None]]) -> None:
    await asyncio.gather(*waits)


class Toolbox:
    """Starts the enabled MCP servers, keeps their sessions open, hands out their tools."""

    def __init__(
        self,
        servers: Mapping[str, MCPServerConfig],
        *,
        startup_timeout: float = 30.0,
        log_dir: Path | None = None,
        restart_limit: int = 3,
        restart_window: float = 600.0,
        revive_after: float | None = 30.0,
        revive_max: float = 600.0,
    ) -> None:
        self._configs = dict(servers)
        self._startup_timeout = startup_timeout
        self._log_dir = log_dir
        self._restart_limit = restart_limit
        self._restart_window = restart_window
        self._revive_after, self._revive_max = revive_after, revive_max
        self._tools: dict[str, list[BaseTool]] = {}
        self._blocked: dict[str, dict[str, str]] = {}
        self._maskers = {
            name: Masker.with_patterns(config.mask_patterns)
            for name, config in servers.items()
            if config.mask_secrets
        }
        self._status = {name: ServerStatus(name) for name in servers}
        self._slots = {name: _Slot(config) for name, config in servers.items()}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._starting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start every enabled server concurrently and wait until each is up or has
        failed; failures are recorded, not raised."""
        self.launch()
        await self.ready()

    def launch(self) -> None:
        """Start every enabled server without waiting: the caller goes on with its own
        start-up while they come up, then awaits `ready()`."""
        if self._starting is not None:
            return
        waits = []
        for name, config in self._configs.items():
            if not config.enabled:
                self._status[name].state = "disabled"
                continue
            ready = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._serve(name, ready)))
            waits.append(self._wait_ready(name, ready))
        self._starting = asyncio.create_task(_gather(waits))

    async def ready(self) -> None:
        """Wait until every launched server is up or has failed (or the toolbox closed)."""
        if self._starting is not None:
            await asyncio.wait((self._starting,))

    async def _wait_ready(self, name: str, ready: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(ready.wait(), self._startup_timeout)
        except TimeoutError:
            status = self._status[name]
            status.state, status.error = "down", f"did not start within {self._startup_timeout}s"
            log.error("MCP server %s %s", name, status.error)

    async def _serve(self, name: str, ready: asyncio.Event) -> None:
        """The server's task: open a session, keep it until stop, reopen it after a crash."""
        slot, status = self._slots[name], self._status[name]
        reconnect_until: float | None = None  # set while an HTTP server is being reconnected
        try:
            while not self._stop.is_set():
                lost = slot.lost = asyncio.Event()
                was_up, error = False, self._exit_reason(name)
                try:
                    async with open_session(
                        name, resolved(slot.config), lost, log_dir=self._log_dir
                    ) as session:
                        await self._load(name, session)
                        slot.generation, slot.revivals = slot.generation + 1, 0
                        was_up = True
                        ready.set()
                        await self._notify(slot)
                        await _wait_first(self._stop, lost)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    error = describe_error(exc)
                    if not was_up and slot.config.transport == "stdio" and connection_lost(exc):
                        error = self._exit_reason(name, starting=True)
                finally:
                    lost.set()  # calls still waiting on the dead session give up on it
                self._tools.pop(name, None)
                if self._stop.is_set():
                    status.state, status.error = "down", "stopped"
                    return
                if was_up and self._may_restart(slot):
                    status.state, status.restarts = "restarting", status.restarts + 1
                    status.error = f"crashed ({error}); restarting"
                    log.warning("MCP server %s crashed (%s): restarting it", name, error)
                    reconnect_until = time.monotonic() + self._startup_timeout
                    await self._notify(slot)
                    continue
                if (
                    not was_up
                    and reconnect_until is not None
                    and slot.config.transport != "stdio"
                    and time.monotonic() < reconnect_until
                ):
                    # A remote server may take a moment to come back: reconnect until then.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 0.5)
                    continue
                if was_up:
                    error = (
                        f"crashed {len(slot.crashes)} times in {self._restart_window:g}s, "
                        f"not restarted again (last: {error})"
                    )
                elif status.restarts:
                    error = f"crashed and failed to restart: {error}"
                status.state, status.error, status.tools = "down", error, []
                if self._revive_after is None:
                    log.error("MCP server %s is down: %s", name, error)
                    return
                # A long-running service must not stay blind: try again, less and less often.
                delay = min(self._revive_after * 2**slot.revivals, self._revive_max)
                slot.revivals += 1
                status.error = f"{error}; trying again in {delay:g}s"
                log.error("MCP server %s is down: %s", name, status.error)
                ready.set()
                await self._notify(slot)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                slot.crashes.clear()  # a revived server gets a fresh restart budget
                reconnect_until = None
        finally:
            ready.set()
            await self._notify(slot)

    def _exit_reason(self, name: str, *, starting: bool = False) -> str:
        """Why a session ended without an error of its own."""
        if self._configs[name].transport != "stdio":
            return "the connection was closed"
        where = " during start-up" if starting else ""
        logs = f" (its stderr is in {self._log_dir / f'mcp-{name}.log'})" if self._log_dir else ""
        return f"the server process exited{where}{logs}"

    async def _load(self, name: str, session: ClientSession) -> None:
        config, status = self._configs[name], self._status[name]
        loaded = await load_mcp_tools(session, server_name=name)
        reasons = {t.name: blocked_reason(t, config) for t in loaded}
        tools = [t for t in loaded if reasons[t.name] is None]
        blocked = {n: r for n, r in reasons.items() if r is not None}
        self._tools[name], self._blocked[name] = tools, blocked
        status.state, status.tools, status.error = "up", [t.name for t in tools], None
        status.blocked = blocked
        log.info("MCP server %s up with %d tools", name, len(tools))

    def _may_restart(self, slot: _Slot) -> bool:
        """One restart per crash, unless it crashed more than `restart_limit` times lately."""
        now = time.monotonic()
        slot.crashes.append(now)
        while slot.crashes and slot.crashes[0] < now - self._restart_window:
            slot.crashes.popleft()
        return len(slot.crashes) <= self._restart_limit

    @staticmethod
    async def _notify(slot: _Slot) -> None:
        async with slot.changed:
            slot.changed.notify_all()

    async def invoke(self, server: str, call: dict[str, Any], *, time_limit: float) -> ToolOutcome:
        """Run a tool call (`{"name", "args", "id"}`) through the server's session, each
        attempt within `time_limit` seconds. When the session died under the call (the server
        crashed), wait for the server's restart and retry the call once; raises
        ServerUnavailable when the server is (or stays) down, and the tool's own exceptions."""
        slot = self._slots.get(server)
        if slot is None:
            raise ServerUnavailable(server, "not configured")
        generation = slot.generation
        try:
            return ToolOutcome(await self._invoke_once(server, call, time_limit))
        except Exception as exc:
            if not connection_lost(exc):
                raise
            log.warning(
                "MCP server %s lost its session during %s (%s)",
                server,
                call["name"],
                describe_error(exc),
            )
        problem = await self._recovered(server, generation)
        if problem is not None:
            raise ServerUnavailable(server, problem)
        try:
            return ToolOutcome(await self._invoke_once(server, call, time_limit), restarted=True)
        except Exception as exc:
            if connection_lost(exc):
                reason = f"it crashed again when {call['name']} was retried after a restart"
                raise ServerUnavailable(server, reason) from exc
            raise

    async def _invoke_once(self, server: str, call: dict[str, Any], time_limit: float) -> Any:
        """One attempt, abandoned when the session it runs on dies (an HTTP transport that
        fails leaves its pending requests unanswered)."""
        tool = next((t for t in self._tools.get(server, []) if t.name == call["name"]), None)
        if tool is None:
            status = self._status[server]
            if status.state == "up":
                raise ServerUnavailable(server, f"it no longer offers {call['name']}")
            raise ServerUnavailable(server, status.error or status.state)
        lost = self._slots[server].lost  # the event of the session `tool` belongs to
        running = asyncio.ensure_future(ainvoke_tool(tool, call))
        watching = asyncio.ensure_future(lost.wait())
        try:
            async with asyncio.timeout(time_limit):
                await asyncio.wait((running, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not running.done():
                running.cancel()
                await asyncio.wait((running,))  # never raises the call's error; ours, yes
        if running.cancelled():
            raise SessionLost(f"the session of {server} ended during the call")
        return running.result()

    async def _recovered(self, server: str, generation: int) -> str | None:
        """Wait for the session after `generation`: None once it is up, else why not."""
        slot, status = self._slots[server], self._status[server]
        if slot.generation == generation and status.state == "up":
            slot.lost.set()  # tell the server's task, should it not have noticed yet
        limit = self._startup_timeout + 5  # the server's task reconnects HTTP for startup_timeout
        try:
            async with asyncio.timeout(limit), slot.changed:
                await slot.changed.wait_for(
                    lambda: (
                        status.state in ("down", "disabled")
                        or (slot.generation != generation and status.state == "up")
                    )
                )
        except TimeoutError:
            return f"crashed and did not restart within {limit:g}s"
        return None if status.state == "up" else (status.error or status.state)

    async def aclose(self) -> None:
        self._stop.set()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> Toolbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def status(self) -> dict[str, ServerStatus]:
        """A snapshot of every server's status."""
        return {
            name: replace(status, tools=list(status.tools), blocked=dict(status.blocked))
            for name, status in self._status.items()
        }

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
