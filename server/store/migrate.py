"""Alembic migrations run in code: the config is built here and the scripts ship in the package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store.engine import write_engine
from server.store.models import TABLE_PREFIX, VERSION_TABLE

if TYPE_CHECKING:  # Alembic loads only when the schema needs a migration
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# The newest revision under migrations/versions (a test holds the two together). A database
# already there opens without loading Alembic: about a tenth of a second of every start.
HEAD = "0003"

# Serialises concurrent start-ups against one PostgreSQL database ("SRE_STOR").
_PG_LOCK_KEY = 0x5352455F53544F52


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Only our tables: LangGraph's checkpoint tables live in the same database."""
    return type_ != "table" or (name or "").startswith(TABLE_PREFIX)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    # configparser interpolation: a literal % must be doubled.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` in one transaction; existing rows are kept."""
    if revision == "head" and await recorded_revision(engine) == HEAD:
        return
    async with write_engine(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        await conn.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


async def recorded_revision(engine: AsyncEngine) -> str | None:
    """The revision in the version table, read without Alembic; None when there is no
    table (a new database) or it holds no single revision."""
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).all()
    except DBAPIError:  # no version table yet
        return None
    return str(rows[0][0]) if len(rows) == 1 else None
