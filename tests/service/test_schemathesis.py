"""Property-based fuzzing of the whole HTTP API from its OpenAPI document: no request,
however malformed, may produce a server error."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from tests.service.conftest import serve, two_iterations

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not SCHEMATHESIS.exists() and not shutil.which("schemathesis"),
    reason="schemathesis is not installed (pip install -e '.[dev]')",
)
async def test_no_request_makes_a_server_error(tmp_path: Path):
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        history_database_url=f"sqlite+aiosqlite:///{tmp_path}/fuzz.db",
        max_concurrent_alerts=4,
        max_queued_alerts=400,
    )
    model = ScriptedChatModel(responder=two_iterations, record=False)
    async with serve(settings, model) as service:
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "6",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--exclude-path-regex",
            r"/events$",  # endless SSE streams; covered elsewhere
            "--request-timeout",
            "10",
            "--no-color",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 240)
    report = output.decode()
    assert process.returncode == 0, report[-6000:]
