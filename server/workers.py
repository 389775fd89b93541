"""Serving from more than one process: `sre-agent serve --workers N`.

One Python process runs its Python code on one core at a time, so a service under a burst
of alerts is bound by one core. With workers, `serve` starts N worker processes, each
listening on the same port with a socket of its own, starts again a worker that dies,
and stops them all on SIGINT or SIGTERM. Each worker is a replica of the service on the shared
history database (server/replica.py): its REPLICA_ID is the configured one with
`-w<pid>` appended, it holds leases on the sessions it runs, and a stream of a session
that another worker runs follows that worker's stored events (server/store/notices.py).
The limits MAX_CONCURRENT_ALERTS and MAX_QUEUED_ALERTS are each worker's: N workers run
up to N times as many investigations at once.

Before it starts the workers, the supervisor checks their configuration and prepares the
database (migrations, checkpoint tables) once, in a process of its own (`preflight`), so
the workers do not race to create the same tables and the supervisor holds none of what
that loads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from uvicorn.config import STARTUP_FAILURE

from graph.settings import Settings
from server.metrics import MULTIPROCESS_ENV

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

WORKERS_ENV = "SRE_AGENT_WORKERS"
"""Set by the supervisor for its workers: how many there are."""


def worker_count() -> int:
    """How many workers this process is one of (1 when it is not a worker)."""
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1


def worker_settings(settings: Settings) -> Settings:
    """`settings` as a worker sees them: a REPLICA_ID of its own. Unchanged for a single
    process."""
    if worker_count() <= 1:
        return settings
    return settings.model_copy(update={"replica_id": f"{settings.replica_id}-w{os.getpid()}"})


def app() -> FastAPI:
    """The app of one `sre-agent serve` worker (uvicorn calls it in each worker process):
    configuration from the environment the supervisor passed on."""
    from graph.services import load_registry
    from server import collector
    from server.app import create_app
    from server.logging_setup import configure_logging

    collector.pause()
    settings = worker_settings(Settings())
    configure_logging(settings).addFilter(_NameReplica(settings.replica_id))
    built = create_app(settings, registry=load_registry(settings))
    collector.settle()
    return built


class _NameReplica(logging.Filter):
    """Adds `replica` (the worker's REPLICA_ID) to every log record of a worker: the
    workers write to one stream."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        record.replica = self.replica
        return True


def preflight(settings: Settings, *, check: bool = True) -> str | None:
    """Before the workers start, in a process of its own: with `check`, what every worker
    would refuse to start with (the registries SRE_AGENT_CONFIG names, the model
    settings), found once; then the history database brought up to date, once, so the
    workers do not race to create the same tables. None when the workers may start, else
    why not. The supervisor itself imports none of it: it stays about 80 MiB smaller."""
    spawn = multiprocessing.get_context("spawn")
    receiving, sending = spawn.Pipe(duplex=False)
    process = spawn.Process(target=_preflight, args=(settings, check, sending), daemon=True)
    process.start()
    sending.close()
    try:
        problem: str | None = receiving.recv()
    except EOFError:
        process.join()
        return f"the check before starting the workers ended with exit status {process.exitcode}"
    process.join()
    return problem


def _preflight(settings: Settings, check: bool, sending: Connection) -> None:
    from pydantic import ValidationError

    from graph.config import ConfigError
    from graph.models import ModelConfigError, choose_model
    from graph.services import load_registry

    if check:
        try:
            load_registry(settings)
            choose_model(settings)
        except (ConfigError, ModelConfigError, ValidationError) as exc:
            sending.send(str(exc))
            return
    asyncio.run(prepare_database(settings))
    sending.send(None)


async def prepare_database(settings: Settings) -> None:
    """Bring the history database's schema and checkpoint tables up to date. A database
    that cannot be opened is left to the workers, which run without it and say why in
    /health."""
    if not settings.history_enabled:
        return
    from graph.checkpoints import open_checkpointer
    from server.store import Store

    try:
        store = await Store.open(settings.history_database_url)
        await store.close()
        async with open_checkpointer(settings.history_database_url):
            pass
    except Exception as exc:
        log.warning("could not prepare the history database before the workers: %s", exc)


def serve(
    factory: str,
    *,
    workers: int,
    host: str,
    port: int,
    on_listening: Callable[[int], None] | None = None,
    **uvicorn_options: Any,
) -> int:
    """Run `workers` processes of the app that the import string `factory` builds, each
    listening on `host`:`port` (0: a free port; `on_listening` is told which) with a
    socket of its own (SO_REUSEPORT: the kernel spreads new connections evenly over
    them), until SIGINT or SIGTERM; a worker that dies is started again. Returns the
    exit status: 1 when a worker could not start. Raises OSError when the port is taken.
    `preflight` first."""
    os.environ[WORKERS_ENV] = str(workers)
    with _shared_metrics() as metrics_dir:
        return _supervise(factory, workers, host, port, on_listening, metrics_dir, uvicorn_options)


@contextlib.contextmanager
def _shared_metrics() -> Iterator[str]:
    """The folder where the workers keep their metrics (server/metrics.py): the one
    PROMETHEUS_MULTIPROC_DIR names, or a new one, removed at the end."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        yield given
        return
    folder = tempfile.mkdtemp(prefix="sre-agent-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield folder
    finally:
        del os.environ[MULTIPROCESS_ENV]
        shutil.rmtree(folder, ignore_errors=True)


def _supervise(
    factory: str,
    workers: int,
    host: str,
    port: int,
    on_listening: Callable[[int], None] | None,
    metrics_dir: str,
    uvicorn_options: dict[str, Any],
) -> int:
    from prometheus_client.multiprocess import mark_process_dead

    reserved = _reserve(host, port)  # bound, never listening: holds the port meanwhile
    port = reserved.getsockname()[1]
    if on_listening is not None:
        on_listening(port)
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def start() -> tuple[Any, float]:
        process = spawn.Process(
            target=_worker, args=(factory, host, port, uvicorn_options), daemon=False
        )
        process.start()
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    status = 0
    while not stop.wait(0.5):
        for i, (process, started) in enumerate(running):
            if process.is_alive():
                continue
            code = process.exitcode
            mark_process_dead(process.pid, metrics_dir)  # its gauges no longer count
            if code == STARTUP_FAILURE or (code > 0 and time.monotonic() - started < _YOUNG):
                # it could not start (its log says why): another would fail the same way
                log.error("worker %s could not start (exit status %s)", process.pid, code)
                status = 1
                stop.set()
                break
            log.warning("worker %s ended (exit status %s): starting another", process.pid, code)
            running[i] = start()
    for process, _ in running:
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker shuts down as `serve` does
    for process, _ in running:
        process.join()
    reserved.close()
    return status


_YOUNG = 10.0
"""Seconds after its start within which a worker's exiting with an error status means it
could not start. One killed by a signal is started again whenever that happens."""


def _reserve(host: str, port: int) -> socket.socket:
    """The port for the workers' sockets. Raises OSError when something listens on it
    already (even another service's workers: their sockets would share its connections)."""
    if port:
        with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))  # no SO_REUSEPORT: fails beside any listener
    return _socket(host, port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(factory: str, host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own listening socket on the shared port, then uvicorn."""
    import uvicorn

    sock = _socket(host, port)
    config = uvicorn.Config(factory, factory=True, host=host, port=port, **options)
    sock.listen(config.backlog)
    uvicorn.Server(config).run(sockets=[sock])
