"""A throw-away PostgreSQL database on the local server, for the benchmarks that measure
the service with its history there. $SRE_BENCH_POSTGRES_URL names the server (an admin
URL); the default is the local one with trust authentication."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator

from sqlalchemy.engine import make_url

ADMIN_URL_ENV = "SRE_BENCH_POSTGRES_URL"


def _admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV, "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_unreachable() -> str | None:
    """Why no PostgreSQL server can be used (None when one can)."""
    url = make_url(_admin_url())
    host, port = url.host or "127.0.0.1", url.port or 5432
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'sre-agent[postgres]')"
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return None
    except OSError as exc:
        return f"no PostgreSQL server at {host}:{port} ({exc}; set ${ADMIN_URL_ENV})"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """Create `sre_agent_bench_<random>`; yield its SQLAlchemy URL; drop it afterwards."""
    import psycopg

    admin = make_url(_admin_url())
    name = f"sre_agent_bench_{uuid.uuid4().hex[:12]}"
    plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
