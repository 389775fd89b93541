"""Start-up: the MCP servers come up while the process does the rest of its start-up, and
the garbage collector stays out of the way while the program loads."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from graph.toolbox import Toolbox
from tests.conftest import ops_app_config

ROOT = Path(__file__).resolve().parents[1]


async def test_launched_servers_come_up_while_the_caller_works() -> None:
    toolbox = Toolbox(ops_app_config().mcp_servers)
    try:
        started = time.perf_counter()
        toolbox.launch()
        launched = time.perf_counter() - started
        assert toolbox.status()["ops"].state == "starting"
        await asyncio.sleep(0)  # the caller's own start-up would run here
        await toolbox.ready()
        status = toolbox.status()
        assert status["ops"].state == "up", status["ops"].error
        assert "get_namespace" in status["ops"].tools
        assert set(toolbox.tools_for(["ops", "other"])) >= {"get_namespace", "list_pods"}
        assert launched < 0.5  # launching spawns; it does not wait for the handshake
        toolbox.launch()  # once launched, launching again starts nothing more
        await toolbox.ready()
        assert toolbox.status()["ops"].restarts == 0
    finally:
        await toolbox.aclose()


async def test_a_toolbox_closed_before_its_servers_are_up_stops_them() -> None:
    toolbox = Toolbox(ops_app_config().mcp_servers)
    toolbox.launch()
    await asyncio.wait_for(toolbox.aclose(), 30)
    await asyncio.wait_for(toolbox.ready(), 5)  # returns at once: nothing is pending


def test_the_collector_pauses_while_loading_then_skips_what_was_loaded() -> None:
    """What `sre-agent` does: no collection while it loads; then what it loaded is frozen
    out of the collector's scans, and collection resumes (young collections less often)."""
    script = textwrap.dedent(
        """
        import gc
        from server import collector

        collector.settle()  # not paused: nothing to settle
        print(gc.get_freeze_count(), gc.get_threshold()[0])
        collector.pause()
        before = gc.get_count()[0]
        import langgraph.graph, langchain_core.messages  # the program loading
        print(gc.isenabled(), gc.get_count()[0] > before)
        collector.settle()
        print(gc.isenabled(), gc.get_freeze_count() > 50_000, gc.get_threshold()[0])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    not_paused, while_loading, once_loaded = out.stdout.splitlines()
    assert not_paused == "0 700"
    assert while_loading == "False True"  # allocations counted, none collected
    assert once_loaded == "True True 50000"
