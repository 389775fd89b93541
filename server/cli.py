"""The `sre-agent` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from graph.alert import Alert
from graph.config import ConfigError
from graph.models import ModelConfigError
from graph.validation import describe_errors
from server import collector

if TYPE_CHECKING:  # the heavy modules load when a command runs, not for --help
    from graph.registry import AgentRegistry
    from graph.settings import Settings

T = TypeVar("T")

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
        raise ValueError(f"invalid alert in {path}: {describe_errors(exc.errors())}") from exc


def _setup(config: Path | None) -> tuple[Console, Settings, AgentRegistry]:
    console, settings = _settings()
    return console, settings, _registry(console, settings, config)


def _registry(console: Console, settings: Settings, config: Path | None) -> AgentRegistry:
    from graph.services import load_registry

    try:
        return load_registry(settings, config)
    except (ConfigError, ValidationError) as exc:
        raise _fail(console, str(exc)) from exc


def _settings() -> tuple[Console, Settings]:
    from graph.settings import Settings

    console = Console()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return console, Settings()
    except ValidationError as exc:
        raise _fail(console, str(exc)) from exc


@app.command()
def investigate(
    alert_file: Annotated[Path, typer.Argument(help="Alert JSON (the seed's Alert shape).")],
    config: ConfigOption = None,
    live: LiveOption = None,
) -> None:
    """Investigate one alert and print the root-cause analysis."""
    from server.history_cli import investigate as investigate_

    console, settings, registry = _setup(config)
    try:
        alert = _load_alert(alert_file)
        code = _run(investigate_(console, settings, alert, registry, live=live))
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
    from server.history_cli import investigate as investigate_

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
            code = _run(investigate_(console, settings, alert, env.registry, live=live))
            writes = env.cluster.write_requests
            if writes:
                console.print(
                    f"[red]the fixture cluster received {len(writes)} write request(s)[/]"
                )
                code = code or 1
    except (DemoError, ModelConfigError) as exc:
        raise _fail(console, str(exc)) from exc
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    config: ConfigOption = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Serve a non-loopback address without API_TOKENS (no auth)."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="WEB_CONCURRENCY",
            help="Worker processes sharing the port and the history database (one core "
            "each); MAX_CONCURRENT_ALERTS and MAX_QUEUED_ALERTS apply to each.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP service (alerts, SSE progress, history, replay)."""
    from server.logging_setup import configure_logging
    from server.security import is_loopback_host

    # with workers, this process only supervises them: what they load, it does not
    console, settings = _settings()
    if not settings.api_tokens and not is_loopback_host(host):
        if not insecure:
            raise _fail(
                console,
                f"refusing to serve on {host} without authentication: set API_TOKENS "
                "(comma-separated bearer tokens), or pass --insecure to serve it "
                "unauthenticated",
            )
        console.print(
            f"[bold yellow]warning:[/] serving on {host} without authentication (--insecure)",
            highlight=False,
        )
    try:
        configure_logging(settings)  # LOG_LEVEL, LOG_FORMAT; uvicorn's logs included
    except ValueError as exc:
        raise _fail(console, str(exc)) from exc
    if workers > 1:
        raise typer.Exit(_serve_workers(console, settings, config, workers, host, port))
    import uvicorn

    from server.app import create_app

    registry = _registry(console, settings, config)
    try:
        app_ = create_app(settings, registry=registry)
        collector.settle()
        uvicorn.run(app_, host=host, port=port, log_config=None)
    except ModelConfigError as exc:
        raise _fail(console, str(exc)) from exc


def _serve_workers(
    console: Console, settings: Settings, config: Path | None, workers: int, host: str, port: int
) -> int:
    from server import workers as workers_

    if not hasattr(socket, "SO_REUSEPORT"):
        raise _fail(
            console, "--workers needs SO_REUSEPORT (Linux, macOS, BSD): run one worker here"
        )
    if config is not None:  # what the workers read their registries from
        os.environ["SRE_AGENT_CONFIG"] = str(config.resolve())
        settings = settings.model_copy(update={"sre_agent_config": config.resolve()})
    problem = workers_.preflight(settings)  # a bad registry or model setting stops here, once
    if problem is not None:
        raise _fail(console, problem)
    try:
        return workers_.serve(
            "server.workers:app", workers=workers, host=host, port=port, log_config=None
        )
    except OSError as exc:
        raise _fail(console, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


sessions_app = typer.Typer(help="Browse the investigation history.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


@sessions_app.command("list")
def sessions_list(
    status: Annotated[str | None, typer.Option(help="queued|processing|completed|failed")] = None,
    alert_type: Annotated[str | None, typer.Option()] = None,
    agent_type: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
) -> None:
    """The most recent sessions."""
    from server.history_cli import list_sessions

    console, settings, _ = _setup(None)
    code = _run(
        list_sessions(
            console,
            settings,
            status=status,
            alert_type=alert_type,
            agent_type=agent_type,
            limit=limit,
        )
    )
    raise typer.Exit(code)


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument()],
    checkpoints: Annotated[bool, typer.Option("--checkpoints", help="List checkpoints.")] = False,
) -> None:
    """A session: its analysis and timeline (or its checkpoints)."""
    from server.history_cli import show_session

    console, settings, _ = _setup(None)
    raise typer.Exit(_run(show_session(console, settings, session_id, checkpoints=checkpoints)))


@app.command()
def replay(
    session_id: Annotated[str, typer.Argument()],
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="Checkpoint id to re-run from.")],
    model: Annotated[str | None, typer.Option(help='"provider:model" for the re-run.')] = None,
    config: ConfigOption = None,
    live: LiveOption = None,
) -> None:
    """Re-run a session from a checkpoint as a new linked session."""
    from server.history_cli import replay_session

    console, settings, registry = _setup(config)
    try:
        code = _run(
            replay_session(
                console, settings, registry, session_id, checkpoint, model=model, live=live
            )
        )
    except (ValueError, ModelConfigError) as exc:
        raise _fail(console, str(exc)) from exc
    raise typer.Exit(code)


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, the program loaded (see server.collector). SIGTERM (a
    `kill`, a `timeout`) stops it as Ctrl-C does: what it was running is recorded as
    interrupted before the process exits (143)."""
    collector.settle()
    try:
        return asyncio.run(_stopped_by_sigterm(main))
    except asyncio.CancelledError:
        raise typer.Exit(128 + signal.SIGTERM) from None


async def _stopped_by_sigterm(main: Coroutine[Any, Any, T]) -> T:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await main
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)


def main() -> None:
    collector.pause()
    app()


if __name__ == "__main__":
    main()
