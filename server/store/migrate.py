"""Alembic migrations run in code: the config is built here and the scripts ship in the package.

A new database (none of our tables yet) is created from the models and stamped at the
newest revision, as Alembic's documentation recommends, without loading Alembic; the
tests hold the models and the migration scripts to the same schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store.engine import write_engine
from server.store.models import TABLE_PREFIX, VERSION_TABLE, Base

if TYPE_CHECKING:  # Alembic loads only when the schema needs a migration
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# The newest revision under migrations/versions (a test holds the two together). A database
# already there, or a new one, opens without loading Alembic: about a tenth of a second of
# every start.
HEAD = "0004"

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
        if revision == "head" and await conn.run_sync(_is_new):
            await conn.run_sync(_create)
        else:
            await conn.run_sync(_upgrade, revision)


def _is_new(connection: Connection) -> bool:
    return not any(name.startswith(TABLE_PREFIX) for name in inspect(connection).get_table_names())


def _create(connection: Connection) -> None:
    """The schema of the newest revision, from the models, stamped as Alembic stamps it."""
    Base.metadata.create_all(connection)
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert().values(version_num=HEAD))


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
