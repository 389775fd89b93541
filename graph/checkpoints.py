"""The checkpointer behind the history: SQLite (embedded default) or PostgreSQL, chosen
by the same database URL as the session index."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite+aiosqlite:///path` URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError(f"a SQLite history needs a file path, got {url!r}")
    return Path(database)


@contextlib.asynccontextmanager
async def open_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open (and set up) the saver for `url`; closed on exit."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(path, timeout=30) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            yield saver
    elif backend == "postgresql":
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError as exc:
            raise RuntimeError(
                "PostgreSQL history needs: pip install 'sre-agent[postgres]'"
            ) from exc
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        async with AsyncPostgresSaver.from_conn_string(plain) as pg_saver:
            await pg_saver.setup()
            yield pg_saver
    else:
        raise ValueError(
            f"unsupported history database {url!r}: use sqlite+aiosqlite or postgresql+psycopg"
        )
