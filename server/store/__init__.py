"""The session index and the durable event log, in SQLite or PostgreSQL (`Store`)."""

from server.store.engine import DEFAULT_URL
from server.store.errors import DuplicateSession, SessionNotFound, StoreError
from server.store.records import (
    COMPLETED,
    FAILED,
    FINISHED,
    PROCESSING,
    QUEUED,
    STATUSES,
    UNFINISHED,
    SessionRecord,
)
from server.store.store import Store

__all__ = [
    "COMPLETED",
    "DEFAULT_URL",
    "FAILED",
    "FINISHED",
    "PROCESSING",
    "QUEUED",
    "STATUSES",
    "UNFINISHED",
    "DuplicateSession",
    "SessionNotFound",
    "SessionRecord",
    "Store",
    "StoreError",
]
