"""The history, read from the graph's checkpoints: the list of checkpoints of a session
(orchestrator and agent subgraph), its chronological timeline of LLM and MCP
interactions, and the copy of a checkpoint's lineage that a replay starts from.

Each checkpoint's pending writes are the outputs of the node that ran from it; the
`branch:to:<node>` writes of a checkpoint name the node that runs from its child."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

BRANCH_PREFIX = "branch:to:"


class CheckpointNotFound(LookupError):
    pass


class NothingToReplay(ValueError):
    """The checkpoint is the end of its graph: no step runs after it."""


@dataclass(frozen=True)
class CheckpointInfo:
    checkpoint_id: str
    checkpoint_ns: str
    graph: str  # "orchestrator" or the agent subgraph's name
    parent_checkpoint_id: str | None
    step: int
    source: str
    created_at: str
    node: str | None  # the node that ran (or runs next) from this checkpoint
    summary: str


def _ids(tup: CheckpointTuple) -> tuple[str, str]:
    conf = tup.config["configurable"]
    return conf.get("checkpoint_ns", ""), conf["checkpoint_id"]


def _parent_id(tup: CheckpointTuple) -> str | None:
    if tup.parent_config is None:
        return None
    return tup.parent_config["configurable"].get("checkpoint_id")


def _writes(tup: CheckpointTuple) -> dict[str, Any]:
    return {channel: value for _, channel, value in tup.pending_writes or []}


async def load_checkpoints(
    saver: BaseCheckpointSaver[Any], thread_id: str
) -> list[CheckpointTuple]:
    """All checkpoints of a thread, every namespace, oldest first (ids are time-ordered)."""
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}})]
    return sorted(tuples, key=lambda t: _ids(t)[1])


_TIMELINE_CHANNELS = ("llm_call", "results")
_SQLITE_TIMELINE_WRITES = (
    "SELECT checkpoint_ns, checkpoint_id, task_id, channel, type, value FROM writes "
    "WHERE thread_id = ? AND channel IN ('llm_call', 'results') "
    "ORDER BY checkpoint_id, task_id, idx"
)


async def load_interactions(
    saver: BaseCheckpointSaver[Any], thread_id: str
) -> list[CheckpointTuple]:
    """What `build_timeline` needs — the `llm_call` and `results` writes — read in one query
    where the saver allows it (SQLite), instead of deserializing every full checkpoint."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if not isinstance(saver, AsyncSqliteSaver):
        return await load_checkpoints(saver, thread_id)
    async with saver.lock, saver.conn.execute(_SQLITE_TIMELINE_WRITES, (thread_id,)) as cursor:
        rows = await cursor.fetchall()
    grouped: dict[tuple[str, str], list[tuple[str, str, Any]]] = defaultdict(list)
    for ns, cid, task, channel, type_, value in rows:
        grouped[(ns, cid)].append((task, channel, saver.serde.loads_typed((type_, value))))
    return [
        CheckpointTuple(
            config={
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
            },
            checkpoint={},  # type: ignore[typeddict-item]
            metadata={},
            parent_config=None,
            pending_writes=writes,
        )
        for (ns, cid), writes in grouped.items()
    ]


def _node_map(tuples: list[CheckpointTuple]) -> dict[tuple[str, str], str | None]:
    """(ns, checkpoint id) → the node that runs from that checkpoint."""
    by_key = {_ids(t): t for t in tuples}
    nodes: dict[tuple[str, str], str | None] = {}
    for tup in tuples:
        ns, cid = _ids(tup)
        parent = by_key.get((ns, _parent_id(tup) or ""))
        if parent is None:
            nodes[(ns, cid)] = "__start__" if tup.metadata.get("source") == "input" else None
            continue
        targets = [c[len(BRANCH_PREFIX) :] for c in _writes(parent) if c.startswith(BRANCH_PREFIX)]
        nodes[(ns, cid)] = targets[0] if targets else None
    return nodes


def _clip(text: str, width: int = 140) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def summarize(node: str | None, writes: dict[str, Any]) -> str:
    """One line saying what the node did at this checkpoint (or that it is still to run)."""
    if node is None:
        return "end"
    if not writes:
        return f"next: {node}"
    if node == "__start__":
        return "input received"
    if node == "route":
        return (
            f"failed: {writes.get('error')}"
            if writes.get("status") == "failed"
            else (f"routed to agent {writes.get('agent')}")
        )
    if node == "fetch_runbook":
        runbook = writes.get("runbook") or {}
        if runbook.get("error"):
            return f"runbook unavailable: {runbook['error']}"
        return f"runbook {runbook.get('source')} ({runbook.get('size')} bytes)"
    if node == "select_tools":
        chosen = [call["name"] for call in writes.get("pending") or []]
        prefix = f"iteration {writes.get('iteration')}: "
        return prefix + (f"chose {', '.join(chosen)}" if chosen else "concluded without tools")
    if node == "execute_tools":
        results = writes.get("results") or []
        return "ran " + ", ".join(f"{r['ref']} {r['tool']} ({r['status']})" for r in results)
    if node == "partial_analysis":
        suffix = " (concluded)" if writes.get("conclude") else ""
        return _clip(writes.get("notes", "")) + suffix
    if node == "final_analysis":
        analysis = writes.get("analysis") or {}
        return "root cause: " + _clip(analysis.get("root_cause", ""))
    if "status" in writes:
        return f"agent finished: {writes['status']}"
    return f"{node} ran"


