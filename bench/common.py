"""Shared pieces of the benchmarks: the scripted conversation (a plan carried in the alert,
read back by a stateless responder), the agent configuration over the fixture MCP server,
statistics, machine facts and process memory."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RUNBOOKS_DIR = ROOT / "examples" / "runbooks"
RUNBOOK = "namespace-terminating.md"
SERVER_SCRIPT = BENCH / "mcp_server.py"
ALERT_TYPE = "NamespaceTerminating"
AGENT = "kubernetes"
SERVER = "bench"
MAX_ITERATIONS = 25


# --- the scripted conversation ---------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the scripted model does for one alert: `iterations` rounds of `tools` tool
    calls (each taking `latency` s and returning `sizes[j]` bytes), a running analysis of
    about `notes_chars` characters, then the final analysis."""

    iterations: int = 3
    tools: int = 2
    latency: float = 0.0
    sizes: tuple[int, ...] = (4000, 20000)
    notes_chars: int = 1200

    def encode(self) -> str:
        sizes = ",".join(str(s) for s in self.sizes)
        return (
            f"iterations={self.iterations} tools={self.tools} latency={self.latency:g} "
            f"sizes={sizes} notes={self.notes_chars}"
        )

    @classmethod
    def decode(cls, text: str) -> Plan:
        fields_ = dict(item.split("=", 1) for item in text.split())
        return cls(
            iterations=int(fields_["iterations"]),
            tools=int(fields_["tools"]),
            latency=float(fields_["latency"]),
            sizes=tuple(int(s) for s in fields_["sizes"].split(",")),
            notes_chars=int(fields_["notes"]),
        )

    def tool_calls(self, iteration: int) -> list[tuple[str, dict[str, Any]]]:
        from bench.mcp_server import TOOL_NAMES

        return [
            (
                TOOL_NAMES[j % len(TOOL_NAMES)],
                {
                    "target": f"obj-{iteration}-{j + 1}",
                    "seconds": self.latency,
                    "size": self.sizes[j % len(self.sizes)],
                },
            )
            for j in range(self.tools)
        ]


def bench_alert(plan: Plan, *, message: str | None = None) -> dict[str, Any]:
    """A NamespaceTerminating alert carrying the plan (an extra field: it reaches the model)."""
    return {
        "alert_type": ALERT_TYPE,
        "severity": "warning",
        "environment": "production",
        "cluster": "https://api.prod.example.com",
        "namespace": "billing",
        "message": message or "Namespace billing has been in Terminating state for 30 minutes",
        "runbook": RUNBOOK,
        "bench_plan": plan.encode(),
    }


# literal prefixes: re finds them by a fast string search, not by trying every position
_PLAN = re.compile(r"bench_plan: ([^\n]+)")
_ITERATION = re.compile(r"teration (\d+) of at most")


def notes_text(iteration: int, chars: int) -> str:
    """The running analysis the scripted model writes: about `chars` characters."""
    lines, total, n = [], 0, 0
    while total < chars:
        n += 1
        line = (
            f"- [T{iteration}.{n % 2 + 1}] observation {n}: object obj-{iteration}-{n} "
            f"reports phase Running with {n % 5} restarts; nothing abnormal there."
        )
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:chars]


def responder(request: Any) -> Any:
    """The scripted model: stateless, everything comes from the prompt (so one instance
    serves any number of concurrent investigations)."""
    from langchain_core.messages import AIMessage

    from graph.scripted_model import structured, tool_call

    text = request.text
    found = _PLAN.search(text)
    plan = Plan.decode(found.group(1)) if found else Plan()
    match = _ITERATION.search(text)
    iteration = int(match.group(1)) if match else plan.iterations
    if request.structured_output == "PartialAnalysis":
        return structured(
            "PartialAnalysis",
            analysis=notes_text(iteration, plan.notes_chars),
            conclude=iteration >= plan.iterations,
        )
    if request.structured_output == "RootCauseAnalysis":
        return structured(
            "RootCauseAnalysis",
            summary="Namespace billing is stuck: a finalizer is never removed.",
            root_cause="The controller that removes the finalizer is scaled to zero.",
            evidence=[{"finding": "finalizer pending", "tool_call": "T1.1"}],
            remediation=["Scale the controller back up."],
            confidence="high",
        )
    if iteration > plan.iterations:
        return AIMessage(content="The evidence is enough to conclude.")
    return AIMessage(
        content="",
        tool_calls=[tool_call(name, **args) for name, args in plan.tool_calls(iteration)],
    )


