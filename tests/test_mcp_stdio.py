"""The stdio transport: messages framed by lines however the pipe splits them, a line that
is not a message handed on as the error, and a server stopped with its children even when
it ignores its stdin closing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import StdioServerParameters, types
from mcp.shared.message import SessionMessage

from graph import mcp_stdio
from graph.mcp_stdio import ServerOutput, stdio_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX transport")


def response(n: int, text: str) -> bytes:
    message = {"jsonrpc": "2.0", "id": n, "result": {"text": text}}
    return json.dumps(message).encode() + b"\n"


async def read_all(output: ServerOutput) -> list[SessionMessage | Exception]:
    return [item async for item in output]


async def test_messages_are_framed_by_lines_however_the_pipe_splits_them():
    big = "y" * 100_000  # spans several reads
    data = response(1, "a") + response(2, big) + b"\n" + response(3, "c")
    for size in (13, 4096, 70_000, len(data)):
        reader, lost = asyncio.StreamReader(), asyncio.Event()

        async def feed(reader: asyncio.StreamReader = reader, size: int = size) -> None:
            for start in range(0, len(data), size):  # one piece per read
                reader.feed_data(data[start : start + size])
                await asyncio.sleep(0)
            reader.feed_eof()

        feeding = asyncio.create_task(feed())
        got = await read_all(ServerOutput(reader, lost))
        await feeding
        assert all(isinstance(m, SessionMessage) for m in got), size
        roots = [m.message.root for m in got if isinstance(m, SessionMessage)]
        assert [r.id for r in roots if isinstance(r, types.JSONRPCResponse)] == [1, 2, 3]
        assert roots[1].result == {"text": big}  # type: ignore[union-attr]
        assert lost.is_set(), "the end of the output says the server is gone"


async def test_a_line_that_is_not_a_message_reaches_the_session_as_the_error():
    reader = asyncio.StreamReader()
    reader.feed_data(b"starting up...\n" + response(1, "ok"))
    reader.feed_eof()
    first, second = await read_all(ServerOutput(reader, asyncio.Event()))
    assert isinstance(first, Exception)
    assert isinstance(second, SessionMessage)


async def test_a_server_that_ignores_its_stdin_closing_is_stopped_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(mcp_stdio, "PROCESS_TERMINATION_TIMEOUT", 0.3)
    pids = tmp_path / "pids"
    script = (
        "import os, signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(60)\n"
    )
    params = StdioServerParameters(command=sys.executable, args=["-c", script])
    lost = asyncio.Event()
    with (tmp_path / "err.log").open("w") as errlog:
        async with stdio_server(params, errlog, lost):
            for _ in range(100):
                if pids.exists() and pids.read_text():
                    break
                await asyncio.sleep(0.05)
    server, child = (int(pid) for pid in pids.read_text().split())
    assert lost.is_set()
    for pid in (server, child):
        for _ in range(50):  # the kill has landed once the process is reaped or a zombie
            if not _alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not _alive(pid), pid


async def test_writing_to_a_server_that_exited_says_the_connection_is_lost(tmp_path: Path):
    params = StdioServerParameters(command=sys.executable, args=["-c", "pass"])
    lost = asyncio.Event()
    with (tmp_path / "err.log").open("w") as errlog:
        async with stdio_server(params, errlog, lost) as (output, input_):
            assert await read_all(output) == []  # it exits at once: its output ends
            assert lost.is_set()
            ping = types.JSONRPCMessage(types.JSONRPCRequest(jsonrpc="2.0", id=1, method="ping"))
            with pytest.raises(anyio.BrokenResourceError):
                for _ in range(20):  # the pipe may take a write or two before it breaks
                    await input_.send(SessionMessage(ping))
                    await asyncio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"
