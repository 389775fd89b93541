"""`fetch_runbook`: download the alert's runbook; a failure is recorded, not fatal. Then
on to the agent subgraph `route` chose (a `Command`)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.context import Context, event_sink
from graph.events import EventType, emit
from graph.runbooks import RunbookError
from graph.state import InvestigationState, RunbookRecord


async def fetch_runbook(state: InvestigationState, runtime: Runtime[Context]) -> Command[str]:
    reference = state["alert"].get("runbook")
    record: RunbookRecord = {
        "reference": reference,
        "source": None,
        "sha256": None,
        "size": 0,
        "content": "",
        "error": None,
    }
    if not reference:
        record["error"] = "the alert names no runbook"
    else:
        try:
            runbook = await runtime.context.runbooks.fetch(reference)
        except RunbookError as exc:
            record["error"] = str(exc)
        else:
            limit = runtime.context.runbook_max_chars
            content = runbook.content
            if len(content) > limit:
                content = content[:limit] + f"\n[runbook truncated: {len(runbook.content)} chars]"
            record = {
                **record,
                "source": runbook.source,
                "sha256": runbook.sha256,
                "size": runbook.size,
                "content": content,
            }
    await emit(
        event_sink(runtime),
        EventType.RUNBOOK_FETCHED,
        agent=state.get("agent"),
        step="fetch_runbook",
        reference=reference,
        source=record["source"],
        sha256=record["sha256"],
        size=record["size"],
        error=record["error"],
    )
    agent = runtime.context.registry.agents[state["agent"] or ""]
    return Command(update={"runbook": record}, goto=agent.node_name)
