"""For tests that run `sre-agent serve` as a process (tests/soak/harness.py): the
environment it runs with, and what its history database says afterwards."""

from __future__ import annotations

from pathlib import Path

import httpx

from server.store import Store
from tests.fakes.chat_completions import FakeChatCompletions
from tests.soak.harness import ServiceProcess


def database_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'history.db'}"


def service_env(
    fake: FakeChatCompletions, workdir: Path, config: Path, **extra: str
) -> dict[str, str]:
    return {
        "LLM_MODEL": "openai:fake",
        "LLM_BASE_URL": fake.base_url,
        "LLM_MAX_RETRIES": "1",
        "LLM_TIMEOUT": "10",
        "HISTORY_DATABASE_URL": database_url(workdir),
        "SRE_AGENT_CONFIG": str(config),
        **extra,
    }


async def index_statuses(url: str) -> dict[str, str]:
    store = await Store.open(url)
    try:
        records, _ = await store.list_sessions(page_size=100)
    finally:
        await store.close()
    return {r.session_id: r.status for r in records}


async def announced_iterations(url: str, session_ids: list[str]) -> dict[str, list[int]]:
    """The iterations each session's stored event stream announced, in order."""
    store = await Store.open(url)
    try:
        return {
            sid: [
                event["iteration"]
                for _, event in await store.events_after(sid)
                if event["type"] == "iteration_started"
            ]
            for sid in session_ids
        }
    finally:
        await store.close()


async def checkpointed_sessions(service: ServiceProcess, session_ids: list[str]) -> int:
    """How many sessions have tool results in their (checkpoint-built) timeline."""
    count = 0
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        for sid in session_ids:
            detail = (await client.get(f"/api/v1/history/sessions/{sid}")).json()
            if any(e["type"] == "mcp_communication" for e in detail["timeline"]):
                count += 1
    return count
