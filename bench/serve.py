"""The service as the benchmarks run it, in its own process: the real app (uvicorn, the
FastAPI app, workers, event log, SQLite history) with the bench agent over the fixture MCP
server and the scripted model at a fixed latency.

`python -m bench.serve --db PATH --latency 0.5 --max-concurrent 200 --ready-file F`
writes the port to F once it serves; SIGINT/SIGTERM shut it down. With `--workers N`, N
worker processes serve, as `sre-agent serve --workers N` runs them (server/workers.py),
and the port is written once every worker serves."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


_ARGS_ENV = "BENCH_SERVE_ARGS"
"""The command line's options, for the worker processes (`worker_app`)."""

_UVICORN: dict[str, Any] = {
    "log_level": "warning",
    "lifespan": "on",
    "access_log": False,
    "backlog": 4096,
    "timeout_keep_alive": 300,  # the client keeps its connections between bursts
}


def _settings(args: argparse.Namespace) -> Any:
    from bench.common import settings

    return settings(
        Path(args.db),
        max_concurrent_alerts=args.max_concurrent,
        max_queued_alerts=args.max_queued,
        **({"history_database_url": args.database_url} if args.database_url else {}),
        **({"replica_id": args.replica_id} if args.replica_id else {}),
    )


def build_app(args: argparse.Namespace) -> Any:
    from bench.common import apply_patches

    apply_patches()
    from bench.common import registry, scripted_model
    from graph.models import ModelChoice
    from server import collector
    from server.app import create_app
    from server.workers import worker_settings

    app = create_app(
        worker_settings(_settings(args)),
        registry=registry(),
        chat_model=(ModelChoice("scripted", "bench"), scripted_model(args.latency)),
    )
    collector.settle()  # as `sre-agent serve` does before it serves
    return app


def worker_app() -> Any:
    """One worker's app (uvicorn calls it in each worker process)."""
    from server import collector

    collector.pause()
    return build_app(argparse.Namespace(**json.loads(os.environ[_ARGS_ENV])))


def serve_workers(args: argparse.Namespace) -> None:
    import threading
    import time
    import urllib.request

    from server import workers

    parent = os.getppid()

    def when_serving(port: int) -> None:  # the port, once every worker answers
        def wait() -> None:
            answered: set[str] = set()
            deadline = time.monotonic() + 120
            while len(answered) < args.workers and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as r:
                        answered.add(json.loads(r.read())["replica"]["id"])
                except OSError:
                    time.sleep(0.05)
            Path(args.ready_file).write_text(str(port))
            while os.getppid() == parent:  # the benchmark process died: do not linger
                time.sleep(1)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=wait, daemon=True).start()

    os.environ[_ARGS_ENV] = json.dumps(vars(args))
    problem = workers.preflight(_settings(args), check=False)  # registry, model: the bench's
    if problem is not None:
        raise SystemExit(problem)
    workers.serve(
        "bench.serve:worker_app",
        workers=args.workers,
        host="127.0.0.1",
        port=0,
        on_listening=when_serving,
        log_config=None,
        **_UVICORN,
    )


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    app = build_app(args)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **_UVICORN))
    task = asyncio.create_task(server.serve())
    parent = os.getppid()

    async def orphaned() -> None:  # the benchmark process died: do not linger
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
            await asyncio.sleep(1)

    watchdog = asyncio.create_task(orphaned())
    while not server.started:
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    Path(args.ready_file).write_text(str(port))  # noqa: ASYNC240 - a few bytes, once
    await task
    watchdog.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-concurrent", type=int, default=10)
    parser.add_argument("--max-queued", type=int, default=100)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--database-url", help="the history there instead of SQLite at --db")
    parser.add_argument("--replica-id", help="REPLICA_ID (replicas sharing a database)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    if args.workers > 1:
        serve_workers(args)
        return
    from server import collector

    collector.pause()  # as the `sre-agent` command does
    run(serve(args))


def run(main: Any) -> None:
    """On the event loop `sre-agent serve` gets: uvloop where installed, as uvicorn's
    `loop="auto"` chooses."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    main()
