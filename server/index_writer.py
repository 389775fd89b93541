"""Session-index updates, coalesced: the columns changed by all sessions in a short window
go to the database in one transaction.

With many investigations at once, a write transaction per progress event (iteration
started, agent selected) was a good part of the service's CPU. The index is not where
progress is read live — /processing-status and the event stream read memory — so those
updates may wait a few milliseconds and merge. A session's end is written at once
(`flush`), before anyone is told it finished. Updates the database refused (it is down)
are kept and written again, every few seconds, until it takes them: a session that ended
during an outage is recorded as ended once the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from server.retries import wait_after
from server.store import Store

log = logging.getLogger(__name__)

WINDOW = 0.05
"""Seconds updates gather before they are written."""


class IndexWriter:
    """`update` merges columns per session; a background flush writes them after `window`
    seconds, all sessions in one transaction; `flush` writes everything pending now.
    `on_error(exc)` / `on_ok()` report the database's state (the service's /health).
    `holder`: the replica writing, whose updates to sessions another replica holds now are
    dropped (server/store/fencing.py)."""

    def __init__(
        self,
        store: Store | None,
        *,
        on_error: Callable[[Exception], None],
        on_ok: Callable[[], None],
        window: float = WINDOW,
        holder: str | None = None,
    ) -> None:
        self.store, self.window, self.holder = store, window, holder
        self._on_error, self._on_ok = on_error, on_ok
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()  # batches are written in order, one at a time
        self._flusher: asyncio.Task[None] | None = None
        self._failures = 0  # flushes refused in a row
        self._closed = False

    def update(self, session_id: str, fields: dict[str, Any]) -> None:
        if self.store is None or not fields:
            return
        self._pending.setdefault(session_id, {}).update(fields)
        self._schedule(self.window)

    def _schedule(self, delay: float) -> None:
        if self._closed:
            return
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._later(delay), name="index-writer")

    async def _later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._flusher = None  # updates from now on schedule a flush of their own
        await self.flush()

    async def flush(self) -> None:
        """Write every pending update now (after a batch already being written)."""
        if self.store is None:
            return
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                missing = await self.store.update_sessions(batch, holder=self.holder)
            except Exception as exc:
                self._on_error(exc)
                for session_id, fields in batch.items():  # newer updates win
                    self._pending[session_id] = {**fields, **self._pending.get(session_id, {})}
                self._failures += 1
                self._schedule(wait_after(self._failures))
                return
            self._failures = 0
            self._on_ok()
            if missing:
                log.warning(
                    "index update not written for sessions %s: unknown, or another replica "
                    "runs them now",
                    ", ".join(missing),
                )

    async def aclose(self) -> None:
        """Write what is pending and stop (what the database refuses now is left to the
        recovery of the sessions at the next start)."""
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
