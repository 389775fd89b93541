"""The stdio transport of an MCP session: the server as a child process, one JSON-RPC
message per line on its stdin and its stdout.

The MCP SDK's `stdio_client` runs two tasks per server, one writing and one reading, and
hands each message between them and the session through an anyio memory stream: a
request went to the writer task, a response from the reader task to the session's receive
loop, each one more task switch and stream hand-off with anyio's cancellation checkpoints.
Here the session writes a request to the pipe itself, and its receive loop reads and
parses the server's output itself. The process is started and stopped as the
SDK does it (its own session and process group, the SDK's default environment, stdin
closed first, then the whole group terminated after a grace period), and a message the
session cannot parse reaches it as the SDK passes it on: as the exception."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator
from typing import TextIO, cast

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp import StdioServerParameters, types
from mcp.client.stdio import PROCESS_TERMINATION_TIMEOUT, get_default_environment, stdio_client
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
"""Bytes read from the server's stdout at a time (a message may span several reads)."""

Incoming = SessionMessage | Exception


class ServerOutput:
    """The server's stdout as the session reads it: one parsed message per line. `lost`
    is set when it ends (the server exited) or the session lets go of it."""

    def __init__(self, stdout: asyncio.StreamReader, lost: asyncio.Event) -> None:
        self._stdout, self._lost = stdout, lost
        self._partial = bytearray()  # the start of a line whose end has not come yet
        self._lines: deque[bytes] = deque()

    async def __aenter__(self) -> ServerOutput:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._lost.set()

    def __aiter__(self) -> ServerOutput:
        return self

    async def __anext__(self) -> Incoming:
        while not self._lines:
            chunk = await self._stdout.read(_CHUNK)
            if not chunk:
                self._lost.set()
                raise StopAsyncIteration
            self._take(chunk)
        line = self._lines.popleft()
        try:
            return SessionMessage(types.JSONRPCMessage.model_validate_json(line))
        except Exception as exc:
            log.warning("MCP server sent a line that is not a JSON-RPC message: %s", exc)
            return exc

    def _take(self, chunk: bytes) -> None:
        end = chunk.rfind(b"\n")
        if end < 0:
            self._partial += chunk
            return
        lines = (bytes(self._partial) + chunk[:end]).split(b"\n")
        self._partial = bytearray(chunk[end + 1 :])
        self._lines.extend(line for line in lines if line.strip())


class ServerInput:
    """The server's stdin as the session writes to it: each message written at once."""

    def __init__(self, stdin: asyncio.StreamWriter) -> None:
        self._stdin = stdin

    async def __aenter__(self) -> ServerInput:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: SessionMessage) -> None:
        data = message.message.model_dump_json(by_alias=True, exclude_none=True)
        try:
            self._stdin.write(data.encode() + b"\n")
            await self._stdin.drain()
        except (ConnectionError, RuntimeError) as exc:  # the server exited: as the SDK says it
            raise anyio.BrokenResourceError(f"the MCP server's stdin is closed: {exc}") from exc

    async def aclose(self) -> None:
        return None


@contextlib.asynccontextmanager
async def stdio_server(
    params: StdioServerParameters, errlog: TextIO, lost: asyncio.Event
) -> AsyncIterator[tuple[ServerOutput, ServerInput]]:
    """Start the server `params` describe (stderr to `errlog`); yield (its output, its
    input) for a `ClientSession`; stop it on exit. On Windows, where the SDK puts the
    server in a job object to stop its children with it, the SDK's own transport."""
    if sys.platform == "win32":
        async with stdio_client(params, errlog=errlog) as (read, write):
            yield cast(ServerOutput, _Watched(read, lost)), cast(ServerInput, write)
        return
    env = get_default_environment()
    if params.env is not None:
        env.update(params.env)
    process = await asyncio.create_subprocess_exec(
        params.command,
        *params.args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=errlog,
        env=env,
        cwd=params.cwd,
        start_new_session=True,  # a process group of its own: stopped as a whole
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        yield ServerOutput(process.stdout, lost), ServerInput(process.stdin)
    finally:
        lost.set()
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Close the server's stdin (it should exit); after the grace period, terminate its
    process group."""
    if process.stdin is not None:
        process.stdin.close()
        with contextlib.suppress(Exception):
            await process.stdin.wait_closed()
    try:
        with anyio.fail_after(PROCESS_TERMINATION_TIMEOUT):
            await process.wait()
    except TimeoutError:
        await terminate_posix_process_tree(process)  # type: ignore[arg-type]
    except ProcessLookupError:
        pass


class _Watched:
    """The SDK transport's output as the session reads it, setting `lost` as
    `ServerOutput` does."""

    def __init__(self, stream: MemoryObjectReceiveStream[Incoming], lost: asyncio.Event) -> None:
        self._stream, self._lost = stream, lost

    async def __aenter__(self) -> _Watched:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._lost.set()
        await self._stream.aclose()

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> Incoming:
        try:
            return await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._lost.set()
            raise StopAsyncIteration from None
