"""Alembic migration environment for `server.store` (run by `server.store.migrate`)."""
