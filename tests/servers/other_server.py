"""A second MCP server whose tools no Kubernetes agent may use."""

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

mcp = FastMCP("other")


@mcp.tool(annotations=ToolAnnotations(readOnlyHint=True))
def delete_everything(namespace: str) -> str:
    """A tool of another agent's server."""
    return f"deleted {namespace}"


if __name__ == "__main__":
    mcp.run("stdio")
