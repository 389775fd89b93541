"""A small MCP server for the tests: cluster-ish read tools, a slow tool, a failing tool
and a large output. Run over stdio: `python tests/servers/ops_server.py`."""

import asyncio
import json
import sys

from mcp.server.fastmcp import FastMCP

mcp = FastMCP("ops")


@mcp.tool()
def get_namespace(name: str) -> str:
    """Read a namespace object."""
    return json.dumps(
        {
            "name": name,
            "phase": "Terminating",
            "finalizers": ["billing.example.com/invoice-protection"],
        }
    )


@mcp.tool()
def list_pods(namespace: str) -> str:
    """List the pods of a namespace."""
    return json.dumps([{"name": "api-1", "namespace": namespace, "phase": "Running"}])


@mcp.tool()
async def slow(seconds: float, label: str = "") -> str:
    """Wait, then answer (for concurrency tests)."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}s {label}".strip()


@mcp.tool()
def broken() -> str:
    """Always fails."""
    raise RuntimeError("backend exploded")


@mcp.tool()
def big(size: int) -> str:
    """Return `size` bytes of text."""
    return "x" * size


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--crash-on-start":
        sys.exit(3)
    mcp.run("stdio")
