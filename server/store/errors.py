"""The store's own exception types."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.store.records import SessionRecord


class StoreError(Exception):
    """Base class for errors raised by `server.store`."""


class DuplicateSession(StoreError):
    """A session with the same session id, alert id or idempotency key already exists."""

    def __init__(self, field: str, value: str, existing: SessionRecord | None = None) -> None:
        self.field = field
        self.value = value
        self.existing = existing
        where = f" (session {existing.session_id})" if existing is not None else ""
        super().__init__(f"a session with {field}={value!r} already exists{where}")


class SessionNotFound(StoreError, LookupError):
    """No session has the given id."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"no session {session_id!r}")
