"""Health of the service and its dependencies: database, each MCP server, the model."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from server.deps import RuntimeDep
from server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(runtime: RuntimeDep) -> Health:
    """Degraded (still serving) when the database or an MCP server is down."""
    database = runtime.database_status()
    if database["status"] == "up" and runtime.store is not None:
        try:
            await runtime.store.ping()
        except Exception as exc:
            database = {**database, "status": "down", "error": f"{type(exc).__name__}: {exc}"}
    servers = {name: asdict(s) for name, s in runtime.services.toolbox.status().items()}
    choice = runtime.services.model_choice
    degraded = database["status"] == "down" or any(s["state"] == "down" for s in servers.values())
    return Health(
        status="degraded" if degraded else "ok",
        database=database,
        mcp_servers=servers,
        model={"name": choice.label, "demo": choice.is_demo, "base_url": choice.base_url},
        queue=runtime.investigations.load(),
        replica=runtime.investigations.replica.describe(),
    )
