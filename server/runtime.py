"""What the running service holds (built by `open_runtime`): services, database, checkpoints,
event log, metrics and the investigation workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.checkpoints import open_checkpointer
from graph.models import ModelChoice
from graph.registry import AgentRegistry
from graph.services import Services, open_services
from graph.settings import Settings
from graph.thread_fence import ThreadFence
from server.eventlog import EventLog
from server.manager import Investigations
from server.metrics import Metrics
from server.store import Store
from server.store.fencing import CheckpointFence
from server.store.notices import EventNotices

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 3600


@dataclass
class ServiceRuntime:
    settings: Settings
    services: Services
    store: Store | None
    store_error: str | None
    saver: BaseCheckpointSaver[Any] | None
    events: EventLog
    investigations: Investigations

    @property
    def metrics(self) -> Metrics:
        return self.investigations.metrics

    def database_status(self) -> dict[str, Any]:
        if not self.settings.history_enabled:
            return {"status": "disabled", "url": None, "error": None}
        error = self.store_error or self.investigations.store_error or self.events.write_error
        return {
            "status": "down" if error else "up",
            "url": self.store.url if self.store else None,
            "error": error,
        }


async def _open_store(settings: Settings) -> tuple[Store | None, str | None]:
    if not settings.history_enabled:
        return None, None
    try:
        return await Store.open(settings.history_database_url), None
    except Exception as exc:  # investigations still run; /health says why
        log.error("session index unavailable (%s): running without history", exc)
        return None, f"{type(exc).__name__}: {exc}"


@contextlib.asynccontextmanager
async def _open_saver(
    settings: Settings, write_lock: asyncio.Lock, fence: ThreadFence | None
) -> AsyncIterator[BaseCheckpointSaver[Any] | None]:
    if not settings.history_enabled:
        yield None
        return
    try:
        opened = open_checkpointer(
            settings.history_database_url, write_lock=write_lock, fence=fence
        )
        saver = await opened.__aenter__()
    except Exception as exc:  # investigations still run, without durable checkpoints
        from langgraph.checkpoint.memory import InMemorySaver

        log.error("checkpoint database unavailable (%s): checkpoints kept in memory", exc)
        yield InMemorySaver()
        return
    try:
        yield saver
    finally:
        await opened.__aexit__(None, None, None)


async def _retention(investigations: Investigations, days: int) -> None:
    while True:
        try:
            removed = await investigations.prune(days)
            if removed:
                log.info("retention: removed %d sessions older than %d days", removed, days)
        except Exception as exc:
            log.warning("retention pass failed: %s", exc)
        await asyncio.sleep(RETENTION_INTERVAL_SECONDS)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    registry: AgentRegistry | None = None,
    chat_model: tuple[ModelChoice, BaseChatModel] | None = None,
    recover: bool = True,
) -> AsyncIterator[ServiceRuntime]:
    """Open model, MCP sessions, database, checkpoints, event log and workers; close them
    in order. `recover` (the service) resumes sessions left unfinished, and leaves its own
    unfinished ones to be resumed when it stops; without it (the CLI) a session still
    running when the runtime closes (Ctrl-C) ends failed, saying so."""
    async with open_services(
        settings,
        registry=registry,
        chat_model=chat_model,
        log_dir=Path("data/logs"),
        wait_for_servers=False,  # they come up while the database opens
    ) as services:
        store, store_error = await _open_store(settings)
        write_lock = asyncio.Lock()  # one writer at a time on a SQLite file (index + checkpoints)
        if store is not None:
            store.write_lock = write_lock
        try:
            holder, fence, notices = None, None, None
            if recover and store is not None:  # the service, with leases: its replica id
                # fences what it writes for a session another replica took over
                # (server/store/fencing.py), and its streams of sessions running elsewhere
                # follow the notices of other replicas (server/store/notices.py)
                holder = settings.replica_id
                fence = CheckpointFence(holder)
                notices = EventNotices.for_store(store)
            async with _open_saver(settings, write_lock, fence) as saver:
                event_log = EventLog(store, holder=holder, notices=notices)
                await event_log.start()
                investigations = Investigations(
                    services,
                    saver=saver,
                    store=store,
                    events=event_log,
                    max_concurrent=settings.max_concurrent_alerts,
                    max_queued=settings.max_queued_alerts,
                    resumable=recover,
                )
                await services.toolbox.ready()
                await investigations.start()
                retention = asyncio.create_task(
                    _retention(investigations, settings.history_retention_days)
                )
                try:
                    yield ServiceRuntime(
                        settings, services, store, store_error, saver, event_log, investigations
                    )
                finally:
                    retention.cancel()
                    await investigations.stop()
                    await event_log.aclose()
        finally:
            if store is not None:
                await store.close()
