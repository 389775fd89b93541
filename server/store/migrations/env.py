"""Alembic env: migrates the `sre_` tables on the connection `server.store.migrate` passes in."""

from __future__ import annotations

from alembic import context

from server.store.migrate import include_name
from server.store.models import VERSION_TABLE, Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError("run the store's migrations through server.store.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
