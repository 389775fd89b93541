"""The per-session event log behind the SSE streams: numbered events, delivered live to
every subscriber at once and written to the database in the background, so a stream can
be resumed (Last-Event-ID), replayed after the end, and survives a restart. A stream of a
session that another replica (or worker) runs follows the stored events as they are
stored (server/store/notices.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graph.events import TERMINAL_EVENTS
from server.retries import wait_after
from server.store import Store
from server.store.events import Numbered
from server.store.notices import EventNotices, Watch

log = logging.getLogger(__name__)

_DB_POLL_SECONDS = 1.0


@dataclass
class _Live:
    first: int  # seq of the first event held in memory
    last: int
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    unsaved: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def is_terminal(event: dict[str, Any]) -> bool:
    return event.get("type") in TERMINAL_EVENTS


class EventLog:
    """Append-and-subscribe log of numbered events per session."""

    def __init__(
        self,
        store: Store | None,
        *,
        keep_in_memory: int = 256,
        holder: str | None = None,
        notices: EventNotices | None = None,
    ) -> None:
        """`holder`: the replica id this one's writes carry; events of a session another
        replica holds now are not written (server/store/fencing.py). `notices`: what wakes
        the streams of sessions running elsewhere when their events are stored."""
        self.store, self.holder, self.notices = store, holder, notices
        self._live: OrderedDict[str, _Live] = OrderedDict()
        self._keep = keep_in_memory
        self._dirty: asyncio.Queue[str] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._failures = 0  # writes refused in a row
        self._reading: dict[tuple[str, int], asyncio.Future[Numbered]] = {}  # see _stored
        self.write_error: str | None = None

    async def start(self) -> None:
        if self.store is not None and self._writer is None:
            self._writer = asyncio.create_task(self._write_loop())
        if self.notices is not None:
            self.notices.start()

    async def aclose(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self.notices is not None:
            await self.notices.aclose()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.flush()

    async def open(self, session_id: str, *, new: bool = False) -> None:
        """Hold a session live (before its first event, so subscribers wait for it).
        `new`: the session was created just now, so it has no stored events to count."""
        await self._entry(session_id, new=new)

    async def _entry(self, session_id: str, *, new: bool = False) -> _Live:
        live = self._live.get(session_id)
        if live is None:
            last = 0
            if self.store is not None and not new:
                try:
                    last = await self.store.last_seq(session_id)
                except Exception as exc:
                    log.warning("event log: cannot read last seq of %s: %s", session_id, exc)
            live = self._live[session_id] = _Live(first=last + 1, last=last)
            self._evict()
        return live

    def _evict(self) -> None:
        finished = [sid for sid, live in self._live.items() if live.done and not live.unsaved]
        for sid in finished[: max(0, len(self._live) - self._keep)]:
            del self._live[sid]

    async def append(self, session_id: str, event: dict[str, Any]) -> int:
        """Number the event, wake the subscribers, queue it for the database."""
        live = await self._entry(session_id)
        live.last += 1
        seq = live.last
        live.events.append((seq, event))
        live.done = live.done or is_terminal(event)
        live.changed.set()
        live.changed = asyncio.Event()
        if self.store is not None:
            live.unsaved.append((seq, event))
            self._dirty.put_nowait(session_id)
        return seq

    async def _write_loop(self) -> None:
        while True:
            dirty = {await self._dirty.get()}
            await asyncio.sleep(0)  # let a burst of events collect into one batch
            while not self._dirty.empty():
                dirty.add(self._dirty.get_nowait())
            await self._save(dirty)

    async def _save(self, session_ids: Iterable[str]) -> None:
        """Write the sessions' unsaved events in one transaction; when that fails, each
        session's on its own, so one that cannot be written holds up no other. Events not
        written stay in memory (the streams go on from there) and are written again with
        the session's next event, or after a growing wait (a finished session has none)."""
        if self.store is None:
            return
        batches = {
            sid: list(live.unsaved)
            for sid in session_ids
            if (live := self._live.get(sid)) is not None and live.unsaved
        }
        if not batches:
            return
        error = await self._write(batches)
        if error is not None and len(batches) > 1:
            errors = [await self._write({sid: batch}) for sid, batch in batches.items()]
            error = next((e for e in errors if e is not None), None)
        if error is None:
            self.write_error, self._failures = None, 0
            return
        if self.write_error is None:
            log.error("event log: database write failed, keeping events in memory: %s", error)
        self.write_error = f"{type(error).__name__}: {error}"
        self._failures += 1
        if self._retry is None and self._writer is not None:
            self._retry = asyncio.get_running_loop().call_later(
                wait_after(self._failures), self._write_unsaved
            )

    def _write_unsaved(self) -> None:
        """Queue every session whose events are not all written yet."""
        self._retry = None
        for session_id, live in self._live.items():
            if live.unsaved:
                self._dirty.put_nowait(session_id)

    async def _write(self, batches: dict[str, Numbered]) -> Exception | None:
        assert self.store is not None
        try:
            await self.store.insert_events(batches, holder=self.holder)
        except Exception as exc:
            return exc
        for sid, batch in batches.items():
            if (live := self._live.get(sid)) is not None:
                del live.unsaved[: len(batch)]
        return None

    async def flush(self) -> None:
        await self._save(list(self._live))

    async def let_go(self, session_id: str) -> None:
        """Stop holding a session live here (another process runs it now): its events so
        far are written, and its subscribers here go on from the stored events."""
        await self._save([session_id])
        live = self._live.pop(session_id, None)
        if live is not None:
            live.changed.set()  # waiting subscribers look again, and find it not live

    async def past(self, session_id: str) -> list[dict[str, Any]]:
        """Every event of the session so far, oldest first: the stored ones, then those
        only in memory (not written yet, or no database)."""
        stored: list[tuple[int, dict[str, Any]]] = []
        while batch := await self._stored(session_id, stored[-1][0] if stored else 0):
            stored += batch
        last = stored[-1][0] if stored else 0
        live = self._live.get(session_id)
        unsaved = [(seq, event) for seq, event in (live.events if live else []) if seq > last]
        return [event for _, event in stored + unsaved]

    async def _stored(self, session_id: str, after: int) -> Numbered:
        """The stored events of a session after `after`. Streams asking for the same ones
        at the same time (the subscribers of a session running elsewhere, woken by one
        notice) share one read."""
        if self.store is None:
            return []
        key = (session_id, after)
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(self._read(session_id, after))
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return list(await asyncio.shield(reading))

    async def _read(self, session_id: str, after: int) -> Numbered:
        assert self.store is not None
        try:
            return await self.store.events_after(session_id, after)
        except Exception as exc:
            log.warning("event log: cannot read events of %s: %s", session_id, exc)
            return []

    async def subscribe(
        self,
        session_id: str,
        after: int = 0,
        finished: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Events with seq > `after`: stored ones first, then live ones; ends after the
        terminal event. `finished` is asked when a session is not live here and has no new
        stored events: if it returns the terminal event the log lacks (a crash between the
        index write and the event write), that event is appended and the stream ends."""
        watching = self.notices.watch(session_id) if self.notices is not None else _polling()
        with watching as notice:
            following = self._follow(session_id, after, finished, notice)
            async with contextlib.aclosing(following):
                async for item in following:
                    yield item

    async def _follow(
        self,
        session_id: str,
        after: int,
        finished: Callable[[], Awaitable[dict[str, Any] | None]] | None,
        notice: Watch,
    ) -> AsyncGenerator[tuple[int, dict[str, Any]]]:
        sent = after
        while True:
            live = self._live.get(session_id)
            if live is not None and sent + 1 >= live.first:
                waiter = live.changed
                pending = [(s, e) for s, e in live.events if s > sent]
            else:
                waiter = None
                notice.clear()  # a notice from here on is news
                pending = await self._stored(session_id, sent)
                if live is not None:  # stored history up to where memory begins
                    pending = [(s, e) for s, e in pending if s < live.first]
            for seq, event in pending:
                yield seq, event
                sent = seq
                if is_terminal(event):
                    return
            if pending:
                continue
            if waiter is None and live is not None:
                sent = live.first - 1  # older events are not readable now: go on live
                continue
            if waiter is not None:
                await waiter.wait()
            elif live is None:
                ending = await finished() if finished is not None else None
                if ending is not None:
                    await self.append(session_id, ending)
                    continue
                # running elsewhere, or not resumed yet
                await notice.wait(_DB_POLL_SECONDS)


@contextlib.contextmanager
def _polling() -> Iterator[Watch]:
    """A watch no notice wakes: its streams poll."""
    yield Watch()
