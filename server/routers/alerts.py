"""Alerts: submit one for investigation, read its processing status, list alert types."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status

from graph.alert import Alert
from server.deps import RuntimeDep, ending_connection, spread_over_workers
from server.manager import QueueFull
from server.schemas import AlertAccepted, ProcessingStatus
from server.session_index import UnknownSession
from server.sessions import SessionState

router = APIRouter(tags=["alerts"])

RETRY_AFTER_SECONDS = 5


def accepted(request: Request, state: SessionState) -> AlertAccepted:
    return AlertAccepted(
        alert_id=state.alert_id,
        session_id=state.session_id,
        status=state.status,
        status_url=str(request.url_for("processing_status", alert_id=state.alert_id)),
        events_url=str(request.url_for("alert_events", alert_id=state.alert_id)),
        session_url=str(request.url_for("get_session", session_id=state.session_id)),
    )


@router.post(
    "/alerts",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertAccepted,
    responses={429: {"description": "Too many investigations; see Retry-After."}},
    dependencies=[Depends(spread_over_workers)],
)
async def submit_alert(
    alert: Alert,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AlertAccepted:
    """Validate the alert and start its investigation in the background."""
    try:
        state, created = await runtime.investigations.submit(alert, idempotency_key=idempotency_key)
    except QueueFull as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=str(exc),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), **ending_connection()},
        ) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return accepted(request, state)


@router.get(
    "/processing-status/{alert_id}",
    response_model=ProcessingStatus,
    name="processing_status",
    responses={404: {"description": "Unknown alert id."}},
)
async def processing_status(alert_id: str, runtime: RuntimeDep) -> ProcessingStatus:
    try:
        state = await runtime.investigations.session_for_alert(alert_id)
    except UnknownSession as exc:
        raise HTTPException(404, detail=f"unknown alert_id '{alert_id}'") from exc
    return ProcessingStatus(
        alert_id=state.alert_id,
        session_id=state.session_id,
        status=state.status,  # type: ignore[arg-type]
        progress=state.progress,
        current_step=state.current_step,
        current_agent=state.current_agent,
        assigned_mcp_servers=state.assigned_mcp_servers,
        result=state.result,
        error=state.error,
        timestamp=state.timestamp,
    )


@router.get("/alert-types", response_model=list[str])
async def alert_types(runtime: RuntimeDep) -> list[str]:
    """Alert types that have a specialized agent."""
    return runtime.services.registry.alert_types()
