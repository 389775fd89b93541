"""The garbage collector of a `sre-agent` process.

Loading LangGraph, LangChain, the MCP SDK and SQLAlchemy creates a few hundred thousand
objects that live as long as the process. With the collector's defaults, Python scans them
again and again while they load (about a tenth of the time to the first model request) and
in every full collection afterwards (about a tenth of the service's CPU under a burst of
alerts). So a command pauses the collector while it loads, then freezes what it loaded out
of the collector's scans and makes young collections rarer. Reference counting frees
everything else as usual; cycles are still collected."""

from __future__ import annotations

import gc

# Allocations between young-generation collections (Python's default is 700). Each young
# collection scans what the running investigations allocated since the last one, mostly
# still alive: the total scanned hardly depends on how often, the overhead per collection
# does. Over 3 single alerts and 2 bursts of 200 on 2 workers, a worker spent 0.16 s in
# 30 young and 2 middle collections at 10,000, and 0.04 s in 4 young ones at 50,000 (about
# 12 ms each), with the same peak memory.
YOUNG_THRESHOLD = 50_000


def pause() -> None:
    """Call as the process starts: no collection while the program loads."""
    gc.disable()


def settle() -> None:
    """Call once the program has loaded, before it starts its work. Does nothing unless
    `pause()` paused the collector (a command run in another program's process, as tests
    do, leaves that process's collector alone)."""
    if gc.isenabled():
        return
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    gc.enable()
