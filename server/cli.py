"""The `sre-agent` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from graph.alert import Alert
from graph.analysis import render_markdown
from graph.builder import build_investigation_graph
from graph.checkpoints import open_checkpointer
from graph.config import ConfigError
from graph.models import ModelConfigError
from graph.registry import AgentRegistry
from graph.runner import run_investigation
from graph.services import load_registry, open_services
from graph.settings import Settings
from server.progress import ProgressPrinter, print_report

app = typer.Typer(
    help="SRE incident-analysis agent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML registries (else SRE_AGENT_CONFIG).")
]
LiveOption = Annotated[
    bool | None, typer.Option("--live/--plain", help="Live view or plain lines (default: TTY?).")
]


def _fail(console: Console, message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _load_alert(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"alert file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return Alert.model_validate(raw).to_state()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid alert in {path}: {problems}") from exc


async def _investigate(
    console: Console,
    settings: Settings,
    alert: dict[str, Any],
    registry: AgentRegistry,
    *,
    live: bool | None,
) -> int:
    async with open_services(settings, registry=registry, log_dir=Path("data/logs")) as services:
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
                console.print(
                    f"[yellow]MCP server {name} is down:[/] {status.error}", highlight=False
                )
        session_id = str(uuid.uuid4())
        async with open_checkpointer(settings.history_database_url) as saver:
            graph = build_investigation_graph(
                services.registry, checkpointer=saver if settings.history_enabled else None
            )
            with ProgressPrinter(console, live=live) as progress:
                values = await run_investigation(
                    graph,
                    thread_id=session_id,
                    context=services.context(),
                    alert=alert,
                    on_event=progress,
                )
    if values["status"] == "completed" and values.get("analysis"):
        print_report(console, render_markdown(values["analysis"], values.get("tool_calls", [])))
        code = 0
    else:
        console.print(f"[bold red]Investigation failed:[/] {values.get('error')}", highlight=False)
        code = 1
    console.print(f"\nsession id: {session_id}", highlight=False)
    return code


def _setup(config: Path | None) -> tuple[Console, Settings, AgentRegistry]:
    console = Console()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
        registry = load_registry(settings, config)
    except (ConfigError, ValidationError) as exc:
        raise _fail(console, str(exc)) from exc
    return console, settings, registry


@app.command()
def investigate(
    alert_file: Annotated[Path, typer.Argument(help="Alert JSON (the seed's Alert shape).")],
    config: ConfigOption = None,
    live: LiveOption = None,
) -> None:
    """Investigate one alert and print the root-cause analysis."""
    console, settings, registry = _setup(config)
    try:
        alert = _load_alert(alert_file)
        code = asyncio.run(_investigate(console, settings, alert, registry, live=live))
    except (ValueError, ModelConfigError) as exc:
        raise _fail(console, str(exc)) from exc
    raise typer.Exit(code)


@app.command()
def demo(
    scenario: Annotated[
        str, typer.Option(help="Bundled scenario under examples/scenarios.")
    ] = "stuck-namespace",
    config: ConfigOption = None,
    live: LiveOption = None,
) -> None:
    """Investigate a bundled incident against the bundled fixture cluster."""
    from server.demo import DemoError, demo_environment, examples_dir

    if config is None and not os.environ.get("SRE_AGENT_CONFIG"):
        config = examples_dir() / "sre-agent.yaml"
    console, settings, registry = _setup(config)
    try:
        with demo_environment(registry, scenario) as env:
            console.print(
                f"Demo: scenario [bold]{scenario}[/], fixture Kubernetes API at {env.cluster.url}",
                highlight=False,
            )
            settings = settings.model_copy(update={"runbooks_dir": env.runbooks_dir})
            alert = Alert.model_validate(env.alert).to_state()
            code = asyncio.run(_investigate(console, settings, alert, env.registry, live=live))
            writes = env.cluster.write_requests
            if writes:
                console.print(
                    f"[red]the fixture cluster received {len(writes)} write request(s)[/]"
                )
                code = code or 1
    except (DemoError, ModelConfigError) as exc:
        raise _fail(console, str(exc)) from exc
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
