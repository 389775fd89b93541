"""An MCP server over streamable HTTP for the transport tests. It echoes back a request
header it received (to prove configured `headers` reach an HTTP server) and answers a metric
query. Run: `python tests/servers/http_server.py [PORT]` - it binds the loopback port given
(a free one by default), prints `PORT <n>` on stdout, then serves `http://127.0.0.1:<n>/mcp`
until killed."""

import json
import socket
import sys

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

mcp = FastMCP("http", host="127.0.0.1")
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False)


@mcp.tool(annotations=READ_ONLY)
def request_header(name: str, ctx: Context) -> str:
    """The value of an HTTP header of the request that carried this call."""
    request = ctx.request_context.request
    if request is None:
        return "<not over HTTP>"
    return request.headers.get(name, "<missing>")


@mcp.tool(annotations=READ_ONLY)
def error_rate(service: str) -> str:
    """The 5xx ratio of a service over the last five minutes."""
    return json.dumps({"service": service, "error_rate": 0.27, "window": "5m"})


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(mcp.streamable_http_app(), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
