"""Start-up: the MCP servers come up while the process does the rest of its start-up, and
the garbage collector stays out of the way while the program loads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_collector_pauses_while_loading_then_skips_what_was_loaded() -> None:
    """What `sre-agent` does: no collection while it loads; then what it loaded is frozen
    out of the collector's scans, and collection resumes (young collections less often)."""
    script = textwrap.dedent(
        """
        import gc
        from server import collector

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
    while_loading, once_loaded = out.stdout.splitlines()
    assert while_loading == "False True"  # allocations counted, none collected
    assert once_loaded == "True True 10000"
