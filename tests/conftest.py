"""Shared fixtures: the test MCP servers (real stdio processes), a registry over them, and
a context factory with a scripted model."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from graph.config import AppConfig
from graph.context import Context
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.scripted_model import ScriptedChatModel
from graph.toolbox import Toolbox
from server.store import Store
from server.store.models import VERSION_TABLE
from tests.pg import fresh_database

SERVERS = Path(__file__).parent / "servers"


def ops_app_config(**agent_overrides: Any) -> AppConfig:
    return AppConfig.model_validate(
        {
            "mcpServers": {
                "ops": {
                    "command": sys.executable,
                    "args": [str(SERVERS / "ops_server.py")],
                    "instructions": "OPS-SERVER-INSTRUCTIONS",
                },
                "other": {"command": sys.executable, "args": [str(SERVERS / "other_server.py")]},
            },
            "agents": {
                "kubernetes": {
                    "mcp_servers": ["ops"],
                    "alert_types": ["NamespaceTerminating"],
                    "instructions": "K8S-AGENT-INSTRUCTIONS",
                    "max_iterations": 3,
                    **agent_overrides,
                },
                "other": {"mcp_servers": ["other"], "alert_types": ["OtherAlert"]},
            },
        }
    )


@pytest.fixture(scope="session")
async def ops_toolbox() -> AsyncIterator[Toolbox]:
    """Both test servers, started once for the session."""
    async with Toolbox(ops_app_config().mcp_servers) as toolbox:
        yield toolbox


@pytest.fixture
def sample_alert() -> dict[str, Any]:
    return {
        "alert_type": "NamespaceTerminating",
        "severity": "warning",
        "environment": "production",
        "cluster": "https://api.prod.example.com",
        "namespace": "billing",
        "message": "Namespace billing stuck in Terminating for 30 minutes",
        "runbook": "namespace-terminating.md",
    }


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "namespace-terminating.md").write_text("# Namespace stuck\nCheck finalizers.\n")
    return folder


@pytest.fixture
def make_context(ops_toolbox: Toolbox, runbooks_dir: Path) -> Callable[..., Context]:
    def make(
        model: ScriptedChatModel,
        *,
        config: AppConfig | None = None,
        toolbox: Toolbox | None = None,
        **kwargs: Any,
    ) -> Context:
        return Context(
            model=model,
            model_name="scripted:test",
            toolbox=toolbox or ops_toolbox,
            registry=AgentRegistry(config or ops_app_config()),
            runbooks=RunbookFetcher(runbooks_dir=runbooks_dir),
            **kwargs,
        )

    return make


# --- the service's index, on SQLite and on the local PostgreSQL server ------------------

SRE_TABLES = ("sre_events", "sre_sessions", VERSION_TABLE)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database `sre_agent_test_<random>` for this run, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no sre_ tables yet)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/data/sre-agent.db"
    url: str = request.getfixturevalue("pg_database")
    store = Store(url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {', '.join(SRE_TABLES)}"))
    finally:
        await store.close()
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    try:
        yield s
    finally:
        await s.close()
