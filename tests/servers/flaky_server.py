"""A stdio MCP server that fails on purpose, for the restart, crash-recovery and soak tests.
State lives in the folder named by FLAKY_STATE_DIR (set through the server's configured
`env`), so it survives the server's own restarts.

- `env_value(name)`: an environment variable as the server sees it (proves `env` reaches it).
- `crash_once()`: kills its own process on the first call ever; answers after a restart.
- `crash()`: kills its own process on every call.
- `pid()`: the process id (tells a restarted server from the first one).
- `probe(key, iteration, call, seconds)`: a read that takes `seconds` and logs its execution
  to FLAKY_CALL_LOG, one JSON line per event: `{"event": "start"|"done"|"failed", "key",
  "iteration", "call", "pid", "time"}` (`key` names the alert). A share FLAKY_FAILURE_RATE
  (0..1, seeded by FLAKY_SEED) of the calls fails with an error the model reads.

With `--die-after-first-start`, every start after the first exits at once, so a restart fails.
Each start appends its pid to `<FLAKY_STATE_DIR>/pids` (so a test can clean up after a kill).
"""

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

mcp = FastMCP("flaky")
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False)
STATE = Path(os.environ.get("FLAKY_STATE_DIR", "."))
CALL_LOG = os.environ.get("FLAKY_CALL_LOG")
FAILURE_RATE = float(os.environ.get("FLAKY_FAILURE_RATE") or 0)
_random = random.Random(f"{os.environ.get('FLAKY_SEED', '0')}-{os.getpid()}")


def _log_call(event: str, key: str, iteration: int, call: int) -> None:
    if not CALL_LOG:
        return
    line = json.dumps(
        {
            "event": event,
            "key": key,
            "iteration": iteration,
            "call": call,
            "pid": os.getpid(),
            "time": time.time(),
        }
    )
    # One write per line on an O_APPEND descriptor: lines never interleave, and a line
    # is on disk (page cache) once written, whatever happens to this process next.
    fd = os.open(CALL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@mcp.tool(annotations=READ_ONLY)
def env_value(name: str) -> str:
    """An environment variable of the server process ('<unset>' when it has none)."""
    return os.environ.get(name, "<unset>")


@mcp.tool(annotations=READ_ONLY)
def crash_once() -> str:
    """Crash the server on the first call; answer on later ones."""
    marker = STATE / "crashed"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return f"answered by pid {os.getpid()} after a restart"


@mcp.tool(annotations=READ_ONLY)
def crash() -> str:
    """Crash the server, every time."""
    os._exit(1)


@mcp.tool(annotations=READ_ONLY)
def pid() -> str:
    """The server's process id."""
    return str(os.getpid())


@mcp.tool(annotations=READ_ONLY)
async def probe(key: str, iteration: int, call: int, seconds: float = 0.0) -> str:
    """Check one thing about the alert named `key` (takes `seconds`); logged per call."""
    _log_call("start", key, iteration, call)
    if seconds > 0:
        await asyncio.sleep(min(seconds, 30.0))
    if FAILURE_RATE and _random.random() < FAILURE_RATE:
        _log_call("failed", key, iteration, call)
        raise RuntimeError(f"probe backend unavailable for {key} (injected failure)")
    _log_call("done", key, iteration, call)
    return json.dumps({"key": key, "iteration": iteration, "call": call, "healthy": False})


def main() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "pids").open("a") as pids:
        pids.write(f"{os.getpid()}\n")
    starts = STATE / "starts"
    count = int(starts.read_text()) + 1 if starts.exists() else 1
    starts.write_text(str(count))
    if "--die-after-first-start" in sys.argv and count > 1:
        print(f"start {count}: refusing to start again", file=sys.stderr)
        sys.exit(3)
    mcp.run("stdio")


if __name__ == "__main__":
    main()
