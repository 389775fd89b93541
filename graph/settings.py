"""Process settings from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from graph.runbook_urls import DEFAULT_ALLOWED_HOSTS, parse_allowed_hosts


class Settings(BaseSettings):
    """Everything the environment may set. Names are public contract: keep them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    llm_model: str | None = Field(
        default=None, description='"provider:model", e.g. "openai:gpt-4.1" (LLM_MODEL).'
    )
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint (vLLM, LiteLLM, Ollama /v1)."
    )
    default_llm_provider: str | None = Field(
        default=None, description="Seed name: provider only, with a default model."
    )
    llm_timeout: float = Field(default=120.0, gt=0, description="Seconds per model request.")
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_fallback_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description='Comma-separated "provider:model" list tried in order when the model '
        "fails with a provider error after its retries (LLM_FALLBACK_MODELS).",
    )

    sre_agent_config: Path | None = Field(default=None, description="YAML registries file.")
    agent_registry: str | None = Field(default=None, description="Seed JSON override.")
    mcp_server_registry: str | None = Field(default=None, description="Seed JSON override.")

    github_token: str | None = Field(default=None, description="Sent for GitHub runbooks only.")
    runbooks_dir: Path | None = Field(
        default=None, description="The only folder local runbook files may be read from."
    )
    runbook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS),
        description="Comma-separated origins runbook URLs may be fetched from: host (https), "
        "host:port, http://host[:port] (plain http); empty: no URLs (RUNBOOK_ALLOWED_HOSTS).",
    )
    runbook_allow_http: bool = Field(
        default=False, description="Also allow plain http for every allowed runbook host."
    )
    runbook_allow_private_networks: bool = Field(
        default=False,
        description="Allow runbook hosts resolving to loopback/private addresses "
        "(link-local and cloud metadata stay refused).",
    )

    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description="Comma-separated bearer tokens; when set, every endpoint but /health "
        "requires `Authorization: Bearer <token>` (API_TOKENS).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description='Comma-separated origins allowed by CORS ("https://ui.example.com", or '
        '"*"); none: no CORS headers (CORS_ORIGINS).',
    )
    max_alert_bytes: int = Field(
        default=262_144, ge=1024, description="Largest request body accepted (413 beyond)."
    )

    history_database_url: str = Field(
        default="sqlite+aiosqlite:///./data/sre-agent.db",
        description="Checkpoints and session index.",
    )
    history_enabled: bool = True
    history_retention_days: int = Field(default=90, ge=1)

    tool_output_max_bytes: int = Field(
        default=16_384,
        ge=512,
        validation_alias=AliasChoices("TOOL_OUTPUT_MAX_BYTES", "tool_output_max_bytes"),
        description="Cap per tool result kept and shown to the model.",
    )
    tool_timeout: float = Field(default=60.0, gt=0, description="Seconds per MCP tool call.")
    max_iterations: int | None = Field(
        default=None, ge=1, le=50, description="Overrides every agent's max_iterations."
    )
    max_tokens: int = Field(
        default=500_000, ge=1000, description="Default token budget per alert (agents may set)."
    )
    max_duration: float = Field(
        default=1800.0, gt=0, description="Default seconds per alert (agents may set)."
    )
    max_concurrent_alerts: int = Field(default=10, ge=1)
    replica_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="This service process's name among the replicas sharing one database "
        "(default: the host name). Give each process on one host its own (REPLICA_ID).",
    )
    session_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        description="How long a replica's claim on a running session holds without renewal: "
        "after it dies, another replica resumes its sessions this much later.",
    )
    max_queued_alerts: int = Field(default=100, ge=0, description="Waiting beyond the running.")
    alertmanager_dedup_window: float = Field(
        default=3600,
        ge=0,
        description="Seconds after an investigation ends during which Alertmanager "
        "re-notifications of the same alert (fingerprint) start no new one.",
    )
    demo_model_latency: float = Field(
        default=0.0,
        ge=0,
        description="Seconds the demo model 'thinks' per call (demos, benchmarks).",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ... (LOG_LEVEL).")
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="Log lines as JSON objects or text; auto: text on a terminal (LOG_FORMAT).",
    )

    @field_validator("llm_fallback_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        """LLM_FALLBACK_MODELS="openai:gpt-4.1-mini, anthropic:claude-haiku-4-5"."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("runbook_allowed_hosts", "api_tokens", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("runbook_allowed_hosts")
    @classmethod
    def _check_runbook_hosts(cls, value: list[str]) -> list[str]:
        parse_allowed_hosts(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        origins = [origin.rstrip("/") for origin in value]
        for origin in origins:
            scheme, sep, rest = origin.partition("://")
            if origin != "*" and not (
                sep and scheme in ("http", "https") and rest and not set("/?#@ ") & set(rest)
            ):
                raise ValueError(
                    f"CORS origin {origin!r}: expected scheme://host[:port] (no path) or *"
                )
        return origins
