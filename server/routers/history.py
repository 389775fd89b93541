"""History: the session index, a session's timeline and checkpoints (read from the graph's
checkpoints), and replay from a checkpoint as a new linked session."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status

from graph.models import ModelConfigError
from server.deps import RuntimeDep
from server.history import (
    CheckpointNotFound,
    NothingToReplay,
    build_timeline,
    describe_checkpoints,
    load_checkpoints,
    load_interactions,
)
from server.manager import QueueFull
from server.routers.alerts import RETRY_AFTER_SECONDS, accepted
from server.runtime import ServiceRuntime
from server.schemas import (
    AlertAccepted,
    CheckpointEntry,
    CheckpointList,
    HistoryHealth,
    ReplayRequest,
    SessionDetail,
    SessionList,
    SessionSummary,
)
from server.session_index import UnknownSession
from server.store import SessionRecord, Store

router = APIRouter(prefix="/api/v1/history", tags=["history"])

StatusFilter = Literal["queued", "processing", "completed", "failed"]


def _store(runtime: ServiceRuntime) -> Store:
    if runtime.store is None:
        reason = (
            "disabled (HISTORY_ENABLED=false)"
            if not runtime.settings.history_enabled
            else f"unavailable: {runtime.store_error}"
        )
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"history is {reason}")
    return runtime.store


def summary(record: SessionRecord) -> dict[str, Any]:
    duration = None
    if record.completed_at is not None:
        duration = (record.completed_at - record.started_at).total_seconds() * 1000
    return {
        "session_id": record.session_id,
        "alert_id": record.alert_id,
        "alert_type": record.alert_type,
        "agent_type": record.agent_type,
        "status": record.status,
        "progress": record.progress,
        "current_step": record.current_step,
        "model": record.model,
        "iterations": record.iterations or 0,
        "tokens": record.tokens or 0,
        "started_at": record.started_at,
        "updated_at": record.updated_at,
        "completed_at": record.completed_at,
        "duration_ms": duration,
        "error_message": record.error_message,
        "parent_session_id": record.parent_session_id,
        "parent_checkpoint_id": record.parent_checkpoint_id,
        "replica": record.owner,
    }


async def _record(runtime: ServiceRuntime, session_id: str) -> SessionRecord:
    try:
        record = await _store(runtime).get_session(session_id)
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(503, detail=f"history unavailable: {exc}") from exc
    if record is None:
        raise HTTPException(404, detail=f"unknown session_id '{session_id}'")
    return record


@router.get("/sessions", response_model=SessionList)
async def list_sessions(
    runtime: RuntimeDep,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    agent_type: Annotated[str | None, Query(max_length=100)] = None,
    alert_type: Annotated[str | None, Query(max_length=256)] = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SessionList:
    """Sessions, newest first; filters combine with AND."""
    if start_date and end_date and start_date > end_date:
        raise HTTPException(422, detail="start_date must not be after end_date")
    records, total = await _store(runtime).list_sessions(
        status=status_,
        agent_type=agent_type,
        alert_type=alert_type,
        start_date=start_date,
        end_date=end_date,
        page=page,
        page_size=page_size,
    )
    return SessionList(
        sessions=[SessionSummary(**summary(r)) for r in records],
        total=total,
        page=page,
        page_size=page_size,
        pages=math.ceil(total / page_size),
    )


@router.get(
    "/sessions/{session_id}",
    response_model=SessionDetail,
    name="get_session",
    responses={404: {"description": "Unknown session id."}},
)
async def get_session(session_id: str, runtime: RuntimeDep) -> SessionDetail:
    """The session with its chronological timeline of LLM and MCP interactions."""
    record = await _record(runtime, session_id)
    timeline: list[dict[str, Any]] = []
    runbook = analysis = None
    saver = runtime.saver
    if saver is not None:
        tuples = await load_interactions(saver, session_id)
        timeline = build_timeline(tuples)
        if record.parent_session_id:  # a replay: entries from before it began are copies
            for entry in timeline:
                entry["inherited"] = datetime.fromisoformat(entry["timestamp"]) < record.started_at
        snapshot = await runtime.investigations.graph.aget_state(
            {"configurable": {"thread_id": session_id}}
        )
        runbook = snapshot.values.get("runbook")
        analysis = snapshot.values.get("analysis")
    return SessionDetail(
        **summary(record),
        alert_data=record.alert_data,
        assigned_mcp_servers=list(record.assigned_mcp_servers or []),
        analysis=analysis or record.result,
        result_markdown=record.result_markdown,
        runbook=runbook,
        timeline=timeline,  # type: ignore[arg-type]
        history_available=bool(timeline) or bool(runbook) or analysis is not None,
    )


@router.get(
    "/sessions/{session_id}/checkpoints",
    response_model=CheckpointList,
    responses={404: {"description": "Unknown session id."}},
)
async def list_checkpoints(session_id: str, runtime: RuntimeDep) -> CheckpointList:
    """The orchestrator's and the agent subgraph's checkpoints, oldest first."""
    await _record(runtime, session_id)
    if runtime.saver is None:
        raise HTTPException(503, detail="checkpoints are disabled (HISTORY_ENABLED=false)")
    infos = describe_checkpoints(await load_checkpoints(runtime.saver, session_id))
    return CheckpointList(
        session_id=session_id,
        checkpoints=[CheckpointEntry(**vars(i), replayable=i.node is not None) for i in infos],
    )


@router.post(
    "/sessions/{session_id}/replay",
    response_model=AlertAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "Unknown session or checkpoint."},
        409: {"description": "Nothing runs after that checkpoint."},
        422: {"description": "Invalid state changes or model."},
    },
)
async def replay(
    session_id: str, body: ReplayRequest, request: Request, runtime: RuntimeDep
) -> AlertAccepted:
    """Re-run from a checkpoint as a new session linked to this one."""
    await _record(runtime, session_id)
    try:
        state = await runtime.investigations.replay(
            session_id,
            checkpoint_id=body.checkpoint_id,
            state_changes=body.state_changes,
            model=body.model,
        )
    except (UnknownSession, CheckpointNotFound) as exc:
        raise HTTPException(
            404, detail=f"unknown checkpoint '{body.checkpoint_id}' in session '{session_id}'"
        ) from exc
    except NothingToReplay as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except (ValueError, ModelConfigError) as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    except QueueFull as exc:
        raise HTTPException(
            429, detail=str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from exc
    return accepted(request, state)


@router.get("/health", response_model=HistoryHealth)
async def history_health(runtime: RuntimeDep) -> HistoryHealth:
    database = runtime.database_status()
    if database["status"] == "disabled":
        return HistoryHealth(status="disabled", database=None, error=None, sessions=None)
    try:
        stats = await _store(runtime).stats()
    except HTTPException as exc:
        return HistoryHealth(
            status="degraded", database=database["url"], error=exc.detail, sessions=None
        )
    except Exception as exc:
        return HistoryHealth(
            status="degraded",
            database=database["url"],
            error=f"{type(exc).__name__}: {exc}",
            sessions=None,
        )
    return HistoryHealth(
        status="ok" if database["status"] == "up" else "degraded",
        database=database["url"],
        error=database["error"],
        sessions=stats,
    )
