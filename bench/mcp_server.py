"""The benchmarks' fixture MCP server (stdio): read-only tools whose latency and output
size the caller fixes, so that measured differences are ours, not the server's.

Every tool sleeps `seconds` (asynchronously: concurrent calls overlap) and returns
`payload(target, size)`: deterministic, Kubernetes-looking text of exactly `size` bytes.

It speaks the protocol itself (newline-delimited JSON-RPC on stdin/stdout) rather than
through the MCP SDK's server: on a machine of 2 cores the fixture shares the cores with the
service it serves, and the SDK's server spent about 2.5 ms of CPU per call (15 ms per
benchmark alert) that showed up as the service's slowness. Its tool listing and tool
results are the ones the SDK's FastMCP server sends for the same tools, field for field
(input and output schemas, annotations, `structuredContent`), so the client side does the
same work per call; its `initialize` answer names the tools capability only.
Run: `python bench/mcp_server.py`."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import sys
from typing import Any

TOOL_NAMES = ("get_object", "list_events", "read_logs", "query_metrics")
SUPPORTED_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


@functools.lru_cache(maxsize=1024)
def payload(target: str, size: int) -> str:
    """`size` bytes of deterministic Kubernetes-looking YAML about `target` (ASCII, so
    characters are bytes). About as compressible as real API output (zlib ~3.5×; the demo
    cluster's objects: ~3×)."""
    if size <= 0:
        return ""
    lines = []
    total = 0
    n = 0
    while total < size:
        d = hashlib.sha256(f"{target}/{n}".encode()).hexdigest()
        line = (
            f"- name: {target}-{n:05d}\n"
            f"  uid: {d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}\n"
            f"  node: node-{d[32:36]}\n  phase: Running\n  restarts: {n % 7}\n"
            f"  image: registry.example.com/app:{d[36:43]}\n"
        )
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)[:size]


def tool_schema(name: str) -> dict[str, Any]:
    """The tool as FastMCP lists `async def tool(target: str, seconds: float = 0.0,
    size: int = 1000) -> str` with read-only annotations."""
    return {
        "name": name,
        "description": f"{name.replace('_', ' ').capitalize()} of a target (bench fixture).",
        "inputSchema": {
            "properties": {
                "target": {"title": "Target", "type": "string"},
                "seconds": {"default": 0.0, "title": "Seconds", "type": "number"},
                "size": {"default": 1000, "title": "Size", "type": "integer"},
            },
            "required": ["target"],
            "title": f"{name}Arguments",
            "type": "object",
        },
        "outputSchema": {
            "properties": {"result": {"title": "Result", "type": "string"}},
            "required": ["result"],
            "title": f"{name}Output",
            "type": "object",
        },
        "annotations": {"readOnlyHint": True, "destructiveHint": False},
    }


def tool_result(text: str, *, error: bool = False) -> dict[str, Any]:
    content = [{"type": "text", "text": text}]
    if error:
        return {"content": content, "isError": True}
    return {"content": content, "structuredContent": {"result": text}, "isError": False}


async def call_tool(params: dict[str, Any]) -> dict[str, Any]:
    name, arguments = params.get("name"), params.get("arguments") or {}
    if name not in TOOL_NAMES:
        return tool_result(f"Unknown tool: {name}", error=True)
    target, seconds = arguments.get("target"), arguments.get("seconds", 0.0)
    size = arguments.get("size", 1000)
    valid = isinstance(target, str) and isinstance(seconds, int | float) and isinstance(size, int)
    if not valid:
        return tool_result(f"Error executing tool {name}: invalid arguments", error=True)
    if seconds > 0:
        await asyncio.sleep(seconds)
    return tool_result(payload(target, size))


class Server:
    """One stdio session: requests are answered concurrently, in any order."""

    def __init__(self, out: asyncio.StreamWriter) -> None:
        self.out = out
        self.tasks: set[asyncio.Task[None]] = set()

    def send(self, message: dict[str, Any]) -> None:
        self.out.write((json.dumps(message, separators=(",", ":")) + "\n").encode())

    def handle(self, message: dict[str, Any]) -> None:
        method, ident = message.get("method"), message.get("id")
        if ident is None:  # a notification (initialized, cancelled): nothing to answer
            return
        params = message.get("params") or {}
        if method == "tools/call":
            task = asyncio.get_running_loop().create_task(self.answer_call(ident, params))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        if method == "initialize":
            asked = params.get("protocolVersion")
            result: dict[str, Any] = {
                "protocolVersion": asked if asked in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "bench", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": [tool_schema(name) for name in TOOL_NAMES]}
        elif method == "ping":
            result = {}
        else:
            self.send(
                {
                    "jsonrpc": "2.0",
                    "id": ident,
                    "error": {"code": -32601, "message": f"Method not found: {method}"},
                }
            )
            return
        self.send({"jsonrpc": "2.0", "id": ident, "result": result})

    async def answer_call(self, ident: Any, params: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": ident, "result": await call_tool(params)})


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    server = Server(asyncio.StreamWriter(transport, protocol, reader, loop))
    while line := await reader.readline():
        if line.strip():
            server.handle(json.loads(line))


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
