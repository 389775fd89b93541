"""Prometheus Alertmanager's webhook receiver: point a `webhook_configs` URL at
`POST /alerts/alertmanager`. Each firing alert is investigated once per fingerprint (see
`server.alertmanager`); the endpoint only queues work, so it answers within Alertmanager's
timeout."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from server.alertmanager import AlertmanagerAccepted, AlertmanagerWebhook, intake
from server.deps import RuntimeDep, ending_connection, spread_over_workers
from server.routers.alerts import RETRY_AFTER_SECONDS

router = APIRouter(tags=["alerts"])


@router.post(
    "/alerts/alertmanager",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertmanagerAccepted,
    responses={
        429: {
            "description": "No alert could be queued: too many investigations. Retry after "
            "Retry-After seconds (Alertmanager does); the body is the per-alert outcome."
        }
    },
    dependencies=[Depends(spread_over_workers)],
)
async def alertmanager_webhook(
    webhook: AlertmanagerWebhook, request: Request, runtime: RuntimeDep
) -> AlertmanagerAccepted | Response:
    """Investigate the firing alerts of an Alertmanager notification (payload version 4).

    Per alert: `investigating` (a new session was queued), `deduplicated` (a session of
    the same fingerprint is still running or ended less than ALERTMANAGER_DEDUP_WINDOW
    seconds ago), `resolved` (recorded, not investigated) or `rejected` (with a reason)."""
    done = await intake(
        webhook,
        runtime.investigations,
        dedup_window=runtime.settings.alertmanager_dedup_window,
    )
    for result in done.results:
        if result.alert_id is not None and result.session_id is not None:
            result.status_url = str(request.url_for("processing_status", alert_id=result.alert_id))
            result.events_url = str(request.url_for("alert_events", alert_id=result.alert_id))
            result.session_url = str(request.url_for("get_session", session_id=result.session_id))
    body = done.response(webhook)
    if done.refused:
        content = body.model_dump(mode="json")
        content["detail"] = done.refusal
        return JSONResponse(
            content,
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), **ending_connection()},
        )
    return body
