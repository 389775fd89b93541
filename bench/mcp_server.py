"""The benchmarks' fixture MCP server (stdio): read-only tools whose latency and output
size the caller fixes, so that measured differences are ours, not the server's.

Every tool sleeps `seconds` (asynchronously: concurrent calls overlap) and returns
`payload(target, size)`: deterministic, Kubernetes-looking text of exactly `size` bytes.
Run: `python bench/mcp_server.py`."""

from __future__ import annotations

import asyncio
import hashlib

TOOL_NAMES = ("get_object", "list_events", "read_logs", "query_metrics")


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


def main() -> None:
    from mcp.server.fastmcp import FastMCP
    from mcp.types import ToolAnnotations

    mcp = FastMCP("bench")
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False)

    def register(name: str) -> None:
        async def tool(target: str, seconds: float = 0.0, size: int = 1000) -> str:
            if seconds > 0:
                await asyncio.sleep(seconds)
            return payload(target, size)

        tool.__name__ = name
        tool.__doc__ = f"{name.replace('_', ' ').capitalize()} of a target (bench fixture)."
        mcp.tool(name=name, annotations=read_only)(tool)

    for name in TOOL_NAMES:
        register(name)
    mcp.run("stdio")


if __name__ == "__main__":
    main()