def describe_checkpoints(tuples: list[CheckpointTuple]) -> list[CheckpointInfo]:
    nodes = _node_map(tuples)
    infos = []
    for tup in tuples:
        ns, cid = _ids(tup)
        node = nodes[(ns, cid)]
        infos.append(
            CheckpointInfo(
                checkpoint_id=cid,
                checkpoint_ns=ns,
                graph=ns.split(":", 1)[0] if ns else "orchestrator",
                parent_checkpoint_id=_parent_id(tup),
                step=int(tup.metadata.get("step", -1)),
                source=str(tup.metadata.get("source", "")),
                created_at=tup.checkpoint["ts"],
                node=node,
                summary=summarize(node, _writes(tup)),
            )
        )
    return infos


def build_timeline(tuples: list[CheckpointTuple]) -> list[dict[str, Any]]:
    """Every LLM interaction and MCP communication, in chronological order."""
    entries: list[dict[str, Any]] = []
    for tup in tuples:
        _, cid = _ids(tup)
        for _, channel, value in tup.pending_writes or []:
            if channel == "llm_call" and value:
                entries.append(
                    {
                        "type": "llm_interaction",
                        "timestamp": value["started_at"],
                        "checkpoint_id": cid,
                        "step": value["step"],
                        "iteration": value["iteration"],
                        "model": value["model"],
                        "messages": value["messages"],
                        "response": value["response"],
                        "tool_calls": value["tool_calls"],
                        "token_usage": value["usage"],
                        "duration_ms": value["duration_ms"],
                    }
                )
            elif channel == "results":
                for result in value or []:
                    ok = result["status"] == "ok"
                    entries.append(
                        {
                            "type": "mcp_communication",
                            "timestamp": result["started_at"],
                            "checkpoint_id": cid,
                            "step": "execute_tools",
                            "iteration": result["iteration"],
                            "ref": result["ref"],
                            "server": result["server"],
                            "tool": result["tool"],
                            "arguments": result["args"],
                            "result": result.get("content", ""),
                            "status": result["status"],
                            "success": ok,
                            "error": None if ok else result.get("content", ""),
                            "size": result["size"],
                            "truncated": result["truncated"],
                            "masked": result.get("masked", 0),
                            "duration_ms": result["duration_ms"],
                        }
                    )
    entries.sort(key=lambda e: e["timestamp"])
    return entries


def _lineage(
    by_key: dict[tuple[str, str], CheckpointTuple], tup: CheckpointTuple
) -> list[CheckpointTuple]:
    chain = [tup]
    ns, _ = _ids(tup)
    while (parent := by_key.get((ns, _parent_id(chain[-1]) or ""))) is not None:
        chain.append(parent)
    return chain[::-1]


async def fork_lineage(
    saver: BaseCheckpointSaver[Any],
    *,
    source_thread: str,
    target_thread: str,
    checkpoint_id: str,
    edit: Callable[[str, dict[str, Any]], None] | None = None,
) -> CheckpointInfo:
    """Copy `checkpoint_id` and its ancestors into `target_thread`, without the outputs of
    the steps that ran from it, so resuming the target thread re-runs only later steps.

    For an agent-subgraph checkpoint, the orchestrator's checkpoints up to the one that
    started the agent are copied too, so the orchestrator resumes into the subgraph.
    `edit(namespace, channel_values)` may change the chosen checkpoint's state first."""
    tuples = await load_checkpoints(saver, source_thread)
    chosen = next((t for t in tuples if _ids(t)[1] == checkpoint_id), None)
    if chosen is None:
        raise CheckpointNotFound(checkpoint_id)
    info = next(i for i in describe_checkpoints(tuples) if i.checkpoint_id == checkpoint_id)
    if info.node is None:
        raise NothingToReplay(
            f"checkpoint {checkpoint_id} is the end of the {info.graph} graph: pick an earlier one"
        )
    by_key = {_ids(t): t for t in tuples}
    chains = []
    ns, _ = _ids(chosen)
    sub_chain = _lineage(by_key, chosen)
    if ns:
        first_sub = _ids(sub_chain[0])[1]
        spawner = max(
            (t for t in tuples if not _ids(t)[0] and _ids(t)[1] < first_sub),
            key=lambda t: _ids(t)[1],
        )
        chains.append(_lineage(by_key, spawner))
    chains.append(sub_chain)
    for chain in chains:
        for tup in chain:
            tns, cid = _ids(tup)
            checkpoint: dict[str, Any] = dict(tup.checkpoint)
            is_tip = tup is chain[-1]
            if tup is chosen and edit is not None:
                values = dict(checkpoint.get("channel_values", {}))
                edit(tns, values)
                checkpoint["channel_values"] = values
            config: Any = {
                "configurable": {
                    "thread_id": target_thread,
                    "checkpoint_ns": tns,
                    "checkpoint_id": _parent_id(tup),
                }
            }
            await saver.aput(
                config,
                checkpoint,  # type: ignore[arg-type]
                tup.metadata,
                dict(checkpoint["channel_versions"]),
            )
            if is_tip:
                continue  # the steps after the fork point run again
            grouped: dict[str, list[tuple[str, Any]]] = defaultdict(list)
            for task_id, channel, value in tup.pending_writes or []:
                grouped[task_id].append((channel, value))
            target: Any = {
                "configurable": {
                    "thread_id": target_thread,
                    "checkpoint_ns": tns,
                    "checkpoint_id": cid,
                }
            }
            for task_id, writes in grouped.items():
                await saver.aput_writes(target, writes, task_id)
    return info
