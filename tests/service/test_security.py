"""The service's guards against a real uvicorn: bearer tokens (API_TOKENS), CORS
(CORS_ORIGINS), the request body limit (MAX_ALERT_BYTES), and `serve` refusing to listen
beyond loopback without tokens. The database does not matter here: SQLite only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from graph.scripted_model import ScriptedChatModel
from graph.settings import Settings
from server import cli
from tests.service.conftest import ALERT, Service, serve, two_iterations

ROOT = Path(__file__).resolve().parents[2]
TOKENS = ("tok-one-4f0c2a9d8e7b6a51", "tok-two-93b1c7e2d4f6a8b0")
UI = "https://ui.example.com"
EVIL = "https://evil.example.com"
LIMIT = 2048
UNAUTHORIZED = {"detail": "missing or invalid bearer token"}


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        history_database_url=f"sqlite+aiosqlite:///{tmp_path}/sre-agent.db",
        **overrides,
    )


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    """Tokens and CORS on (one service for the module's tests)."""
    model = ScriptedChatModel(responder=two_iterations, latency=0.01)
    settings = _settings(
        tmp_path_factory.mktemp("guarded"), api_tokens=",".join(TOKENS), cors_origins=f"{UI}/"
    )
    async with serve(settings, model) as running:
        yield running


@pytest.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    """No tokens, no CORS, a small body limit."""
    model = ScriptedChatModel(responder=two_iterations, latency=0.01)
    settings = _settings(tmp_path_factory.mktemp("limited"), max_alert_bytes=LIMIT)
    async with serve(settings, model) as running:
        yield running


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- bearer tokens ----------------------------------------------------------------------


async def test_every_endpoint_but_health_needs_a_token(guarded: Service) -> None:
    client = guarded.client
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    for method, path in [
        ("GET", "/alert-types"),
        ("POST", "/alerts"),
        ("POST", "/alerts/alertmanager"),
        ("GET", "/alerts/some-id/events"),
        ("GET", "/processing-status/some-id"),
        ("GET", "/api/v1/history/sessions"),
        ("GET", "/metrics"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/health/"),
        ("GET", "/nope"),
    ]:
        for headers in [
            {},
            _bearer("wrong-token"),
            _bearer(TOKENS[0] + "x"),
            _bearer(TOKENS[0][:-1]),
            {"Authorization": f"Basic {TOKENS[0]}"},
            {"Authorization": "Bearer"},
            {"Authorization": TOKENS[0]},
        ]:
            response = await client.request(method, path, headers=headers, json=ALERT)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json() == UNAUTHORIZED

    for token in TOKENS:
        assert (await client.get("/alert-types", headers=_bearer(token))).status_code == 200
    lower = {"Authorization": f"bearer  {TOKENS[1]}"}
    assert (await client.get("/alert-types", headers=lower)).status_code == 200
    docs = await client.get("/openapi.json", headers=_bearer(TOKENS[0]))
    assert docs.status_code == 200 and "/alerts" in docs.json()["paths"]
    assert (await client.get("/docs", headers=_bearer(TOKENS[0]))).status_code == 200
    metrics = await client.get("/metrics", headers=_bearer(TOKENS[0]))
    assert metrics.status_code == 200


async def test_alert_and_its_sse_stream_with_a_token(guarded: Service) -> None:
    accepted = await guarded.client.post("/alerts", json=ALERT)
    assert accepted.status_code == 401
    async with httpx.AsyncClient(
        base_url=guarded.url, timeout=30, headers=_bearer(TOKENS[1])
    ) as client:
        authorized = Service(guarded.url, client, guarded.model)
        submitted = await authorized.submit()
        alert_id = submitted["alert_id"]
        async with guarded.client.stream("GET", f"/alerts/{alert_id}/events") as refused:
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"] == "Bearer"
        events = await authorized.events(alert_id)
        assert events[-1]["event"] == "session_completed"
        assert (await authorized.wait_done(alert_id))["status"] == "completed"
        # The URLs the service hands out work with the same token.
        assert (await client.get(submitted["status_url"])).status_code == 200
        assert (await guarded.client.get(submitted["status_url"])).status_code == 401


# -- CORS -------------------------------------------------------------------------------


async def test_cors_headers_only_for_configured_origins(guarded: Service) -> None:
    client = guarded.client
    allowed = await client.get("/health", headers={"Origin": UI})
    assert allowed.headers["Access-Control-Allow-Origin"] == UI
    refused = await client.get("/health", headers={"Origin": EVIL})
    assert "Access-Control-Allow-Origin" not in refused.headers

    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    ok = await client.options("/alerts", headers={"Origin": UI, **preflight})
    assert ok.status_code == 200  # answered before authentication: it carries no token
    assert ok.headers["Access-Control-Allow-Origin"] == UI
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"].lower()
    bad = await client.options("/alerts", headers={"Origin": EVIL, **preflight})
    assert bad.status_code == 400
    assert "Access-Control-Allow-Origin" not in bad.headers

    # A refusal is readable by the page (and says nothing more).
    unauthorized = await client.get("/alert-types", headers={"Origin": UI})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["Access-Control-Allow-Origin"] == UI


async def test_no_cors_headers_by_default(limited: Service) -> None:
    client = limited.client
    response = await client.get("/health", headers={"Origin": UI})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    preflight = await client.options(
        "/alerts", headers={"Origin": UI, "Access-Control-Request-Method": "POST"}
    )
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]


# -- request bodies ---------------------------------------------------------------------


def _body(size: int) -> bytes:
    """An alert whose JSON is exactly `size` bytes, padded with an extra field."""
    base = json.dumps({**ALERT, "padding": ""}).encode()
    body = json.dumps({**ALERT, "padding": "x" * (size - len(base))}).encode()
    assert len(body) == size
    return body


async def _chunks(body: bytes, size: int = 500) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_body_over_the_limit_is_413(limited: Service) -> None:
    client = limited.client
    json_type = {"Content-Type": "application/json"}
    expected = {"detail": f"request body is larger than the {LIMIT}-byte limit"}

    declared = await client.post("/alerts", content=_body(LIMIT + 1), headers=json_type)
    assert declared.request.headers["Content-Length"] == str(LIMIT + 1)
    assert declared.status_code == 413
    assert declared.json() == expected

    streamed = await client.post("/alerts", content=_chunks(_body(LIMIT + 1)), headers=json_type)
    assert "Content-Length" not in streamed.request.headers
    assert streamed.request.headers["Transfer-Encoding"] == "chunked"
    assert streamed.status_code == 413
    assert streamed.json() == expected

    big = await client.post("/alerts", content=_chunks(b" " * 200_000), headers=json_type)
    assert big.status_code == 413

    # At the limit, both ways, the alert (extra fields included) is accepted.
    at_limit = await client.post("/alerts", content=_body(LIMIT), headers=json_type)
    assert at_limit.status_code == 202, at_limit.text
    chunked = await client.post(
        "/alerts",
        content=_chunks(_body(LIMIT)),
        headers={**json_type, "Idempotency-Key": "chunked"},
    )
    assert chunked.status_code == 202, chunked.text
    state = await limited.wait_done(chunked.json()["alert_id"])
    assert state["status"] == "completed"
    # The connection is still usable after a 413.
    assert (await client.get("/health")).status_code == 200


async def test_invalid_bodies_are_422_naming_the_field(limited: Service) -> None:
    client = limited.client
    json_type = {"Content-Type": "application/json"}
    missing = await client.post("/alerts", json={"alert_type": "NamespaceTerminating"})
    assert missing.status_code == 422
    assert missing.json()["message"] == "body.message: Field required"

    too_long = await client.post("/alerts", json={**ALERT, "namespace": "n" * 257})
    assert too_long.status_code == 422
    assert too_long.json()["message"].startswith("body.namespace: String should have at most")

    broken = await client.post("/alerts", content=b'{"alert_type": ', headers=json_type)
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"

    not_object = await client.post("/alerts", json=["not", "an", "alert"])
    assert not_object.status_code == 422
    assert not_object.json()["message"].startswith("body:")


# -- `sre-agent serve` ------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "SRE_AGENT", "OPENAI", "DEFAULT_LLM", "API_TOKENS"))
    }
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **extra}


