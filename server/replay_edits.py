"""The state changes a replay may make to the checkpoint it starts from: keys of the
orchestrator's state for an orchestrator checkpoint, of the agent's for an agent one."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, get_type_hints

from graph.state import AgentState, InvestigationState

StateEditor = Callable[[str, dict[str, Any]], None]
"""`edit(checkpoint_ns, channel_values)`, as `server.history.fork_lineage` calls it."""


@cache
def allowed_keys(namespace: str) -> frozenset[str]:
    """The state keys of the graph a checkpoint of `namespace` belongs to ('' is the
    orchestrator's)."""
    return frozenset(get_type_hints(AgentState if namespace else InvestigationState))


def state_editor(changes: dict[str, Any]) -> StateEditor:
    """Applies `changes` to the chosen checkpoint's values; a key its graph's state does
    not have is a ValueError that names the allowed ones."""

    def edit(namespace: str, values: dict[str, Any]) -> None:
        allowed = allowed_keys(namespace)
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(
                f"unknown state keys {unknown} for this checkpoint; allowed: {sorted(allowed)}"
            )
        values.update(changes)

    return edit
