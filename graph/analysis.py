"""What the model must return at the partial and final analysis steps (structured output),
and the Markdown report of a final analysis."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from graph.state import FinalAnalysis, ToolCallRecord


class Schema(BaseModel):
    """A model answer schema whose JSON schema is generated once per class and options.
    LangChain converts the schema on every structured call (for its tracing metadata),
    and pydantic's generation costs about half a millisecond each time."""

    _json_schemas: ClassVar[dict[tuple[Any, ...], dict[str, Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._json_schemas = {}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in cls._json_schemas:
            cls._json_schemas[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(cls._json_schemas[key])  # callers may change what they get


class PartialAnalysis(Schema):
    """The running analysis after an iteration, and whether to stop investigating."""

    analysis: str = Field(description="What is established (with refs), ruled out, unknown.")
    conclude: bool = Field(description="True when the root cause is identified or no tool helps.")


class EvidenceItem(Schema):
    finding: str = Field(description="A fact observed in the data.")
    tool_call: str = Field(description='The ref of the tool call showing it (e.g. "T1.2").')


class RootCauseAnalysis(Schema):
    """The final root-cause analysis of the alert."""

    summary: str = Field(description="Two or three sentences for the on-call engineer.")
    root_cause: str
    evidence: list[EvidenceItem] = Field(default_factory=list)
    remediation: list[str] = Field(default_factory=list, description="Steps, safest first.")
    confidence: Literal["low", "medium", "high"]


def render_markdown(analysis: FinalAnalysis, tool_calls: Sequence[ToolCallRecord] = ()) -> str:
    """The final analysis as a Markdown report."""
    by_ref = {call["ref"]: call for call in tool_calls}
    lines = ["## Summary", analysis["summary"], "", "## Root cause", analysis["root_cause"], ""]
    lines.append("## Evidence")
    for item in analysis["evidence"] or []:
        call = by_ref.get(item["tool_call"])
        source = f"`{item['tool_call']}`"
        if call is not None:
            source += f" {call['tool']}"
        lines.append(f"- {item['finding']} ({source})")
    if not analysis["evidence"]:
        lines.append("- none cited")
    lines += ["", "## Remediation"]
    lines += [f"{n}. {step}" for n, step in enumerate(analysis["remediation"], 1)] or ["- none"]
    reason = {
        "model_concluded": "the agent concluded",
        "max_iterations": "iteration limit reached",
        "no_tools": "no tools were available",
        "max_tokens": "token budget reached",
        "max_duration": "time budget reached",
    }[analysis["stop_reason"]]
    lines += [
        "",
        f"**Confidence:** {analysis['confidence']} · {analysis['iterations']} "
        f"iteration(s) · {reason}",
    ]
    return "\n".join(lines)
