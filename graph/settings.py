"""Process settings from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    sre_agent_config: Path | None = Field(default=None, description="YAML registries file.")
    agent_registry: str | None = Field(default=None, description="Seed JSON override.")
    mcp_server_registry: str | None = Field(default=None, description="Seed JSON override.")

    github_token: str | None = Field(default=None, description="Sent for GitHub runbooks only.")
    runbooks_dir: Path | None = Field(
        default=None, description="The only folder local runbook files may be read from."
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
    max_concurrent_alerts: int = Field(default=10, ge=1)
    max_queued_alerts: int = Field(default=100, ge=0, description="Waiting beyond the running.")
    demo_model_latency: float = Field(
        default=0.0,
        ge=0,
        description="Seconds the demo model 'thinks' per call (demos, benchmarks).",
    )
    log_level: str = "INFO"
