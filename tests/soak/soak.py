"""Fault-injection soak: N alerts through a real `sre-agent serve` while things break.

    .venv/bin/python -m tests.soak.soak                 # 200 alerts (what CI runs)
    .venv/bin/python -m tests.soak.soak --alerts 1000   # `make soak`

Everything is local (127.0.0.1) and bounded in count and time:

- the model is the fake OpenAI-compatible server (tests/fakes/chat_completions.py) with
  the scripted investigator of tests/soak/harness.py; a share of its answers are 429 (with
  Retry-After) or 500, so model calls go through the provider client's retries
  (LLM_MAX_RETRIES) and the graph's node retries, and a few sessions fail for good;
- the MCP server is tests/servers/flaky_server.py, failing a share of its tool calls (an
  error result the model reads);
- the service is SIGKILLed (with its MCP servers) `--kills` times, when that share of the
  alerts has finished, and started again on the same database at once.

A client submits the alerts with an Idempotency-Key each (a POST cut off by a kill is
sent again after the restart, so it cannot create a second session), keeping at most
`--window` of them unfinished, and then waits until every session is completed or failed.
The report counts completed, failed (each with its error message), lost (an alert without
a session, or whose session is not completed/failed by the deadline: must be 0), sessions
left queued/processing, duplicate sessions, and the time taken. Exit status 1 when any
alert is lost or stuck, or a failed session has no error message."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.chat_completions import FakeChatCompletions
from tests.soak.harness import (
    TERMINAL,
    CallKey,
    Client,
    Script,
    ServiceProcess,
    alert,
    checkpointed_calls,
    executions,
    quiet_disconnects,
    read_call_log,
    write_config,
)

BURST = 8
"""POSTs sent just before each kill (some are cut off and must be sent again)."""


@dataclass
class SoakConfig:
    alerts: int = 200
    kills: int = 2
    """SIGKILLs of the service, spread evenly over the run (by finished alerts)."""
    llm_429_share: float = 0.15
    llm_500_share: float = 0.15
    mcp_failure_rate: float = 0.1
    llm_latency: float = 0.02
    """Seconds the fake model takes per answer."""
    tool_seconds: float = 0.02
    """Seconds each MCP tool call takes."""
    llm_max_retries: int = 1
    max_concurrent: int = 16
    window: int = 50
    """At most this many submitted alerts unfinished at once (the client's backpressure)."""
    time_limit: float = 600.0
    """Seconds for the whole run; whatever is unfinished then is reported lost."""
    seed: int = 1
    database_url: str | None = None
    """HISTORY_DATABASE_URL (default: SQLite in the workdir; a PostgreSQL URL works too)."""
    log_level: str = "WARNING"
    """The service's LOG_LEVEL (its logs are in the workdir: service-<start>.log)."""
    workdir: Path | None = None
    """Kept when given (service logs, database, MCP call log); a temporary folder otherwise."""


@dataclass
class Report:
    alerts: int
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    stuck: int = 0
    """Sessions still queued/processing in the index at the end."""
    failed_without_reason: int = 0
    queue_at_end: dict[str, int] = field(default_factory=dict)
    """The service's queue (/health) at the end: nothing may run or wait."""
    duplicates: int = 0
    """Sessions in the index beyond one per alert."""
    kills: list[dict[str, Any]] = field(default_factory=list)
    """Per kill: when, how many alerts had finished, how long the restart took."""
    failure_reasons: dict[str, int] = field(default_factory=dict)
    llm_requests: int = 0
    llm_injected_failures: int = 0
    tool_calls_started: int = 0
    tool_calls_failed: int = 0
    tool_calls_repeated: int = 0
    """Tool call executions beyond the first (the nodes a kill interrupted ran again)."""
    finished_calls_repeated: int = 0
    """Tool calls whose result was in a checkpoint at a kill and that ran again: must be 0."""
    submit_retries: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    """Alerts the service refused (not 202/200, not 429), with its answer."""
    duration: float = 0.0
    ok: bool = False

    def text(self) -> str:
        lines = [
            f"soak: {self.alerts} alerts in {self.duration:.1f}s, {len(self.kills)} SIGKILLs",
            f"  completed {self.completed}  failed {self.failed}  lost {self.lost}  "
            f"stuck {self.stuck}  duplicates {self.duplicates}",
            f"  queue at the end: {self.queue_at_end.get('running')} running, "
            f"{self.queue_at_end.get('queued')} queued",
        ]
        for n, kill in enumerate(self.kills, 1):
            lines.append(
                f"  kill {n}: at {kill['at']:.1f}s with {kill['finished']} finished, "
                f"{kill['unfinished']} unfinished; restarted in {kill['restart_seconds']:.1f}s"
            )
        lines.append(
            f"  model: {self.llm_requests} requests, {self.llm_injected_failures} injected "
            f"429/500; MCP: {self.tool_calls_started} tool calls, {self.tool_calls_failed} "
            f"injected failures, {self.tool_calls_repeated} run again after a kill "
            f"(checkpointed ones among them: {self.finished_calls_repeated})"
        )
        lines.append(f"  submit retries (POSTs cut off or refused): {self.submit_retries}")
        for key, answer in list(self.rejected.items())[:5]:
            lines.append(f"  rejected {key}: {answer}")
        for reason, count in sorted(self.failure_reasons.items(), key=lambda kv: -kv[1])[:5]:
            lines.append(f"  failed x{count}: {reason}")
        if self.failed_without_reason:
            lines.append(f"  failed without an error message: {self.failed_without_reason}")
        lines.append("  OK" if self.ok else "  NOT OK")
        return "\n".join(lines)


class _Run:
    def __init__(self, config: SoakConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.call_log = workdir / "mcp-calls.jsonl"
        self.keys = [f"soak-{n:05d}" for n in range(config.alerts)]
        self.todo = deque(self.keys)  # not submitted yet
        self.posts: set[asyncio.Task[None]] = set()
        self.accepted: dict[str, str] = {}  # key → session id
        self.terminal = 0  # finished sessions, as the index last said
        self.submit_retries = 0
        self.rejected: dict[str, str] = {}  # key → the service's answer
        self.kills: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.deadline = self.started + config.time_limit
        self.service: ServiceProcess | None = None
        self.up = asyncio.Event()  # set while the service is running
        self.http = httpx.AsyncClient(timeout=30)
        self.database_url = config.database_url or f"sqlite+aiosqlite:///{workdir / 'history.db'}"
        self.snapshots: list[tuple[set[CallKey], Counter[CallKey]]] = []

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def post_next(self) -> None:
        """Submit the next alert in the background."""
        task = asyncio.create_task(self._post(self.todo.popleft()))
        self.posts.add(task)
        task.add_done_callback(self.posts.discard)

    async def _post(self, key: str) -> None:
        """Submit one alert until a 202 says which session it has (or time runs out); the
        same Idempotency-Key each time, so a POST cut off by a kill is safe to repeat."""
        while self.left() > 0:
            try:
                await asyncio.wait_for(self.up.wait(), timeout=self.left())
            except TimeoutError:
                return
            assert self.service is not None
            try:
                response = await self.http.post(
                    f"{self.service.url}/alerts", json=alert(key), headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:  # the service died under the request
                self.submit_retries += 1
                await asyncio.sleep(0.1)
                continue
            if response.status_code == 429:  # queue full: as the service asks
                self.submit_retries += 1
                await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 5))
                continue
            if response.is_success:
                self.accepted[key] = response.json()["session_id"]
            else:  # refused for good: counted as lost, with the answer
                self.rejected[key] = f"{response.status_code} {response.text[:200]}"
            return

    async def submit_all(self) -> None:
        """Keep at most `window` alerts submitted and unfinished, 8 POSTs at a time."""
        while self.todo and self.left() > 0:
            busy = len(self.accepted) + len(self.posts) - self.terminal
            if busy < self.config.window and len(self.posts) < 8:
                self.post_next()
            else:
                await asyncio.sleep(0.02)
        while self.posts and self.left() > 0:
            await asyncio.wait(set(self.posts), timeout=self.left())

    async def watch(self, client: Client) -> None:
        """Follow the finished count; kill and restart the service at the kill points."""
        n, kills = self.config.alerts, self.config.kills
        points = [round(n * (k + 1) / (kills + 1)) for k in range(kills)]
        while self.left() > 0:
            try:
                counts = await client.counts()
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
                continue
            self.terminal = sum(counts.get(s, 0) for s in TERMINAL)
            if points and self.terminal >= points[0]:
                points.pop(0)
                await self.kill_and_restart()
            elif self.terminal >= n and len(self.accepted) >= n:
                return
            await asyncio.sleep(0.1)

    async def kill_and_restart(self) -> None:
        """SIGKILL while a burst of POSTs is on the wire, then start again at once."""
        assert self.service is not None
        at = time.monotonic() - self.started
        for _ in range(min(BURST, len(self.todo))):
            self.post_next()
        await asyncio.sleep(0.005)
        self.up.clear()
        await self.service.kill()
        # What had finished at the kill: tool calls with a checkpointed result, and how
        # often each call had run (checked against the final log at the end).
        finished = await checkpointed_calls(self.database_url)
        self.snapshots.append(
            (
                {call for calls in finished.values() for call in calls},
                executions(read_call_log(self.call_log)),
            )
        )
        restarting = time.monotonic()
        await self.service.start()
        self.up.set()
        self.kills.append(
            {
                "at": at,
                "finished": self.terminal,
                "unfinished": len(self.accepted) - self.terminal,
                "restart_seconds": time.monotonic() - restarting,
            }
        )


async def run_soak(config: SoakConfig) -> Report:
    """Run the soak; always stops every process it started."""
    own_dir = config.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="sre-agent-soak-")) if own_dir else config.workdir
    assert workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return await _run_soak(config, workdir)
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)


