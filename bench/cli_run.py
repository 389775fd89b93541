"""Runs of the real CLI, shared by P10, P11 and P12: `sre-agent demo --plain` (the
stuck-namespace scenario: the bundled fixture cluster, the real kubernetes-mcp-server, the
scripted demo model) as a subprocess in an empty folder, its history in ./data there.

Measured per run, without touching the code under test:
- first model request: the `started_at` the graph records for the first model call
  (read back from the run's checkpoints) minus the wall clock just before the process
  was spawned; cross-checked by the arrival of the first `iteration N/M` output line
  (the event emitted just before that call), read unbuffered as the process prints it.
- peak memory: the CLI process's VmHWM from /proc, polled every 10 ms until it exits
  (its own peak: the MCP server and other children are separate processes), and the
  largest peak of it and its waited-for children from wait4(2).
- prompt characters: every message of every model call, from the session's timeline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, proc_status

_runs: list[CliRun] = []
_prefetch: asyncio.Task[CliRun] | None = None


@dataclass
class CliRun:
    returncode: int
    wall_s: float
    first_model_s: float | None
    first_iteration_line_s: float | None
    peak_rss: int  # VmHWM of the CLI process
    peak_rss_children: int  # ru_maxrss of wait4: the largest of it and its children
    cpu_s: float  # user + sys of the CLI process and its waited-for children
    model_calls: int = 0
    prompt_chars: int = 0
    prompt_chars_by_call: list[dict[str, Any]] = field(default_factory=list)
    session_id: str | None = None
    output_tail: str = ""


def _environment() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("LLM_", "SRE_AGENT", "OPENAI", "DEFAULT_LLM", "HISTORY_", "DEMO_MODEL", "MAX_")
        )
    }
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"})
    return env


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "sre-agent"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "server.cli"]


def _watch_memory(pid: int, box: dict[str, int], stop: threading.Event) -> None:
    while not stop.is_set():
        status = proc_status(pid)
        if "VmHWM" in status:
            box["hwm"] = max(box.get("hwm", 0), status["VmHWM"])
        time.sleep(0.01)


def _read_lines(stream: Any, lines: list[tuple[float, str]]) -> None:
    for raw in iter(stream.readline, b""):
        lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))


async def _prompt_chars(workdir: Path, session_id: str) -> list[dict[str, Any]]:
    from graph.checkpoints import open_checkpointer
    from server.history import build_timeline, load_checkpoints

    url = f"sqlite+aiosqlite:///{workdir / 'data' / 'sre-agent.db'}"
    async with open_checkpointer(url) as saver:
        timeline = build_timeline(await load_checkpoints(saver, session_id))
    return [
        {
            "step": e["step"],
            "iteration": e["iteration"],
            "timestamp": e["timestamp"],
            "chars": sum(len(m["content"]) for m in e["messages"]),
        }
        for e in timeline
        if e["type"] == "llm_interaction"
    ]


async def run_cli() -> CliRun:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        lines: list[tuple[float, str]] = []
        memory: dict[str, int] = {}
        stop = threading.Event()
        start = time.time()
        proc = subprocess.Popen(  # noqa: ASYNC220 - spawning does not block; wait4 runs in a thread
            [*cli_command(), "demo", "--plain"],
            cwd=workdir,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        watcher = threading.Thread(target=_watch_memory, args=(proc.pid, memory, stop))
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines))
        watcher.start()
        reader.start()
        # wait4 (not Popen.wait) to get the child's rusage: peak RSS and CPU time.
        _, status, usage = await asyncio.to_thread(os.wait4, proc.pid, 0)
        wall = time.time() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        watcher.join()
        reader.join()
        assert proc.stdout is not None
        proc.stdout.close()
        text = "\n".join(line for _, line in lines)
        first_line = next((t for t, line in lines if re.search(r"#1\] iteration 1/", line)), None)
        found = re.search(r"session id: (\S+)", text)
        run = CliRun(
            returncode=proc.returncode,
            wall_s=wall,
            first_model_s=None,
            first_iteration_line_s=(first_line - start) if first_line else None,
            peak_rss=memory.get("hwm", 0),
            peak_rss_children=usage.ru_maxrss * 1024,
            cpu_s=usage.ru_utime + usage.ru_stime,
            session_id=found.group(1) if found else None,
            output_tail=text[-2000:],
        )
        if proc.returncode != 0 or run.session_id is None:
            raise RuntimeError(f"sre-agent demo failed ({proc.returncode}):\n{run.output_tail}")
        calls = await _prompt_chars(workdir, run.session_id)
        run.prompt_chars_by_call = calls
        run.model_calls = len(calls)
        run.prompt_chars = sum(c["chars"] for c in calls)
        if calls:
            first = datetime.fromisoformat(calls[0]["timestamp"]).timestamp()
            run.first_model_s = first - start
        return run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def demo_available() -> str | None:
    """Why the demo cannot run here (None when it can)."""
    if not (ROOT / "node_modules" / ".bin" / "kubernetes-mcp-server").exists():
        return "kubernetes-mcp-server is not installed (npm ci)"
    if not shutil.which("node"):
        return "node is not installed"
    return None


def prefetch() -> None:
    """Start the first run in the background (smoke mode: it overlaps other benchmarks)."""
    global _prefetch
    if _prefetch is None and not _runs:
        _prefetch = asyncio.create_task(run_cli())


async def cli_runs(count: int) -> list[CliRun]:
    """At least `count` runs, shared across the benchmarks of one suite run."""
    global _prefetch
    if _prefetch is not None:
        task, _prefetch = _prefetch, None
        _runs.append(await task)
    while len(_runs) < count:
        _runs.append(await run_cli())
    return _runs[:count]


async def clear_runs() -> None:
    global _prefetch
    if _prefetch is not None:
        task, _prefetch = _prefetch, None
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    _runs.clear()
