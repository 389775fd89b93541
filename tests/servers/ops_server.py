"""A small MCP server for the tests: cluster-ish read tools, a slow tool, a failing tool
and a large output. Run over stdio: `python tests/servers/ops_server.py`."""

import asyncio
import json
import sys

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

mcp = FastMCP("ops")
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False)


@mcp.tool(annotations=READ_ONLY)
def get_namespace(name: str) -> str:
    """Read a namespace object."""
    return json.dumps(
        {
            "name": name,
            "phase": "Terminating",
            "finalizers": ["billing.example.com/invoice-protection"],
        }
    )


@mcp.tool(annotations=READ_ONLY)
def list_pods(namespace: str) -> str:
    """List the pods of a namespace."""
    return json.dumps([{"name": "api-1", "namespace": namespace, "phase": "Running"}])


@mcp.tool(annotations=READ_ONLY)
async def slow(seconds: float, label: str = "") -> str:
    """Wait, then answer (for concurrency tests)."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}s {label}".strip()


@mcp.tool(annotations=READ_ONLY)
def broken() -> str:
    """Always fails."""
    raise RuntimeError("backend exploded")


@mcp.tool(annotations=READ_ONLY)
def big(size: int) -> str:
    """Return `size` bytes of text."""
    return "x" * size


@mcp.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def delete_namespace(name: str) -> str:
    """A destructive tool: the read-only policy must keep it from the model."""
    return f"deleted {name}"


@mcp.tool(annotations=READ_ONLY)
def show_secret(name: str) -> str:
    """A Secret object as YAML, with credentials in it (for masking tests)."""
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ndata:\n"
        "  password: c3VwZXJzZWNyZXQ=\nstringData:\n  token: plain-token-value\n"
        "---\nDATABASE_URL=postgres://app:hunter2@db:5432/app\n"
    )


@mcp.tool()
def unannotated(name: str) -> str:
    """No annotations: a read-only server must not offer it."""
    return name


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--crash-on-start":
        sys.exit(3)
    mcp.run("stdio")