async def _run_soak(config: SoakConfig, workdir: Path) -> Report:
    run = _Run(config, workdir)
    report = Report(alerts=config.alerts)
    script = Script(calls=(2, 1), tool_seconds=config.tool_seconds)
    fake = FakeChatCompletions(script, latency=config.llm_latency, record=False)
    if config.llm_429_share:
        fake.fail(429, share=config.llm_429_share, retry_after=0.1, seed=config.seed)
    if config.llm_500_share:
        fake.fail(
            500,
            share=config.llm_500_share,
            message="the model backend is overloaded (injected)",
            seed=config.seed + 1,
        )
    config_file = write_config(
        workdir,
        call_log=run.call_log,
        failure_rate=config.mcp_failure_rate,
        seed=config.seed,
    )
    with fake:
        quiet_disconnects(fake)
        env = {
            "LLM_MODEL": "openai:fake",
            "LLM_BASE_URL": fake.base_url,
            "LLM_MAX_RETRIES": str(config.llm_max_retries),
            "LLM_TIMEOUT": "20",
            "TOOL_TIMEOUT": "20",
            "HISTORY_DATABASE_URL": run.database_url,
            "SRE_AGENT_CONFIG": str(config_file),
            "MAX_CONCURRENT_ALERTS": str(config.max_concurrent),
            "MAX_QUEUED_ALERTS": str(config.window + 2 * BURST),
            "LOG_LEVEL": config.log_level,
        }
        service = run.service = ServiceProcess(workdir, env)
        try:
            await service.start()
            run.up.set()
            client = Client(service)
            tasks = {asyncio.create_task(run.submit_all()), asyncio.create_task(run.watch(client))}
            try:
                done, _ = await asyncio.wait(
                    tasks, timeout=run.left(), return_when=asyncio.FIRST_EXCEPTION
                )
                for task in done:
                    task.result()  # a failure of the harness itself (e.g. a restart failed)
            finally:
                for task in tasks | run.posts:
                    task.cancel()
                await asyncio.gather(*tasks, *run.posts, return_exceptions=True)
            with contextlib.suppress(TimeoutError):  # whatever is left is counted below
                await client.wait_terminal(set(run.accepted.values()), limit=max(run.left(), 1))
            sessions = await client.sessions()
            report.queue_at_end = await client.load()
        finally:
            await service.stop()
            await run.http.aclose()
        report.llm_requests, report.llm_injected_failures = fake.total, fake.failed

    by_id = {s["session_id"]: s for s in sessions}
    report.accepted = len(run.accepted)
    report.duplicates = len(sessions) - len(set(run.accepted.values()))
    report.stuck = sum(s["status"] not in TERMINAL for s in sessions)
    reasons: Counter[str] = Counter()
    for key in run.keys:
        session = by_id.get(run.accepted.get(key, ""))
        if session is None or session["status"] not in TERMINAL:
            report.lost += 1
        elif session["status"] == "completed":
            report.completed += 1
        else:
            report.failed += 1
            if session["error_message"]:
                reasons[session["error_message"]] += 1
            else:
                report.failed_without_reason += 1
    report.failure_reasons = dict(reasons)
    entries = read_call_log(run.call_log)
    runs = executions(entries)
    report.tool_calls_started = sum(runs.values())
    report.tool_calls_failed = sum(e["event"] == "failed" for e in entries)
    report.tool_calls_repeated = sum(count - 1 for count in runs.values())
    report.finished_calls_repeated = sum(
        runs[call] > runs_at_kill[call]
        for finished, runs_at_kill in run.snapshots
        for call in finished
    )
    report.kills = run.kills
    report.submit_retries = run.submit_retries
    report.rejected = run.rejected
    report.duration = time.monotonic() - run.started
    report.ok = (
        report.lost == 0
        and report.stuck == 0
        and report.duplicates == 0
        and report.failed_without_reason == 0
        and report.finished_calls_repeated == 0
        and len(report.kills) == config.kills
        and report.queue_at_end.get("running") == 0
        and report.queue_at_end.get("queued") == 0
    )
    return report


def main(argv: list[str] | None = None) -> int:
    defaults = SoakConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=defaults.alerts)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--llm-429-share", type=float, default=defaults.llm_429_share)
    parser.add_argument("--llm-500-share", type=float, default=defaults.llm_500_share)
    parser.add_argument("--mcp-failure-rate", type=float, default=defaults.mcp_failure_rate)
    parser.add_argument("--llm-latency", type=float, default=defaults.llm_latency)
    parser.add_argument("--tool-seconds", type=float, default=defaults.tool_seconds)
    parser.add_argument("--llm-max-retries", type=int, default=defaults.llm_max_retries)
    parser.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent)
    parser.add_argument("--window", type=int, default=defaults.window)
    parser.add_argument("--time-limit", type=float, default=defaults.time_limit)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--database-url", default=None, help="HISTORY_DATABASE_URL")
    parser.add_argument("--log-level", default=defaults.log_level)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    config = SoakConfig(**{k: v for k, v in vars(args).items() if k != "json"})
    report = asyncio.run(run_soak(config))
    print(json.dumps(asdict(report), indent=2) if args.json else report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
