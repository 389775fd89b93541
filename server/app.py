"""The FastAPI application: a factory and a lifespan that opens everything the service
needs (model, MCP sessions, database, checkpoints, event log, investigation workers) and
closes it in order. Nothing is built at import time."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from langchain_core.language_models import BaseChatModel

from graph.models import ModelChoice
from graph.registry import AgentRegistry
from graph.settings import Settings
from graph.validation import describe_errors
from server.routers import alertmanager, alerts, events, health, history, metrics
from server.runtime import open_runtime
from server.security import install_security


def create_app(
    settings: Settings | None = None,
    *,
    registry: AgentRegistry | None = None,
    chat_model: tuple[ModelChoice, BaseChatModel] | None = None,
) -> FastAPI:
    """Build the service. `registry` and `chat_model` override configuration (tests).

    Settings are read here (not in the lifespan) when not given: API_TOKENS, CORS_ORIGINS
    and MAX_ALERT_BYTES shape the middleware (server/security.py)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings or Settings(), registry=registry, chat_model=chat_model, recover=True
        ) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="sre-agent",
        version="0.1.0",
        summary="Alerts in, root-cause analyses out: investigations streamed over SSE, "
        "with their checkpointed history.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = describe_errors(errors)
        return JSONResponse(
            status_code=422,
            content={
                "message": message,
                "detail": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors],
            },
        )

    for router in (alerts.router, events.router, history.router, health.router, metrics.router):
        app.include_router(router)
    app.include_router(alertmanager.router)
    install_security(app, settings)
    return app
