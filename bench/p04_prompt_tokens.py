"""P4: prompt tokens per alert as iterations grow, against the naive design.

Ours: the real graph with the fixture MCP server (2 tools per iteration, 4 kB and 20 kB
results: the 20 kB one is over the 16 kB cap) and the scripted model recording every
request (`ScriptedChatModel.requests`): the prompt tokens of every model call of the alert
summed, tokens estimated as characters / 4 (the scripted model's own estimate).

Naive: the seed's design on the same scripted conversation, the same number of model
calls (select + analysis per iteration, one final): one growing message history — the
same system prompt, the same first user prompt (alert + runbook), then per iteration the
assistant's tool calls, every tool result uncapped, and the assistant's analysis — all
re-sent on every call. Linear growth: the marginal tokens of the last iterations over
those of the first (1.0 = linear; the naive design's grows with the history)."""

from __future__ import annotations

import json
from typing import Any

from bench.common import Plan, Result, growth, linear_fit, notes_text, scripted_model
from bench.harness import investigate, investigation_graph, make_context, mcp_toolbox
from bench.mcp_server import payload

ID = "P4"
TITLE = "prompt tokens per alert, 1→20 iterations, vs naive full history"
TARGET = "≤ 0.6× naive at 10 iterations, linear growth"


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def naive_tokens(plan: Plan, system: str, first_user: str) -> int:
    """Prompt tokens of the seed-style agent for the same conversation."""
    history: list[str] = [system, first_user]
    total = 0
    for iteration in range(1, plan.iterations + 1):
        total += tokens("\n".join(history))  # choose tools
        calls = plan.tool_calls(iteration)
        history.append(json.dumps([{"name": n, "args": a} for n, a in calls]))
        history += [payload(args["target"], args["size"]) for _, args in calls]
        total += tokens("\n".join(history))  # analyse the results
        history.append(notes_text(iteration, plan.notes_chars))
    total += tokens("\n".join(history))  # final analysis
    return total


async def measure(toolbox: Any, iterations: int) -> dict[str, Any]:
    plan = Plan(iterations=iterations, tools=2, latency=0.0, sizes=(4000, 20000))
    model = scripted_model(0.0, record=True)
    graph = investigation_graph(None)
    await investigate(graph, make_context(model, toolbox), plan)
    requests = model.requests
    ours = sum(tokens(r.text) for r in requests)
    first = requests[0]
    naive = naive_tokens(plan, first.messages[0].text, first.messages[1].text)
    largest = max(tokens(r.text) for r in requests)
    return {
        "iterations": iterations,
        "calls": len(requests),
        "ours": ours,
        "naive": naive,
        "ratio": round(ours / naive, 4),
        "largest_prompt_ours": largest,
    }


async def run(smoke: bool) -> Result:
    counts = [1, 2, 3] if smoke else [1, 2, 5, 10, 15, 20]
    rows = []
    async with mcp_toolbox() as toolbox:
        for n in counts:
            rows.append(await measure(toolbox, n))
    by_n = {r["iterations"]: r for r in rows}
    at = 10 if 10 in by_n else counts[-1]
    ratio = by_n[at]["ratio"]
    xs = [r["iterations"] for r in rows]
    ours_growth = growth(xs, [r["ours"] for r in rows])
    naive_growth = growth(xs, [r["naive"] for r in rows])
    _, slope, r2 = linear_fit(xs, [r["ours"] for r in rows])
    linear = ours_growth <= 1.25
    return Result(
        id=ID,
        title=TITLE,
        value=ratio,
        unit="× naive",
        target=TARGET,
        passed=(ratio <= 0.6 and linear) if not smoke else None,
        summary=f"at {at} iterations ours {by_n[at]['ours']:,} vs naive {by_n[at]['naive']:,} "
        f"tokens = {ratio:.2f}×; marginal growth ours {ours_growth:.2f} (naive "
        f"{naive_growth:.2f}); ~{slope:,.0f} tokens/iteration, r² {r2:.4f}",
        details={
            "rows": rows,
            "growth_ours": round(ours_growth, 3),
            "growth_naive": round(naive_growth, 3),
            "ours_tokens_per_iteration": round(slope, 1),
            "ours_linear_r2": round(r2, 5),
            "tool_output_bytes": [4000, 20000],
            "cap_bytes": 16384,
        },
    )
