"""Alembic revision scripts for the `sre_` tables."""
