"""Chat models by name: `LLM_MODEL="provider:model"` (or the seed's DEFAULT_LLM_PROVIDER)
and `LLM_FALLBACK_MODELS` through `init_chat_model`, with start-up checks that name the
missing variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graph.settings import Settings

if TYPE_CHECKING:  # imported when a model is built: keeps `sre-agent --help` fast
    from langchain_core.language_models import BaseChatModel

DEFAULT_MODELS = {
    "openai": "gpt-4.1",
    "anthropic": "claude-sonnet-4-5",
    "google_genai": "gemini-2.5-flash",
    "xai": "grok-4",
    "ollama": "llama3.1",
}
_PROVIDER_ALIASES = {"gemini": "google_genai", "google": "google_genai", "grok": "xai"}
BASE_URL_PROVIDERS = ("openai", "ollama")
"""Providers LLM_BASE_URL applies to (any OpenAI-compatible server; a local Ollama)."""
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


def _parse(value: str, what: str) -> tuple[str, str]:
    provider, sep, model = value.strip().partition(":")
    if not sep or not provider or not model:
        raise ModelConfigError(
            f"{what}={value!r} must look like 'provider:model', "
            "e.g. 'openai:gpt-4.1' or 'anthropic:claude-sonnet-4-5'"
        )
    return _provider(provider), model.strip()


def _provider(name: str) -> str:
    provider = _PROVIDER_ALIASES.get(name.strip().lower(), name.strip().lower())
    if provider not in DEFAULT_MODELS:
        raise ModelConfigError(
            f"unknown model provider '{provider}'; use one of: {', '.join(DEFAULT_MODELS)}"
        )
    return provider


def choose_model(settings: Settings) -> ModelChoice:
    """Resolve LLM_MODEL / DEFAULT_LLM_PROVIDER into a provider and model name.

    LLM_BASE_URL is the endpoint of this model's provider, if that is openai (any
    OpenAI-compatible server) or ollama; the others always use their official endpoints."""
    if settings.llm_model:
        provider, model = _parse(settings.llm_model, "LLM_MODEL")
    elif settings.default_llm_provider:
        provider = _provider(settings.default_llm_provider)
        model = DEFAULT_MODELS[provider]
    else:
        return ModelChoice(None, None)
    return ModelChoice(provider, model, _base_url(provider, settings))


def _base_url(provider: str, settings: Settings) -> str | None:
    return settings.llm_base_url if provider in BASE_URL_PROVIDERS else None


def choose_fallback_models(settings: Settings) -> list[ModelChoice]:
    """LLM_FALLBACK_MODELS, in order, without the primary model or repeats.

    A fallback of the primary's provider shares its LLM_BASE_URL (another model on the same
    OpenAI-compatible server); other providers use their official endpoints (so a fallback
    from a local server to the same provider's cloud cannot be configured)."""
    primary = choose_model(settings)
    seen = {primary.label}
    choices = []
    for entry in settings.llm_fallback_models:
        provider, model = _parse(entry, "LLM_FALLBACK_MODELS entry")
        base_url = _base_url(provider, settings) if provider == primary.provider else None
        choice = ModelChoice(provider, model, base_url)
        if choice.label not in seen:
            seen.add(choice.label)
            choices.append(choice)
    return choices


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


def client_options(choice: ModelChoice, settings: Settings) -> dict[str, Any]:
    """The provider's constructor arguments: key, endpoint, timeout and retries.

    Each integration names these differently and some count differently; the per-provider
    tests (tests/test_providers.py) check that each value reaches the SDK client."""
    assert choice.provider is not None
    provider, url = choice.provider, choice.base_url
    timeout, retries = settings.llm_timeout, settings.llm_max_retries
    key = _api_key(provider, choice)
    options: dict[str, Any]
    if provider == "ollama":
        # ChatOllama has no timeout or retry fields: the timeout goes to its httpx client,
        # retries are left to the graph's retry policy. Its native API is not under /v1.
        options = {"client_kwargs": {"timeout": timeout}}
        if url:
            options["base_url"] = url.rstrip("/").removesuffix("/v1")
        return options
    options = {"timeout": timeout, "max_retries": retries}
    if provider == "google_genai":
        # The Google SDK counts attempts, not retries, and reads 0 as "its default" (5).
        options["max_retries"] = retries + 1
        options["google_api_key"] = key
    else:
        options["api_key"] = key or "not-needed"
    if provider == "openai":
        # Token usage of streamed answers: langchain-openai turns it off for custom
        # endpoints; vLLM, LiteLLM, Ollama and llama.cpp all support `include_usage`.
        options["stream_usage"] = True
    if url:
        options["base_url"] = url
    return options


def build_chat_model(choice: ModelChoice, settings: Settings) -> BaseChatModel:
    """Construct the provider's chat model; fails now rather than at the first call."""
    if choice.is_demo:
        raise ModelConfigError("no model configured; the caller should use the demo model")
    from langchain.chat_models import init_chat_model

    assert choice.provider is not None and choice.model is not None
    options = client_options(choice, settings)
    try:
        return init_chat_model(choice.model, model_provider=choice.provider, **options)
    except ImportError as exc:
        raise ModelConfigError(
            f"provider '{choice.provider}' is not installed: pip install 'sre-agent[providers]'"
        ) from exc


def build_fallback_models(settings: Settings) -> list[tuple[str, BaseChatModel]]:
    """The LLM_FALLBACK_MODELS as (label, model), built (and checked) at start-up."""
    return [(c.label, build_chat_model(c, settings)) for c in choose_fallback_models(settings)]
