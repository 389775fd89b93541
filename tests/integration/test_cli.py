"""The command line as a user runs it: real processes, plain output (not a TTY)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "server.cli"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "SRE_AGENT", "OPENAI", "DEFAULT_LLM"))
    }
    environment.update({"PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.integration
@pytest.mark.skipif(
    not (ROOT / "node_modules/.bin/kubernetes-mcp-server").exists(),
    reason="kubernetes-mcp-server missing: run `npm ci`",
)
def test_demo_streams_progress_and_prints_the_analysis(tmp_path):
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "using the scripted demo model" in out
    assert "[kubernetes] agent selected for NamespaceTerminating" in out
    assert "[kubernetes #1] → T1.1 resources_get" in out
    assert "[kubernetes #2] finding:" in out
    assert "## Root cause" in out and "invoice-controller" in out
    session = out.rsplit("session id: ", 1)[1].strip()
    assert len(session) == 36
    assert (tmp_path / "data" / "sre-agent.db").exists()


def test_investigate_rejects_an_invalid_alert_naming_the_field(tmp_path):
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"alert_type": "NamespaceTerminating"}))
    result = run("investigate", str(alert), cwd=tmp_path)
    assert result.returncode == 2
    assert "message: Field required" in result.stdout


def test_investigate_unknown_alert_type_fails_with_reason(tmp_path):
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"alert_type": "DiskFull", "message": "disk full"}))
    config = tmp_path / "c.yaml"
    config.write_text("mcpServers:\n  kubernetes-server:\n    command: /nonexistent\n")
    result = run("investigate", str(alert), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "No specialized agent for alert type 'DiskFull'" in result.stdout
    assert "session id:" in result.stdout


def test_bad_config_fails_at_start_up_with_the_field(tmp_path):
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"alert_type": "X", "message": "m"}))
    config = tmp_path / "c.yaml"
    config.write_text("agents:\n  k:\n    mcp_servers: [ghost]\n    alert_types: [X]\n")
    result = run("investigate", str(alert), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "agents.k.mcp_servers: unknown server 'ghost'" in result.stdout


def test_missing_api_key_names_the_variable(tmp_path):
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"alert_type": "X", "message": "m"}))
    result = run(
        "investigate", str(alert), cwd=tmp_path, env={"LLM_MODEL": "anthropic:claude-sonnet-4-5"}
    )
    assert result.returncode == 2
    assert "set ANTHROPIC_API_KEY" in result.stdout


@pytest.mark.integration
@pytest.mark.skipif(
    not (ROOT / "node_modules/.bin/kubernetes-mcp-server").exists(),
    reason="kubernetes-mcp-server missing: run `npm ci`",
)
def test_demo_live_view_renders_the_agent_panel(tmp_path):
    result = run("demo", "--live", "--scenario", "pending-pod", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sre-agent · kubernetes agent · PodPending" in out  # the live panel's title
    assert "✔ T1.1 pods_get" in out
    assert "cannot be scheduled" in out


@pytest.mark.integration
@pytest.mark.skipif(
    not (ROOT / "node_modules/.bin/kubernetes-mcp-server").exists(),
    reason="kubernetes-mcp-server missing: run `npm ci`",
)
@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_command_ends_its_session_failed_saying_so(tmp_path, stop, code):
    """A session the command line stops (Ctrl-C, kill) must not stay "processing" forever:
    nothing will resume it."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "SRE_AGENT", "OPENAI", "DEFAULT_LLM"))
    }
    environment.update({"PYTHONPATH": str(ROOT), "COLUMNS": "200", "DEMO_MODEL_LATENCY": "2"})
    process = subprocess.Popen(
        [*CLI, "demo"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # until the investigation is under way
        lines.append(line)
        if "iteration 1/" in line:
            break
    process.send_signal(stop)
    out = "".join(lines) + process.communicate(timeout=60)[0]

    assert process.returncode == code, out
    session = out.split("interrupted: session ", 1)[1].split()[0]
    listed = run("sessions", "list", cwd=tmp_path).stdout
    assert f"{session}\t" in listed and "\tfailed\t" in listed, listed
    shown = run("sessions", "show", session, cwd=tmp_path).stdout
    assert "interrupted: the command stopped before the investigation finished" in shown
