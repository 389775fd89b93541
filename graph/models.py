"""Chat models by name: `LLM_MODEL="provider:model"` (or the seed's DEFAULT_LLM_PROVIDER)
through `init_chat_model`, with start-up checks that name the missing variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from graph.settings import Settings

DEFAULT_MODELS = {
    "openai": "gpt-4.1",
    "anthropic": "claude-sonnet-4-5",
    "google_genai": "gemini-2.5-flash",
    "xai": "grok-4",
    "ollama": "llama3.1",
}
_PROVIDER_ALIASES = {"gemini": "google_genai", "google": "google_genai", "grok": "xai"}
KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "google_genai": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "xai": ("XAI_API_KEY",),
    "ollama": (),
}


DEMO_LABEL = "demo:scripted"


class ModelConfigError(ValueError):
    """The model cannot be built from configuration; the message says what to set."""


@dataclass(frozen=True)
class ModelChoice:
    """What the settings ask for: a provider and model, or none (the demo model)."""

    provider: str | None
    model: str | None
    base_url: str | None = None

    @property
    def is_demo(self) -> bool:
        return self.provider is None

    @property
    def label(self) -> str:
        return DEMO_LABEL if self.is_demo else f"{self.provider}:{self.model}"


def choose_model(settings: Settings) -> ModelChoice:
    """Resolve LLM_MODEL / DEFAULT_LLM_PROVIDER into a provider and model name."""
    if settings.llm_model:
        provider, sep, model = settings.llm_model.partition(":")
        if not sep or not provider or not model:
            raise ModelConfigError(
                f"LLM_MODEL={settings.llm_model!r} must look like 'provider:model', "
                "e.g. 'openai:gpt-4.1' or 'anthropic:claude-sonnet-4-5'"
            )
    elif settings.default_llm_provider:
        provider, model = settings.default_llm_provider, ""
    else:
        return ModelChoice(None, None)
    provider = _PROVIDER_ALIASES.get(provider.lower(), provider.lower())
    if provider not in DEFAULT_MODELS:
        raise ModelConfigError(
            f"unknown model provider '{provider}'; use one of: {', '.join(DEFAULT_MODELS)}"
        )
    return ModelChoice(provider, model or DEFAULT_MODELS[provider], settings.llm_base_url)


def _api_key(provider: str, choice: ModelChoice) -> str | None:
    names = KEY_VARIABLES[provider]
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if not names or (provider == "openai" and choice.base_url):
        return None  # local servers (Ollama, vLLM) need no key
    raise ModelConfigError(
        f"model {choice.label} needs an API key: set {' or '.join(names)} "
        "(or unset LLM_MODEL to run the scripted demo model)"
    )


def build_chat_model(choice: ModelChoice, settings: Settings) -> BaseChatModel:
    """Construct the provider's chat model; fails now rather than at the first call."""
    if choice.is_demo:
        raise ModelConfigError("no model configured; the caller should use the demo model")
    from langchain.chat_models import init_chat_model

    assert choice.provider is not None and choice.model is not None
    kwargs: dict[str, Any] = {
        "timeout": settings.llm_timeout,
        "max_retries": settings.llm_max_retries,
    }
    key = _api_key(choice.provider, choice)
    if choice.provider == "openai":
        if choice.base_url:
            kwargs["base_url"] = choice.base_url
        kwargs["api_key"] = key or "not-needed"
    elif choice.provider == "google_genai" and key:
        kwargs["google_api_key"] = key
    elif choice.provider == "ollama":
        if choice.base_url:
            kwargs["base_url"] = choice.base_url
        kwargs.pop("max_retries")
    elif key:
        kwargs["api_key"] = key
    try:
        return init_chat_model(choice.model, model_provider=choice.provider, **kwargs)
    except ImportError as exc:
        raise ModelConfigError(
            f"provider '{choice.provider}' is not installed: pip install 'sre-agent[providers]'"
        ) from exc
