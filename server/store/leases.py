"""Which replica runs an unfinished session: a lease in the session's row.

Several service processes (replicas) may share one database. A session is run by one of
them, its owner (`REPLICA_ID`), which renews its lease while it runs. A replica that starts
resumes only the unfinished sessions nobody holds: no owner (released at a clean stop, or
written before leases existed), its own from an earlier life (a restart under the same
id), or an owner whose lease ran out (it died). Each is claimed in one conditional UPDATE,
so two replicas never both claim a session."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Update, or_, select, update
from sqlalchemy.engine import Connection

from server.store import sessions
from server.store.models import SESSIONS
from server.store.records import UNFINISHED, SessionRecord
from server.store.store import Store, utcnow


class Leases:
    """This replica's leases: `owner` holds a session for `seconds` after each renewal."""

    def __init__(self, store: Store, owner: str, seconds: float) -> None:
        self.store, self.owner, self.seconds = store, owner, seconds

    def expiry(self, now: datetime | None = None) -> datetime:
        """When a lease taken or renewed now runs out."""
        return (now or utcnow()) + timedelta(seconds=self.seconds)

    def _free(self, now: datetime, *, own: bool) -> ColumnElement[bool]:
        return or_(
            SESSIONS.c.owner.is_(None),
            SESSIONS.c.lease_expires_at.is_(None),
            SESSIONS.c.lease_expires_at < now,
            *([SESSIONS.c.owner == self.owner] if own else []),
        )

    async def claim(
        self,
        *,
        besides: Collection[str] = (),
        unless: Callable[[SessionRecord], bool] = lambda _: False,
        own: bool = True,
    ) -> list[SessionRecord]:
        """Claim the unfinished sessions this replica may run, oldest first, except those in
        `besides` (the ones it runs or queues already) and those `unless` refuses; returns
        the claimed ones. `own`: also those this replica's id still holds (left by an
        earlier life under the same id: at start-up; later, the ones it holds are the ones
        it runs, and reading them on every sweep would be wasted)."""
        now = utcnow()
        query = (
            select(SESSIONS)
            .where(SESSIONS.c.status.in_(UNFINISHED), self._free(now, own=own))
            .order_by(SESSIONS.c.started_at, SESSIONS.c.session_id)
        )
        candidates = await self.store.read(sessions.every, query)
        claimed = []
        until = self.expiry(now)
        for record in candidates:
            if record.session_id in besides or unless(record):
                continue
            claim = (
                update(SESSIONS)
                .where(
                    SESSIONS.c.session_id == record.session_id,
                    SESSIONS.c.status.in_(UNFINISHED),
                    self._free(now, own=own),
                )
                .values(owner=self.owner, lease_expires_at=until)
            )
            if await self.store.write(_rowcount, claim) == 1:
                claimed.append(replace(record, owner=self.owner, lease_expires_at=until))
        return claimed

    async def renew(self, session_ids: Collection[str]) -> set[str]:
        """Extend the leases of `session_ids`; returns those another replica owns now (it
        took them over while this one could not renew)."""
        if not session_ids:
            return set()
        return await self.store.write(_renew, list(session_ids), self.owner, self.expiry())

    async def release(self) -> None:
        """Give up this replica's unfinished sessions: another replica, or this one's next
        start, resumes them at once."""
        release = (
            update(SESSIONS)
            .where(SESSIONS.c.owner == self.owner, SESSIONS.c.status.in_(UNFINISHED))
            .values(owner=None, lease_expires_at=None)
        )
        await self.store.write(_rowcount, release)


def _rowcount(conn: Connection, statement: Update) -> int:
    return conn.execute(statement).rowcount


def _renew(conn: Connection, ids: list[str], owner: str, until: datetime) -> set[str]:
    conn.execute(
        update(SESSIONS)
        .where(SESSIONS.c.session_id.in_(ids), SESSIONS.c.owner == owner)
        .values(lease_expires_at=until)
    )
    taken = conn.execute(
        select(SESSIONS.c.session_id).where(
            SESSIONS.c.session_id.in_(ids), SESSIONS.c.owner != owner
        )
    )
    return set(taken.scalars().all())
