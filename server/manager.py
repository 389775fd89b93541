"""Runs investigations in background tasks: a bounded queue in front of
MAX_CONCURRENT_ALERTS workers, events into the event log, status into the index.

A client never runs an investigation: disconnecting from a stream cannot cancel one. On
shutdown the workers stop where they are (the last checkpoint); on start, sessions left
queued or processing resume from their last checkpoint.

Replicas (service processes sharing one database) each run the sessions they hold a lease
on (server/store/leases.py), renew those leases while they run, and take over the sessions
of a replica whose leases ran out (server/recovery.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.alert import Alert
from graph.builder import build_investigation_graph
from graph.demo_model import demo_model
from graph.events import EventType, make_event
from graph.models import DEMO_LABEL, build_chat_model, choose_model
from graph.services import Services
from server.eventlog import EventLog
from server.history import fork_lineage
from server.key_locks import KeyedLocks
from server.logging_setup import log_context
from server.metrics import Metrics
from server.recovery import Recovery
from server.replay_edits import state_editor
from server.replica import LeaseLost, Replica
from server.session_index import SessionIndex
from server.session_run import Job, SessionRun
from server.sessions import SessionState, now
from server.store import DuplicateSession, Store
from server.store.leases import Leases

log = logging.getLogger(__name__)


INTERRUPTED = "interrupted: the command stopped before the investigation finished"


class QueueFull(RuntimeError):
    """Too many investigations are running or waiting; retry later."""


class Investigations:
    """The service's investigation engine."""

    def __init__(
        self,
        services: Services,
        *,
        saver: BaseCheckpointSaver[Any] | None,
        store: Store | None,
        events: EventLog,
        max_concurrent: int,
        max_queued: int,
        model_factory: Callable[[str], tuple[BaseChatModel, str]] | None = None,
        metrics: Metrics | None = None,
        resumable: bool = True,
    ) -> None:
        """`resumable=False` (the CLI): it resumes no session at start, the sessions started
        here are never resumed by another process (they run with this process's
        configuration), and they end failed, "interrupted", when it stops before they
        finish."""
        self.services = services
        self.resumable = resumable
        self.saver = saver
        self.store = store
        self.events = events
        self.graph = build_investigation_graph(services.registry, checkpointer=saver)
        self.max_concurrent = max_concurrent
        self.capacity = max_concurrent + max_queued
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._reserved = 0
        self._running = 0
        self._workers: list[asyncio.Task[None]] = []
        self._model_factory = model_factory or self._build_model
        self._running_ids: set[str] = set()
        self._recovery: asyncio.Task[None] | None = None
        self.recovered = asyncio.Event()  # set once the start-up recovery has queued its sessions
        settings = services.settings
        self.replica = Replica(
            Leases(store, settings.replica_id, settings.session_lease_seconds)
            if store is not None and resumable
            else None
        )
        leases = self.replica.leases
        self.sessions = SessionIndex(store, holder=leases.owner if leases is not None else None)
        self._key_locks = KeyedLocks()
        self.metrics = metrics or Metrics()
        self.metrics.track_load(self.load)
        self._session_run = SessionRun(
            self.graph, services, sessions=self.sessions, events=events, metrics=self.metrics
        )
        self._resumer = (
            Recovery(
                store=store,
                saver=saver,
                sessions=self.sessions,
                events=events,
                replica=self.replica,
                session_run=self._session_run,
                model_label=services.model_choice.label,
                model_factory=self._model_factory,
                queue=self._requeue,
            )
            if store is not None
            else None
        )

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers; a resumable engine (the service) also resumes the sessions
        left unfinished by an earlier start."""
        self._workers = [
            asyncio.create_task(self._work(), name=f"investigator-{n}")
            for n in range(self.max_concurrent)
        ]
        if self.resumable:  # in the background: a large backlog must not keep the port closed
            self._recovery = asyncio.create_task(self._keep_leases(), name="recover-sessions")

    async def stop(self) -> None:
        """Stop now. Running and queued sessions stay at their last checkpoint and resume on
        the next start, or, not resumable (the CLI), end failed as interrupted."""
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        unfinished = list(self._running_ids)
        while not self._queue.empty():
            unfinished.append(self._queue.get_nowait().session_id)
        self.metrics.load_changed()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()
        await self.replica.release()  # another replica, or the next start, resumes them
        if not self.resumable:
            for session_id in unfinished:
                state = self.sessions.held(session_id)
                if state is not None and state.status not in ("completed", "failed"):
                    await self._session_run.fail(state, INTERRUPTED, level=logging.INFO)
        await self.sessions.aclose()

    async def _keep_leases(self) -> None:
        """Resume what this replica may run; then keep its sessions, and take over those
        of replicas whose leases ran out (server/recovery.py)."""
        resumer = self._resumer
        if resumer is not None:
            await resumer.sweep(first=True)
        self.recovered.set()
        if resumer is not None:
            await self.replica.keep(lambda: resumer.sweep(first=False))

    def _requeue(self, job: Job) -> None:
        """Queue a resumed session (recovery): it counts against the capacity, but is
        never refused."""
        self._reserved += 1
        self._enqueue(job)

    # --- submitting -----------------------------------------------------------------

    def _reserve(self) -> None:
        if self._reserved >= self.capacity:
            raise QueueFull(
                f"{self._reserved} investigations are running or queued (capacity {self.capacity})"
            )
        self._reserved += 1

    async def submit(
        self,
        alert: Alert,
        *,
        idempotency_key: str | None = None,
        source: str = "api",
        fingerprint: str | None = None,
    ) -> tuple[SessionState, bool]:
        """Queue an investigation; returns (session, created). Raises QueueFull.
        `source` (api, alertmanager, cli) labels the alert in the metrics; `fingerprint`
        (the alert's identity at its source) is stored with the session."""
        self.metrics.alert_received(source)
        if not idempotency_key:
            return await self._submit(alert, None, source, fingerprint)
        # one submission per key at a time: a retry racing the original gets its session
        async with self._key_locks.hold(idempotency_key):
            existing = self.sessions.held_for_key(idempotency_key)
            if existing is None:
                # a key this process does not hold is new, or the index has its session (from
                # before a restart, or another replica's): the index's unique key tells, in
                # the insert itself, so a new alert costs no read first
                try:
                    return await self._submit(alert, idempotency_key, source, fingerprint)
                except DuplicateSession as duplicate:
                    if duplicate.field != "idempotency_key" or duplicate.existing is None:
                        raise
                    existing = self.sessions.view(duplicate.existing)
                except QueueFull:  # a retry of an alert already taken is answered all the same
                    existing = await self.sessions.for_key(idempotency_key)
                    if existing is None:
                        raise
        self.metrics.alert_deduplicated(source)
        return existing, False

    async def _submit(
        self, alert: Alert, idempotency_key: str | None, source: str, fingerprint: str | None
    ) -> tuple[SessionState, bool]:
        self._reserve()
        try:
            state = SessionState(
                session_id=str(uuid.uuid4()),
                alert_id=str(uuid.uuid4()),
                alert_type=alert.alert_type,
                model=self.services.model_choice.label,
            )
            data = alert.to_state()
            self.replica.mine.add(state.session_id)  # before its row exists: no sweep claims it
            await self.sessions.create(
                state,
                data,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                session_metadata=self._metadata(),
                **self.replica.columns(),
            )
        except BaseException:
            self._reserved -= 1
            self.replica.mine.discard(state.session_id)
            raise
        await self.events.open(state.session_id, new=True)
        self._enqueue(Job(state.session_id, data))
        return state, True

    async def replay(
        self,
        session_id: str,
        *,
        checkpoint_id: str,
        state_changes: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> SessionState:
        """Re-run a session from one of its checkpoints as a new, linked session."""
        if self.saver is None:
            raise ValueError("replay needs the history (HISTORY_ENABLED=true)")
        parent = await self.sessions.get(session_id)
        record = await self.sessions.record(session_id)
        alert_data = record.alert_data if record is not None else {}
        built_model, model_name = self._model_factory(model) if model else (None, None)
        self.metrics.alert_received("replay")
        self._reserve()
        try:
            new = SessionState(
                session_id=str(uuid.uuid4()),
                alert_id=str(uuid.uuid4()),
                alert_type=parent.alert_type,
                model=model_name or self.services.model_choice.label,
            )
            self.replica.mine.add(new.session_id)  # before its row exists: no sweep claims it
            await fork_lineage(
                self.saver,
                source_thread=session_id,
                target_thread=new.session_id,
                checkpoint_id=checkpoint_id,
                edit=state_editor(state_changes) if state_changes else None,
            )
            await self.sessions.create(
                new,
                alert_data,
                parent_session_id=session_id,
                parent_checkpoint_id=checkpoint_id,
                session_metadata=self._metadata(),
                **self.replica.columns(),
            )
        except BaseException:
            self._reserved -= 1
            self.replica.mine.discard(new.session_id)
            raise
        await self.events.open(new.session_id, new=True)
        self._enqueue(Job(new.session_id, None, built_model, model_name))
        return new

    def _metadata(self) -> dict[str, Any]:
        return {} if self.resumable else {"resumable": False}

    def _enqueue(self, job: Job) -> None:
        self.replica.mine.add(job.session_id)
        self._queue.put_nowait(job)
        self.metrics.load_changed()

    def _build_model(self, name: str) -> tuple[BaseChatModel, str]:
        if name == DEMO_LABEL:
            return demo_model(self.services.settings.demo_model_latency), DEMO_LABEL
        settings = self.services.settings.model_copy(update={"llm_model": name})
        choice = choose_model(settings)
        return build_chat_model(choice, settings), choice.label

    # --- running ----------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._running += 1
            self._running_ids.add(job.session_id)
            self.metrics.load_changed()
            try:
                with log_context(job.session_id):
                    await self.replica.run(job.session_id, self._session_run(job))
            except LeaseLost:
                log.warning(
                    "session %s: another replica took it over (this one could not renew its "
                    "lease); stopped here",
                    job.session_id,
                )
                self.sessions.forget(job.session_id)  # read from the index from now on
                with contextlib.suppress(Exception):
                    await self.events.let_go(job.session_id)
            except Exception as exc:
                log.exception("session %s: unexpected failure", job.session_id)
                state = self.sessions.held(job.session_id)
                if state is not None and state.status not in ("completed", "failed"):
                    with contextlib.suppress(Exception):  # not "processing" until a restart
                        await self._session_run.fail(state, f"unexpected failure: {exc!r}")
            finally:
                self._running -= 1
                self._running_ids.discard(job.session_id)
                self.replica.mine.discard(job.session_id)
                self._reserved -= 1
                self.metrics.load_changed()

    async def missing_terminal_event(self, session_id: str) -> dict[str, Any] | None:
        """The terminal event of a session the index says finished but which no worker here
        is running (its event was lost to a crash); None while it may still run."""
        if session_id in self._running_ids:
            return None
        record = await self.sessions.record(session_id)
        if record is None or record.status not in ("completed", "failed"):
            return None
        kind = (
            EventType.SESSION_COMPLETED
            if record.status == "completed"
            else EventType.SESSION_FAILED
        )
        return make_event(
            kind,
            agent=record.agent_type,
            error=record.error_message,
            analysis=record.result,
            recovered=True,
        )

    async def wait(self, session_id: str) -> SessionState:
        """Wait until a session this process runs has finished."""
        return await self.sessions.wait(session_id)

    # --- lookups ----------------------------------------------------------------------

    @property
    def store_error(self) -> str | None:
        """Why the session index is unavailable, while it is."""
        return self.sessions.error

    async def session(self, session_id: str) -> SessionState:
        """A session by id (memory first, then the index); raises UnknownSession."""
        return await self.sessions.get(session_id)

    async def session_for_alert(self, alert_id: str) -> SessionState:
        return await self.sessions.for_alert(alert_id)

    async def session_for_fingerprint(self, fingerprint: str) -> SessionState | None:
        return await self.sessions.for_fingerprint(fingerprint)

    def load(self) -> dict[str, int]:
        return {
            "running": self._running,
            "queued": self._queue.qsize(),
            "capacity": self.capacity,
            "max_concurrent": self.max_concurrent,
        }

    async def prune(self, days: int) -> int:
        """Drop sessions (index, events, checkpoints) older than `days`."""
        if self.store is None:
            return 0
        removed = await self.store.prune(now() - timedelta(days=days))
        for session_id in removed:
            self.sessions.forget(session_id)
            if self.saver is not None:
                await self.saver.adelete_thread(session_id)
        return len(removed)
