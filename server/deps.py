"""Typed FastAPI dependencies: how routers reach the running service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from server.runtime import ServiceRuntime
from server.workers import worker_count


async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def spread_over_workers(response: Response) -> None:
    """Ends the connection once an alert is answered, with worker processes (see
    `ending_connection`)."""
    response.headers.update(ending_connection())


def ending_connection() -> dict[str, str]:
    """With worker processes (`serve --workers`), the headers that end the connection once
    an alert is answered, refused ones included. The kernel hands each new connection to
    one worker (SO_REUSEPORT), so a client that keeps its connection open, as Alertmanager
    does, would send every alert, and every retry after a 429, to the worker that took its
    first; reconnecting costs it a TCP handshake per alert."""
    return {"Connection": "close"} if worker_count() > 1 else {}
