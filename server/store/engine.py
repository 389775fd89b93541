"""Async engine construction: URL normalisation, SQLite pragmas and write transactions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from graph.sqlite_thread import in_connection_thread

T = TypeVar("T")

DEFAULT_URL = "sqlite+aiosqlite:///./data/sre-agent.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_S = 10

# Execution option set on the write engine: on SQLite its transactions start with
# BEGIN IMMEDIATE, taking the write lock up front (readers use plain deferred BEGIN).
_WRITE_OPTION = "sre_store_write"


def normalize_url(url: str | URL) -> URL:
    """Pick the async driver when the URL names none (sqlite → aiosqlite, postgresql → psycopg)."""
    u = make_url(url)
    backend, _, driver = u.drivername.partition("+")
    if backend == "sqlite" and driver != "aiosqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and driver not in ("psycopg", "psycopg_async"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def masked_url(url: str | URL) -> str:
    """The URL with any password replaced by ***."""
    return normalize_url(url).render_as_string(hide_password=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    return str(value)


def json_dumps(value: Any) -> str:
    """Lenient JSON: an event must not be lost over an odd value, which is stored as text."""
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _is_file_database(u: URL) -> bool:
    db = u.database
    return bool(db) and db != ":memory:" and not (db or "").startswith("file:")


def create_engine(url: str | URL) -> AsyncEngine:
    """The engine for `url`; for SQLite the database's folder is created."""
    u = normalize_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(u)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(u, json_serializer=json_dumps)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        return create_async_engine(
            u,
            json_serializer=json_dumps,
            pool_pre_ping=True,
            connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
        )
    raise ValueError(f"unsupported database URL {masked_url(u)!r}: use sqlite or postgresql")


def write_engine(engine: AsyncEngine) -> AsyncEngine:
    """A view of `engine` (same pool) whose transactions take SQLite's write lock at BEGIN."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def configure_sqlite(conn: Any) -> None:
    """The pragmas of every connection the store opens on a SQLite file (`conn`: a
    connection or cursor that executes statements): waits for the write lock up to the busy
    timeout, write-ahead log, no sync at every commit."""
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def sqlite_file(url: str | URL) -> str | None:
    """The path of the SQLite database file `url` names; None for anything else (another
    database, an in-memory or URI-named SQLite database)."""
    u = normalize_url(url)
    if u.get_backend_name() != "sqlite" or not _is_file_database(u):
        return None
    return str(Path(u.database or "").expanduser())


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so that `_on_begin` decides how to BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            configure_sqlite(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        sql = "BEGIN IMMEDIATE" if write else "BEGIN"
        driver = conn.connection.driver_connection
        if isinstance(driver, aiosqlite.Connection):
            # one trip to the connection's thread; through the driver's cursor it took three
            await_(on_sqlite_thread(driver, sql, _execute, sql))
        else:
            conn.exec_driver_sql(sql)


async def on_sqlite_thread(
    driver: aiosqlite.Connection, statement: str, fn: Callable[..., T], *args: Any
) -> T:
    """`fn(sqlite3_connection, *args)` in one call on the thread of `driver` (the store's
    aiosqlite connection), its sqlite3 errors raised as SQLAlchemy raises a `statement`'s
    ("database is locked": an OperationalError)."""
    try:
        return await in_connection_thread(driver, fn, *args)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def _execute(raw: sqlite3.Connection, sql: str) -> None:
    raw.execute(sql)