def test_serve_refuses_non_loopback_without_tokens(tmp_path: Path) -> None:
    """As a user runs it: exit code 2 and the reason, before binding anything."""
    host = "0.0.0.0"
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--host", host, "--port", "0"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=30,  # it must exit before binding, not serve
    )
    assert result.returncode == 2, result.stdout + result.stderr
    output = " ".join(result.stdout.split())
    assert f"refusing to serve on {host} without authentication" in output
    assert "set API_TOKENS" in output
    assert "--insecure" in output


def _invoke(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], env: dict[str, str]
) -> tuple[Any, list[dict[str, Any]]]:
    """`sre-agent serve ...` in-process, with uvicorn.run recording instead of serving."""
    import uvicorn

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: runs.append(kwargs))
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("LLM_", "SRE_AGENT", "API_TOKENS", "CORS_ORIGINS")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli.app, ["serve", "--port", "0", *args], env={"COLUMNS": "200"})
    return result, runs


@pytest.mark.parametrize("host", ["::", "192.0.2.10", "sre.example.com", "127.0.0.1.nip.io"])
def test_serve_refuses_other_non_loopback_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    result, runs = _invoke(monkeypatch, tmp_path, ["--host", host], {"API_TOKENS": " , "})
    assert result.exit_code == 2
    assert f"refusing to serve on {host} without authentication" in result.output
    assert runs == []


@pytest.mark.parametrize(
    ("args", "env", "warned"),
    [
        (["--host", "0.0.0.0", "--insecure"], {}, True),
        (["--host", "0.0.0.0"], {"API_TOKENS": TOKENS[0]}, False),
        (["--host", "127.0.0.1"], {}, False),
        (["--host", "localhost"], {}, False),
        (["--host", "::1"], {}, False),
    ],
)
def test_serve_starts_when_allowed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    warned: bool,
) -> None:
    result, runs = _invoke(monkeypatch, tmp_path, args, env)
    assert result.exit_code == 0, result.output
    assert [r["host"] for r in runs] == [args[1]]
    assert ("without authentication (--insecure)" in result.output) is warned
