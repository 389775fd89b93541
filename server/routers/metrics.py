"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.deps import RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    """The service's metrics in the Prometheus text exposition format (with worker
    processes: all of theirs, whichever answers)."""
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
