"""Typed FastAPI dependencies: how routers reach the running service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.runtime import ServiceRuntime


async def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
