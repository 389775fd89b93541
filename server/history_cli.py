"""CLI commands over the local service runtime: run an investigation (or a replay) and
watch its events, list sessions, show one session."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from graph.alert import Alert
from graph.registry import AgentRegistry
from graph.settings import Settings
from server.history import build_timeline, describe_checkpoints, load_checkpoints
from server.progress import ProgressPrinter, print_report
from server.runtime import ServiceRuntime, open_runtime
from server.sessions import SessionState


def _print_rows(console: Console, headers: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines (nothing cut) for pipes and scripts."""
    if console.is_terminal:
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        table.columns[0].no_wrap = True
        console.print(table)
        return
    for row in [headers, *rows]:  # written raw: Rich would expand the tabs
        console.file.write("\t".join(row) + "\n")


def _banner(console: Console, runtime: ServiceRuntime) -> None:
    services = runtime.services
    if services.model_choice.is_demo:
        console.print(
            "[bold yellow]No model configured (LLM_MODEL is unset): using the "
            "scripted demo model.[/] Its analysis is canned logic, not an LLM; "
            "set LLM_MODEL (e.g. openai:gpt-4.1) for a real investigation."
        )
    else:
        console.print(f"model: {services.model_choice.label}", highlight=False)
    for name, status in services.toolbox.status().items():
        if status.state == "down":
            console.print(f"[yellow]MCP server {name} is down:[/] {status.error}", highlight=False)
    database = runtime.database_status()
    if database["status"] == "down":
        console.print(
            f"[yellow]history database unavailable:[/] {database['error']}", highlight=False
        )


async def _watch(
    console: Console, runtime: ServiceRuntime, state: SessionState, live: bool | None
) -> int:
    try:
        with ProgressPrinter(console, live=live) as progress:
            async for _, event in runtime.events.subscribe(state.session_id):
                progress(event)
    except asyncio.CancelledError:  # Ctrl-C: the runtime ends the session failed as it closes
        console.print(
            f"\n[yellow]interrupted:[/] session {state.session_id} is recorded as failed",
            highlight=False,
        )
        raise
    final = await runtime.investigations.wait(state.session_id)
    if final.status == "completed" and final.result:
        print_report(console, final.result)
        code = 0
    else:
        console.print(f"[bold red]Investigation failed:[/] {final.error}", highlight=False)
        code = 1
    console.print(f"\nsession id: {final.session_id}", highlight=False)
    return code


async def investigate(
    console: Console,
    settings: Settings,
    alert: dict[str, Any],
    registry: AgentRegistry,
    *,
    live: bool | None,
) -> int:
    async with open_runtime(settings, registry=registry, recover=False) as runtime:
        _banner(console, runtime)
        state, _ = await runtime.investigations.submit(Alert.model_validate(alert), source="cli")
        return await _watch(console, runtime, state, live)


async def replay_session(
    console: Console,
    settings: Settings,
    registry: AgentRegistry,
    session_id: str,
    checkpoint_id: str,
    *,
    model: str | None,
    live: bool | None,
) -> int:
    async with open_runtime(settings, registry=registry, recover=False) as runtime:
        _banner(console, runtime)
        state = await runtime.investigations.replay(
            session_id, checkpoint_id=checkpoint_id, model=model
        )
        console.print(
            f"replaying {session_id} from checkpoint {checkpoint_id} as session {state.session_id}",
            highlight=False,
        )
        return await _watch(console, runtime, state, live)


async def list_sessions(
    console: Console,
    settings: Settings,
    *,
    status: str | None,
    alert_type: str | None,
    agent_type: str | None,
    limit: int,
) -> int:
    from server.store import Store

    async with await Store.open(settings.history_database_url) as store:
        records, total = await store.list_sessions(
            status=status, alert_type=alert_type, agent_type=agent_type, page_size=limit
        )
    _print_rows(
        console,
        ["session", "started", "alert_type", "agent", "status", "iterations", "parent"],
        [
            [
                r.session_id,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.alert_type,
                r.agent_type or "-",
                r.status,
                str(r.iterations or 0),
                r.parent_session_id or "-",
            ]
            for r in records
        ],
    )
    console.print(f"{len(records)} of {total} session(s)", highlight=False)
    return 0


async def show_session(
    console: Console, settings: Settings, session_id: str, *, checkpoints: bool
) -> int:
    from graph.checkpoints import open_checkpointer
    from server.store import Store

    async with await Store.open(settings.history_database_url) as store:
        record = await store.get_session(session_id)
    if record is None:
        console.print(
            f"[red]unknown session {session_id}[/]; see `sre-agent sessions list`", highlight=False
        )
        return 2
    console.print(
        f"[bold]{record.session_id}[/] {record.alert_type} · agent "
        f"{record.agent_type} · {record.status} · model {record.model}",
        highlight=False,
    )
    if record.error_message:
        console.print(f"[red]error:[/] {record.error_message}", highlight=False)
    async with open_checkpointer(settings.history_database_url) as saver:
        tuples = await load_checkpoints(saver, session_id)
    if checkpoints:
        _print_rows(
            console,
            ["checkpoint", "graph", "step", "node", "summary"],
            [
                [i.checkpoint_id, i.graph, str(i.step), i.node or "-", i.summary]
                for i in describe_checkpoints(tuples)
            ],
        )
        return 0
    for entry in build_timeline(tuples):
        if entry["type"] == "llm_interaction":
            calls = ", ".join(c["name"] for c in entry["tool_calls"]) or "-"
            console.print(
                f"{entry['timestamp']}  LLM  {entry['step']} #{entry['iteration']} "
                f"{entry['duration_ms']:.0f} ms, {entry['token_usage']['total_tokens']}"
                f" tokens, calls: {calls}",
                highlight=False,
            )
        else:
            console.print(
                f"{entry['timestamp']}  MCP  {entry['server']}.{entry['tool']}"
                f"({json.dumps(entry['arguments'])}) {entry['status']} "
                f"{entry['size']} B {entry['duration_ms']:.0f} ms",
                highlight=False,
            )
    if record.result_markdown:
        print_report(console, record.result_markdown)
    return 0