def scripted_model(latency: float = 0.0, *, record: bool = False) -> Any:
    from graph.scripted_model import ScriptedChatModel

    return ScriptedChatModel(
        responder=responder, latency=latency, model_name="bench", record=record
    )


def app_config(*, server_env: dict[str, str] | None = None) -> Any:
    """The Kubernetes agent (real instructions) over the fixture MCP server."""
    from graph.config import (
        KUBERNETES_AGENT_INSTRUCTIONS,
        KUBERNETES_SERVER_INSTRUCTIONS,
        AppConfig,
    )

    return AppConfig.model_validate(
        {
            "mcpServers": {
                SERVER: {
                    "command": sys.executable,
                    "args": [str(SERVER_SCRIPT)],
                    "env": {"PYTHONPATH": str(ROOT), **(server_env or {})},
                    "instructions": KUBERNETES_SERVER_INSTRUCTIONS,
                }
            },
            "agents": {
                AGENT: {
                    "mcp_servers": [SERVER],
                    "alert_types": [ALERT_TYPE],
                    "instructions": KUBERNETES_AGENT_INSTRUCTIONS,
                    "max_iterations": MAX_ITERATIONS,
                }
            },
        }
    )


def registry() -> Any:
    from graph.registry import AgentRegistry

    return AgentRegistry(app_config())


def settings(db_path: Path | None, **overrides: Any) -> Any:
    """Service settings for the benchmarks (no .env, explicit database, bench runbooks)."""
    from graph.settings import Settings

    values: dict[str, Any] = {
        "history_database_url": f"sqlite+aiosqlite:///{db_path}" if db_path else "sqlite://",
        "history_enabled": db_path is not None,
        "runbooks_dir": RUNBOOKS_DIR,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# --- experiments -----------------------------------------------------------------------

PATCHES_ENV = "BENCH_PATCHES"


def apply_patches() -> list[str]:
    """Run the experiment files named in $BENCH_PATCHES (`python -m bench.run --patch`)."""
    import runpy

    paths = [p for p in os.environ.get(PATCHES_ENV, "").split(os.pathsep) if p]
    for path in paths:
        runpy.run_path(path, run_name="bench_patch")
    return paths


# --- statistics ------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, r²)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def growth(xs: Sequence[int], ys: Sequence[float]) -> float:
    """Marginal cost per unit at the top of the range over that at the bottom: ~1 for
    linear growth, ≫1 for quadratic."""
    first = (ys[1] - ys[0]) / (xs[1] - xs[0])
    last = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return last / first if first else float("inf")


# --- results ---------------------------------------------------------------------------


@dataclass
class Result:
    """One benchmark's outcome: a headline value against its target, and the details."""

    id: str
    title: str
    value: float | None
    unit: str
    target: str
    passed: bool | None  # None: report only
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "passed": self.passed,
            "summary": self.summary,
            "details": self.details,
            "seconds": round(self.seconds, 2),
            "error": self.error,
        }


def machine(*, reference: bool = True) -> dict[str, Any]:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    import langgraph.version

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "langgraph": getattr(langgraph.version, "__version__", "?"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "reference_loop_s": reference_loop() if reference else None,
    }


def reference_loop(n: int = 5_000_000) -> float:
    """Seconds for a fixed pure-Python loop (best of 3): how fast this machine was during
    the run. Shared machines vary from day to day; absolute figures of two runs compare
    only as their reference loops do."""
    best = float("inf")
    for _ in range(3):
        start, total = time.perf_counter(), 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


# --- processes -------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (bytes) of a process from /proc (empty when it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024
    return out


MIB = 1024 * 1024


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as t: ...` then t[0] is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)
