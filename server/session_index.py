"""The sessions a service knows: the live state of those it runs or ran lately, in memory,
found by session id, alert id, Idempotency-Key or alert fingerprint, with the session
index (the database) behind it for everything else.

Memory stays bounded: of the finished sessions, the last FINISHED_IN_MEMORY are kept; the
older ones are read back from the index when asked for. The index may be unavailable:
the service then goes on from memory and reports why (`error`, shown by /health)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from server.index_writer import IndexWriter
from server.sessions import SessionState, now
from server.store import DuplicateSession, SessionRecord, Store

log = logging.getLogger(__name__)

_LIVE_ONLY = frozenset({"progress", "current_step"})
FINISHED_IN_MEMORY = 1000  # finished sessions kept in memory; the index has them all


class UnknownSession(LookupError):
    pass


class SessionIndex:
    """Sessions by id, alert id, Idempotency-Key and fingerprint: memory, then the index."""

    def __init__(self, store: Store | None, *, holder: str | None = None) -> None:
        """`holder`: the replica id this one's updates carry (server/store/fencing.py)."""
        self.store = store
        self.error: str | None = None  # why the index is unavailable, while it is
        self._writer = IndexWriter(store, on_error=self.failed, on_ok=self._ok, holder=holder)
        self._sessions: dict[str, SessionState] = {}
        self._by_alert: dict[str, str] = {}
        self._by_key: dict[str, str] = {}
        self._by_fingerprint: dict[str, str] = {}  # the latest session per alert fingerprint
        self._names: dict[str, list[tuple[dict[str, str], str]]] = {}  # id → its keys above
        self._done: dict[str, asyncio.Event] = {}
        # finished sessions kept in memory, oldest first; older ones are read from the index
        self._finished: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        """Sessions held in memory."""
        return len(self._sessions)

    async def aclose(self) -> None:
        await self._writer.aclose()

    # --- writing ------------------------------------------------------------------------

    async def create(
        self,
        state: SessionState,
        alert_data: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
        **extra: Any,
    ) -> None:
        """Hold a new session and write its row. Raises DuplicateSession when another
        process wrote a session with the same Idempotency-Key first; any other index
        failure leaves the session in memory only."""
        self._sessions[state.session_id] = state
        self._by_alert[state.alert_id] = state.session_id
        if self.store is not None:
            try:
                await self.store.create_session(
                    session_id=state.session_id,
                    alert_id=state.alert_id,
                    alert_type=state.alert_type,
                    alert_data=alert_data,
                    model=state.model,
                    idempotency_key=idempotency_key,
                    fingerprint=fingerprint,
                    **extra,
                )
            except DuplicateSession:
                self._sessions.pop(state.session_id, None)  # it was never made
                self._by_alert.pop(state.alert_id, None)
                raise
            except Exception as exc:
                self.failed(exc)
        if idempotency_key:
            self._name(self._by_key, idempotency_key, state.session_id)
        if fingerprint:
            self._name(self._by_fingerprint, fingerprint, state.session_id)

    def _name(self, index: dict[str, str], key: str, session_id: str) -> None:
        if index.get(key) == session_id:
            return
        index[key] = session_id
        self._names.setdefault(session_id, []).append((index, key))

    async def update(self, session_id: str, *, durable: bool = False, **fields: Any) -> None:
        """Write index columns: coalesced with other updates (server/index_writer.py), or
        at once when `durable`. Progress alone is not worth a write at all: it is live in
        memory (what /processing-status reads) and reaches the index with the next real
        change and at the end."""
        if set(fields) <= _LIVE_ONLY:  # nothing, or progress only
            return
        self._writer.update(session_id, fields)
        if durable:
            await self._writer.flush()

    def remember(self, record: SessionRecord) -> SessionState:
        """Hold a session read from the index; one already held is returned as it is.

        Memory is the live state: a reader that went to the index while the session was
        not held must not replace the state a worker took up meanwhile (a status request
        racing the recovery of the session after a restart left it "processing" for good)."""
        held = self._sessions.get(record.session_id)
        if held is not None:
            return held
        state = _state(record)
        self._sessions[record.session_id] = state
        self._by_alert[record.alert_id] = record.session_id
        if record.status in ("completed", "failed"):
            self.settled(record.session_id)
        return state

    def view(self, record: SessionRecord) -> SessionState:
        """A session read from the index, for a reader: the one held, if it is; a finished
        one is held from now on; an unfinished one that this process does not run is not
        (it runs elsewhere, and its row is the live state: the next read reads it again)."""
        held = self._sessions.get(record.session_id)
        if held is not None:
            return held
        if record.status in ("completed", "failed"):
            return self.remember(record)
        return _state(record)

    def settled(self, session_id: str) -> None:
        """A session has finished: wake its waiters, and forget the oldest finished ones
        beyond FINISHED_IN_MEMORY so a long-running service does not grow without end."""
        self._done.setdefault(session_id, asyncio.Event()).set()
        self._finished[session_id] = None
        self._finished.move_to_end(session_id)
        while len(self._finished) > FINISHED_IN_MEMORY:
            old, _ = self._finished.popitem(last=False)
            self.forget(old)

    def forget(self, session_id: str) -> None:
        """Drop a session from memory (the index is left as it is)."""
        state = self._sessions.pop(session_id, None)
        self._done.pop(session_id, None)
        if state is not None:
            self._by_alert.pop(state.alert_id, None)
        for index, key in self._names.pop(session_id, ()):
            if index.get(key) == session_id:  # not since given to a newer session
                del index[key]

    async def wait(self, session_id: str) -> SessionState:
        """Wait until a session has finished."""
        await self._done.setdefault(session_id, asyncio.Event()).wait()
        return self._sessions[session_id]

    # --- reading ------------------------------------------------------------------------

    def held(self, session_id: str) -> SessionState | None:
        """A session in memory, if it is."""
        return self._sessions.get(session_id)

    async def get(self, session_id: str) -> SessionState:
        """A session by id (memory first, then the index); raises UnknownSession."""
        if session_id in self._sessions:
            return self._sessions[session_id]
        record = await self.record(session_id)
        if record is None:
            raise UnknownSession(session_id)
        return self.view(record)

    async def record(self, session_id: str) -> SessionRecord | None:
        """A session's row in the index; None when there is none or no index."""
        if self.store is None:
            return None
        try:
            return await self.store.get_session(session_id)
        except Exception as exc:
            self.failed(exc)
            return None

    def held_for_key(self, key: str) -> SessionState | None:
        """The session an Idempotency-Key created, if this process holds it."""
        return self._sessions.get(self._by_key[key]) if key in self._by_key else None

    async def for_key(self, key: str) -> SessionState | None:
        """The session an Idempotency-Key created, if any: held here, or in the index."""
        if key in self._by_key:
            return self.held_for_key(key)
        if self.store is not None:
            try:
                record = await self.store.get_session_by_idempotency_key(key)
            except Exception as exc:
                self.failed(exc)
                return None
            if record is not None:
                return self.view(record)
        return None

    async def for_alert(self, alert_id: str) -> SessionState:
        """The session of an alert id; raises UnknownSession."""
        if alert_id in self._by_alert:
            return self._sessions[self._by_alert[alert_id]]
        record = None
        if self.store is not None:
            try:
                record = await self.store.get_session_by_alert_id(alert_id)
            except Exception as exc:
                self.failed(exc)
        if record is None:
            raise UnknownSession(alert_id)
        return self.view(record)

    async def for_fingerprint(self, fingerprint: str) -> SessionState | None:
        """The latest session of an alert fingerprint: memory first (this process, also
        when the database is down), then the index (sessions from before a restart)."""
        session_id = self._by_fingerprint.get(fingerprint)
        if session_id is not None and session_id in self._sessions:
            return self._sessions[session_id]
        if self.store is None:
            return None
        try:
            record = await self.store.latest_session_by_fingerprint(fingerprint)
        except Exception as exc:
            self.failed(exc)
            return None
        if record is None:
            return None
        state = self.view(record)
        if record.session_id in self._sessions:
            self._name(self._by_fingerprint, fingerprint, record.session_id)
        return state

    # --- the index's health -------------------------------------------------------------

    def failed(self, exc: Exception) -> None:
        """The index could not be read or written: go on from memory, say why."""
        if self.error is None:
            log.error("session index unavailable, continuing without it: %s", exc)
        self.error = f"{type(exc).__name__}: {exc}"

    def _ok(self) -> None:
        self.error = None


def _state(record: SessionRecord) -> SessionState:
    return SessionState(
        session_id=record.session_id,
        alert_id=record.alert_id,
        alert_type=record.alert_type,
        status=record.status,
        progress=record.progress,
        current_step=record.current_step or record.status,
        current_agent=record.agent_type,
        assigned_mcp_servers=list(record.assigned_mcp_servers or []),
        iteration=record.iterations or 0,
        result=record.result_markdown,
        error=record.error_message,
        model=record.model,
        timestamp=record.updated_at or now(),
    )
