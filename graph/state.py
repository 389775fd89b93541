"""State schemas, per level: the orchestrator's, the agent subgraph's, and what an agent
hands back. Every value is plain JSON so checkpoints, Studio and the history read it as is.

Large payloads are not accumulated: `results` holds only the current iteration's tool
output and `llm_call` only the latest model call; checkpoints keep each one at the step
that wrote it, which is what the history timeline reads.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired

from typing_extensions import TypedDict

Status = Literal["running", "completed", "failed"]
Confidence = Literal["low", "medium", "high"]
StopReason = Literal["model_concluded", "max_iterations", "max_tokens", "max_duration", "no_tools"]


class RunbookRecord(TypedDict):
    """The runbook as fetched (or why it could not be)."""

    reference: str | None
    source: str | None
    sha256: str | None
    size: int
    content: str
    error: str | None


class ToolCallRecord(TypedDict):
    """One MCP tool call: what was asked, how it went, and (capped) what came back."""

    ref: str  # "T<iteration>.<n>": how prompts and evidence name the call
    id: str
    iteration: int
    server: str | None
    tool: str
    args: dict[str, Any]
    status: Literal["ok", "error", "refused", "blocked"]
    started_at: str
    duration_ms: float
    size: int  # bytes of the full result, before capping
    truncated: bool
    masked: int  # secrets masked in the result (how many, never what)
    content: NotRequired[str]  # present in `results`, dropped from the `tool_calls` log


class LLMCallRecord(TypedDict):
    """One model call: prompt, response, requested tool calls, usage and timing."""

    step: str
    iteration: int
    model: str  # "provider:model" that answered (a fallback's, after a switch)
    started_at: str
    duration_ms: float
    messages: list[dict[str, str]]
    response: str
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int]
    fallback_from: NotRequired[str]  # the configured model, when a fallback answered
    fallback_errors: NotRequired[list[str]]  # "label: error" of models that failed this call


class Finding(TypedDict):
    iteration: int
    analysis: str


class Evidence(TypedDict):
    finding: str
    tool_call: str  # a ToolCallRecord ref, or "alert" / "runbook"


class FinalAnalysis(TypedDict):
    summary: str
    root_cause: str
    evidence: list[Evidence]
    remediation: list[str]
    confidence: Confidence
    stop_reason: StopReason
    iterations: int


class InvestigationInput(TypedDict):
    alert: dict[str, Any]


class InvestigationState(TypedDict):
    """The orchestrator's state. Agent outputs are overwritten, never appended, here."""

    alert: dict[str, Any]
    status: NotRequired[Status]
    error: NotRequired[str | None]
    agent: NotRequired[str | None]
    mcp_servers: NotRequired[list[str]]
    runbook: NotRequired[RunbookRecord | None]
    iteration: NotRequired[int]
    tool_calls: NotRequired[list[ToolCallRecord]]
    findings: NotRequired[list[Finding]]
    degraded: NotRequired[list[str]]
    tokens: NotRequired[int]
    analysis: NotRequired[FinalAnalysis | None]


class AgentInput(TypedDict):
    alert: dict[str, Any]
    agent: str
    runbook: RunbookRecord | None


class AgentOutput(TypedDict):
    """What an agent subgraph returns to the orchestrator."""

    status: Status
    iteration: int
    tool_calls: list[ToolCallRecord]
    findings: list[Finding]
    degraded: list[str]
    tokens: int
    analysis: FinalAnalysis | None


class AgentState(TypedDict):
    """The agent loop's working state."""

    alert: dict[str, Any]
    agent: str
    runbook: RunbookRecord | None
    status: NotRequired[Status]
    iteration: NotRequired[int]
    started_at: NotRequired[str]  # when the agent began (for max_duration)
    notes: NotRequired[str]  # the running analysis, rewritten by each partial analysis
    pending: NotRequired[list[dict[str, Any]]]  # tool calls chosen this iteration
    results: NotRequired[list[ToolCallRecord]]  # this iteration's results, with content
    tool_calls: Annotated[list[ToolCallRecord], operator.add]  # log of all calls, no content
    findings: Annotated[list[Finding], operator.add]
    degraded: NotRequired[list[str]]
    conclude: NotRequired[bool]
    stop_reason: NotRequired[StopReason | None]
    llm_call: NotRequired[LLMCallRecord]
    tokens: Annotated[int, operator.add]  # total tokens of the agent's model calls
    analysis: NotRequired[FinalAnalysis | None]
