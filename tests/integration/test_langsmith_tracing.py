"""LangSmith tracing works by its standard environment variables alone: an investigation
run with LANGSMITH_TRACING=true sends its runs (graph, nodes, model calls) to the
configured endpoint — here a local stand-in for the LangSmith API."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, sys
sys.path.insert(0, ".")
from langchain_core.tracers.langchain import wait_for_all_tracers
from graph.builder import build_investigation_graph
from graph.context import Context
from graph.registry import AgentRegistry
from graph.runbooks import RunbookFetcher
from graph.runner import run_investigation
from graph.scripted_model import ScriptedChatModel, structured
from graph.toolbox import Toolbox
from langchain_core.messages import AIMessage
from tests.conftest import ops_app_config

async def main():
    config = ops_app_config()
    model = ScriptedChatModel(script=[
        AIMessage(content="enough"),
        structured("RootCauseAnalysis", summary="s", root_cause="rc", evidence=[],
                   remediation=[], confidence="low"),
    ])
    async with Toolbox({}) as toolbox, RunbookFetcher() as runbooks:
        context = Context(model=model, model_name="scripted", toolbox=toolbox,
                          registry=AgentRegistry(config), runbooks=runbooks)
        values = await run_investigation(
            build_investigation_graph(context.registry), thread_id="traced", context=context,
            alert={"alert_type": "NamespaceTerminating", "message": "m"})
    print(values["status"])

asyncio.run(main())
wait_for_all_tracers()
"""


class _Collector(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PATCH = do_POST

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"batch_ingest_config": {}}).encode())

    def log_message(self, *args: object) -> None:
        pass


def test_runs_reach_the_langsmith_endpoint_from_environment_variables_alone():
    _Collector.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
        env.update(
            {
                "LANGSMITH_TRACING": "true",
                "LANGSMITH_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
                "LANGSMITH_API_KEY": "lsv2_test_key",
                "LANGSMITH_PROJECT": "sre-agent-tests",
            }
        )
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("completed")
    sent = b"\n".join(_Collector.bodies).decode(errors="replace")
    for name in ("sre_agent", "route", "fetch_runbook", "select_tools", "final_analysis"):
        assert f'"{name}"' in sent, f"no run named {name} was traced"
    # each model call is a run of its own too (tracing is a listener: the call goes
    # through LangChain's run machinery, not straight to the model)
    assert re.search(r'"run_type":\s*"llm"', sent), "no model call was traced"
    assert '"ScriptedChatModel"' in sent
    assert "sre-agent-tests" in sent or "session_name" in sent
