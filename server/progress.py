"""Investigation progress in a terminal: a Rich live view on a TTY, plain lines otherwise."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from graph.events import EventType


def _args(args: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
    return text if len(text) <= 90 else text[:87] + "..."


def _first_line(text: str, width: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def plain_line(event: dict[str, Any]) -> str | None:
    """One line per event for logs and pipes (None: not worth a line)."""
    kind, data = event["type"], event.get("data", {})
    where = (
        f"[{event['agent']}" + (f" #{event['iteration']}" if event.get("iteration") else "") + "] "
        if event.get("agent")
        else ""
    )
    match kind:
        case EventType.SESSION_STARTED:
            return f"session {data.get('thread_id')} started (model {data.get('model')})"
        case EventType.AGENT_SELECTED:
            return (
                f"{where}agent selected for {data['alert_type']}; servers: "
                f"{', '.join(data['mcp_servers'])}; up to {data['max_iterations']} iterations"
            )
        case EventType.RUNBOOK_FETCHED:
            if data.get("error"):
                return f"{where}runbook unavailable: {data['error']}"
            return f"{where}runbook {data['source']} ({data['size']} bytes)"
        case EventType.ITERATION_STARTED:
            return f"{where}iteration {event['iteration']}/{data['max_iterations']}"
        case EventType.TOOL_CALL_STARTED:
            return f"{where}→ {data['ref']} {data['tool']}({_args(data['args'])})"
        case EventType.TOOL_CALL_FINISHED:
            cut = ", truncated" if data.get("truncated") else ""
            return (
                f"{where}← {data['ref']} {data['tool']} {data['status']} "
                f"({data['size']} bytes{cut}, {data['duration_ms']:.0f} ms)"
            )
        case EventType.PARTIAL_ANALYSIS:
            return f"{where}finding: {_first_line(data['analysis'])}"
        case EventType.DEGRADED:
            return f"{where}WARNING: {data['message']}"
        case EventType.FINAL_ANALYSIS:
            return f"{where}final analysis written"
        case EventType.SESSION_COMPLETED:
            return "session completed"
        case EventType.SESSION_FAILED:
            return f"session FAILED: {data.get('error')}"
    return None


class LiveView:
    """A Rich live panel: agent, iteration, tool calls with spinners, the latest finding."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.title = "sre-agent"
        self.status = "starting"
        self.calls: dict[str, dict[str, Any]] = {}
        self.finding = ""
        self.warnings: list[str] = []
        self._live = Live(self.render(), console=console, refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self.render(final=True))
        self._live.__exit__(None, None, None)

    def render(self, final: bool = False) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        for call in list(self.calls.values())[-12:]:
            if call.get("status") is None:
                mark: RenderableType = Text("…") if final else Spinner("dots", style="cyan")
                detail = Text("running", style="cyan")
            else:
                ok = call["status"] == "ok"
                mark = Text("✔" if ok else "✘", style="green" if ok else "red")
                detail = Text(
                    f"{call['status']} · {call['size']} B · {call['duration_ms']:.0f} ms",
                    style="dim" if ok else "red",
                )
            table.add_row(
                mark,
                Text(call["ref"], style="bold"),
                Text(f"{call['tool']}({_args(call['args'])})"),
                detail,
            )
        parts: list[RenderableType] = [Text(self.status, style="bold cyan"), table]
        parts += [Text(f"⚠ {w}", style="yellow") for w in self.warnings]
        if self.finding:
            parts.append(Text(f"Finding: {_first_line(self.finding, 400)}", style="italic"))
        return Panel(Group(*parts), title=self.title, border_style="blue")

    def update(self, event: dict[str, Any]) -> None:
        kind, data = event["type"], event.get("data", {})
        if kind == EventType.AGENT_SELECTED:
            self.title = f"sre-agent · {event['agent']} agent · {data['alert_type']}"
        elif kind == EventType.RUNBOOK_FETCHED:
            self.status = (
                ("runbook unavailable: " + data["error"])
                if data.get("error")
                else f"runbook loaded ({data['size']} bytes)"
            )
        elif kind == EventType.ITERATION_STARTED:
            self.status = f"iteration {event['iteration']}/{data['max_iterations']}: choosing tools"
        elif kind == EventType.TOOL_CALL_STARTED:
            self.calls[data["ref"]] = {**data, "status": None}
            self.status = f"iteration {event['iteration']}: running tools"
        elif kind == EventType.TOOL_CALL_FINISHED:
            self.calls[data["ref"]].update(data)
            self.status = f"iteration {event['iteration']}: analysing results"
        elif kind == EventType.PARTIAL_ANALYSIS:
            self.finding = data["analysis"]
        elif kind == EventType.DEGRADED:
            self.warnings.append(data["message"])
        elif kind == EventType.FINAL_ANALYSIS:
            self.status = "final analysis written"
        elif kind == EventType.SESSION_FAILED:
            self.status = f"FAILED: {data.get('error')}"
        elif kind == EventType.SESSION_COMPLETED:
            self.status = "completed"
        self._live.update(self.render())


class ProgressPrinter:
    """Chooses the live view on a terminal and plain lines elsewhere."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self._view: LiveView | None = None

    def __enter__(self) -> ProgressPrinter:
        if self.live:
            self._view = LiveView(self.console).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._view is not None:
            self._view.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        if self._view is not None:
            self._view.update(event)
            return
        line = plain_line(event)
        if line is not None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def print_report(console: Console, markdown: str) -> None:
    """The final analysis: rendered Markdown on a terminal, the Markdown source elsewhere."""
    console.print()
    if console.is_terminal:
        from rich.markdown import Markdown  # loads markdown-it: only a terminal needs it

        console.print(Markdown(markdown))
    else:
        console.print(markdown, markup=False, highlight=False, soft_wrap=True)
