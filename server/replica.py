"""This service process's share of the sessions, among replicas sharing one database.

`Replica` knows the sessions queued or running here (`mine`), runs each as a task of its
own, and, with leases (server/store/leases.py), keeps them: every third of a lease it
renews their leases, stops the ones another replica took over (it could not renew them in
time), and asks for the sessions it may take over. Without leases (no database, or the
command line) it only tracks them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from server.store.leases import Leases

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another replica took the session over while this one could not renew its lease."""


class Replica:
    def __init__(self, leases: Leases | None) -> None:
        self.leases = leases
        self.mine: set[str] = set()  # queued or running here
        self._tasks: dict[str, asyncio.Task[None]] = {}  # running here
        self._lost: set[str] = set()  # queued here, but another replica took them over

    def describe(self) -> dict[str, Any]:
        """For /health: this replica's id, whether it holds leases, its sessions here."""
        return {
            "id": self.leases.owner if self.leases is not None else None,
            "leases": self.leases is not None,
            "lease_seconds": self.leases.seconds if self.leases is not None else None,
            "sessions": len(self.mine),
        }

    def columns(self) -> dict[str, Any]:
        """The index columns that make a new session this replica's."""
        if self.leases is None:
            return {}
        return {"owner": self.leases.owner, "lease_expires_at": self.leases.expiry()}

    async def keep(self, sweep: Callable[[], Awaitable[None]]) -> None:
        """Every third of a lease: renew, stop what was taken over, then `sweep` (take
        over what may be taken). Runs until cancelled; returns at once without leases."""
        if self.leases is None:
            return
        while True:
            await asyncio.sleep(self.leases.seconds / 3)
            try:
                lost = await self.leases.renew(self.mine)
            except Exception as exc:
                log.warning("could not renew the leases of the running sessions: %s", exc)
                continue
            for session_id in lost:
                task = self._tasks.get(session_id)
                if task is not None:
                    task.cancel()
                else:  # still queued here: it must not start
                    self._lost.add(session_id)
            await sweep()

    async def run(self, session_id: str, work: Coroutine[Any, Any, None]) -> None:
        """`work` as a task of its own, cancelled when another replica took the session
        over (LeaseLost then); cancelling the caller cancels it too."""
        if session_id in self._lost:
            self._lost.discard(session_id)
            work.close()
            raise LeaseLost(session_id)
        task = asyncio.create_task(work, name=f"session-{session_id}")
        self._tasks[session_id] = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the worker stops: so does the session, here
            task.cancel()
            await asyncio.wait({task})
            raise
        finally:
            del self._tasks[session_id]
        if task.cancelled():
            raise LeaseLost(session_id)
        task.result()

    async def release(self) -> None:
        """Give up the unfinished sessions this replica holds: another replica, or this
        one's next start, resumes them at once."""
        if self.leases is None:
            return
        try:
            await self.leases.release()
        except Exception as exc:
            log.warning("could not release the leases of unfinished sessions: %s", exc)
