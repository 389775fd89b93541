"""Resuming unfinished sessions: at start-up, those left queued or processing by an
earlier start; then, among replicas sharing one database, keeping this replica's leases
and taking over the sessions of a replica whose leases ran out (server/replica.py).

A session a command-line run started is never resumed here: it ran with the CLI's own
configuration, and may still be running."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.mcp_errors import describe_error
from server.eventlog import EventLog
from server.replica import Replica
from server.session_index import SessionIndex
from server.session_run import Job, SessionRun
from server.store import SessionRecord, Store

log = logging.getLogger(__name__)


def cli_session(record: SessionRecord) -> bool:
    """Started by a command-line run: never resumed by the service."""
    return record.session_metadata.get("resumable") is False


class Recovery:
    """Queues (`queue`) the unfinished sessions this replica is to run, each from its last
    checkpoint; a session that cannot be resumed ends failed, saying why."""

    def __init__(
        self,
        *,
        store: Store,
        saver: BaseCheckpointSaver[Any] | None,
        sessions: SessionIndex,
        events: EventLog,
        replica: Replica,
        session_run: SessionRun,
        model_label: str,
        model_factory: Callable[[str], tuple[BaseChatModel, str]],
        queue: Callable[[Job], None],
    ) -> None:
        self.store, self.saver, self.sessions, self.events = store, saver, sessions, events
        self.replica, self.session_run = replica, session_run
        self.model_label, self.model_factory, self.queue = model_label, model_factory, queue

    async def sweep(self, *, first: bool) -> None:
        """Queue what this replica may run: `first`, at start-up, its own sessions and
        those nobody holds; later (every third of a lease), those whose leases ran out."""
        try:
            leases = self.replica.leases
            if leases is None:
                unfinished = everything = await self.store.unfinished_sessions()
            else:
                unfinished = await leases.claim(
                    besides=self.replica.mine, unless=cli_session, own=first
                )
                # at start-up, the command line's too: to say they are left alone
                everything = await self.store.unfinished_sessions() if first else []
        except Exception as exc:
            self.sessions.failed(exc)
            return
        if first:
            for record in everything:
                if cli_session(record):
                    log.warning(
                        "session %s is not resumed: a command-line run started it, with its "
                        "own configuration (it may still be running)",
                        record.session_id,
                    )
        for record in unfinished:
            if cli_session(record):
                continue
            try:
                await self._resume(record)
            except Exception as exc:  # end this one, resume the others
                log.exception("session %s could not be resumed", record.session_id)
                state = self.sessions.remember(record)  # the one held, if it is
                reason = f"cannot resume after a restart: {describe_error(exc)}"
                try:
                    await self.session_run.fail(state, reason)
                except Exception:
                    log.exception("session %s: its failure could not be recorded", state.session_id)

    async def _resume(self, record: SessionRecord) -> None:
        """Queue an unfinished session: from its last checkpoint, or from its alert when it
        has none."""
        state = self.sessions.remember(record)
        has_checkpoint = (
            self.saver is not None
            and await self.saver.aget_tuple({"configurable": {"thread_id": record.session_id}})
            is not None
        )
        model, model_name = None, None
        if record.model and record.model != self.model_label:
            try:
                model, model_name = self.model_factory(record.model)
            except Exception as exc:  # e.g. its key is gone
                await self.session_run.fail(
                    state, f"cannot resume after a restart: model {record.model}: {exc}"
                )
                return
        log.info(
            "resuming session %s (%s)",
            record.session_id,
            "from its last checkpoint" if has_checkpoint else "from the start",
        )
        state.status, state.current_step = "queued", "resuming"
        await self.events.open(record.session_id)
        self.queue(
            Job(record.session_id, None if has_checkpoint else record.alert_data, model, model_name)
        )
