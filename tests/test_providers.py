"""Each provider constructs from the settings, and every setting reaches the SDK client it
talks through: model name, endpoint, the key from its variable, timeout and retries.
No request is sent (the clients are only inspected)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from graph.models import (
    KEY_VARIABLES,
    ModelConfigError,
    build_chat_model,
    build_fallback_models,
    choose_fallback_models,
    choose_model,
)
from graph.settings import Settings

URL = "http://127.0.0.1:9/v1"


def build(**values: Any) -> Any:
    s = Settings(_env_file=None, llm_timeout=7.5, llm_max_retries=4, **values)  # type: ignore[call-arg]
    return build_chat_model(choose_model(s), s)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A distinct key per variable, so a test shows which variable a key came from."""
    for names in KEY_VARIABLES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-anthropic")
    monkeypatch.setenv("XAI_API_KEY", "xai-key")


def openai_sdk_clients(model: Any) -> list[Any]:
    return [model.root_client, model.root_async_client]


def test_openai():
    model = build(llm_model="openai:gpt-4.1-mini")
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "gpt-4.1-mini"
    for client in openai_sdk_clients(model):
        assert str(client.base_url) == "https://api.openai.com/v1/"
        assert client.api_key == "sk-openai"
        assert client.timeout == 7.5
        assert client.max_retries == 4
    assert model.stream_usage is True


def test_openai_compatible_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    model = build(llm_model="openai:qwen2.5-coder", llm_base_url=URL)
    assert model.model_name == "qwen2.5-coder"
    for client in openai_sdk_clients(model):
        assert str(client.base_url) == URL + "/"
        assert client.api_key == "not-needed"  # local servers need none; the SDK wants one
        assert client.timeout == 7.5
        assert client.max_retries == 4
    # langchain-openai leaves streamed token usage off for custom endpoints; we turn it on.
    assert model.stream_usage is True


def test_openai_compatible_endpoint_with_a_key():
    model = build(llm_model="openai:served-model", llm_base_url=URL)
    assert model.root_async_client.api_key == "sk-openai"


def test_anthropic():
    model = build(llm_model="anthropic:claude-sonnet-4-5")
    assert type(model).__name__ == "ChatAnthropic"
    assert model.model == "claude-sonnet-4-5"
    for client in (model._client, model._async_client):
        assert str(client.base_url) == "https://api.anthropic.com"
        assert client.api_key == "sk-anthropic"
        assert client.timeout == 7.5
        assert client.max_retries == 4


@pytest.mark.parametrize("variable", ["GOOGLE_API_KEY", "GEMINI_API_KEY"])
def test_google_genai(monkeypatch, variable):
    monkeypatch.setenv(variable, f"{variable}-value")
    model = build(llm_model="google_genai:gemini-2.5-flash")
    assert type(model).__name__ == "ChatGoogleGenerativeAI"
    assert model.model == "gemini-2.5-flash"
    assert model.client._api_client.api_key == f"{variable}-value"
    # Timeout and retries go with each request: milliseconds, and attempts (not retries).
    options = model._prepare_request([HumanMessage("hi")])["config"].http_options
    assert options.timeout == 7500
    assert options.retry_options.attempts == 5


def test_google_genai_zero_retries_means_one_attempt(monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    s = Settings(_env_file=None, llm_model="google_genai:gemini-2.5-flash", llm_max_retries=0)  # type: ignore[call-arg]
    model: Any = build_chat_model(choose_model(s), s)
    # 0 would be read by the Google SDK as "its default": 5 retries.
    assert (
        model._prepare_request([HumanMessage("hi")])["config"].http_options.retry_options.attempts
        == 1
    )


def test_base_url_is_for_openai_compatible_servers_only(monkeypatch):
    """LLM_BASE_URL names the server of `openai:` (and `ollama:`) models; a leftover value
    must not send another provider's requests (and key) there."""
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    anthropic = build(llm_model="anthropic:claude-sonnet-4-5", llm_base_url=URL)
    assert str(anthropic._async_client.base_url) == "https://api.anthropic.com"
    xai = build(llm_model="xai:grok-4", llm_base_url=URL)
    assert str(xai.root_async_client.base_url) == "https://api.x.ai/v1/"
    google = build(llm_model="google_genai:gemini-2.5-flash", llm_base_url=URL)
    assert "127.0.0.1" not in str(google.client._api_client._http_options.base_url)


def test_xai():
    model = build(llm_model="xai:grok-4")
    assert type(model).__name__ == "ChatXAI"
    assert model.model_name == "grok-4"
    for client in openai_sdk_clients(model):
        assert str(client.base_url) == "https://api.x.ai/v1/"
        assert client.api_key == "xai-key"
        assert client.timeout == 7.5
        assert client.max_retries == 4


def test_ollama():
    model = build(llm_model="ollama:llama3.1")
    assert type(model).__name__ == "ChatOllama"
    assert model.model == "llama3.1"
    for client in (model._client._client, model._async_client._client):  # httpx clients
        assert str(client.base_url).startswith("http://127.0.0.1:11434")  # Ollama's default
        assert client.timeout.read == 7.5
    # The Ollama client has no retries of its own: the graph's retry policy covers it.


def test_ollama_endpoint_drops_the_openai_compatible_suffix():
    model = build(llm_model="ollama:llama3.1", llm_base_url="http://127.0.0.1:11500/v1/")
    assert model.base_url == "http://127.0.0.1:11500"
    assert str(model._async_client._client.base_url).startswith("http://127.0.0.1:11500")


def test_key_variables_are_named_when_missing(monkeypatch):
    monkeypatch.delenv("XAI_API_KEY")
    with pytest.raises(ModelConfigError, match="set XAI_API_KEY"):
        build(llm_model="xai:grok-4")


# --- fallback models ----------------------------------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_fallbacks_share_the_endpoint_of_the_primary_provider_only():
    s = settings(
        llm_model="openai:qwen",
        llm_base_url=URL,
        llm_fallback_models="openai:llama, anthropic:claude-haiku-4-5, grok:grok-4, openai:qwen",
    )
    assert [(c.label, c.base_url) for c in choose_fallback_models(s)] == [
        ("openai:llama", URL),
        ("anthropic:claude-haiku-4-5", None),
        ("xai:grok-4", None),  # aliases resolve; the primary itself is dropped
    ]
    built = build_fallback_models(s)
    assert [label for label, _ in built] == [
        "openai:llama",
        "anthropic:claude-haiku-4-5",
        "xai:grok-4",
    ]
    assert str(built[0][1].root_async_client.base_url) == URL + "/"  # type: ignore[attr-defined]
    assert "anthropic.com" in str(built[1][1]._async_client.base_url)  # type: ignore[attr-defined]


def test_fallback_settings_are_checked_at_start_up(monkeypatch):
    with pytest.raises(ModelConfigError, match="LLM_FALLBACK_MODELS entry='gpt-4'"):
        choose_fallback_models(settings(llm_model="openai:x", llm_fallback_models="gpt-4"))
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    s = settings(llm_model="openai:x", llm_fallback_models="anthropic:claude-haiku-4-5")
    with pytest.raises(ModelConfigError, match="set ANTHROPIC_API_KEY"):
        build_fallback_models(s)


def test_no_fallbacks_by_default():
    assert settings(llm_model="openai:x").llm_fallback_models == []
    assert build_fallback_models(settings(llm_model="openai:x")) == []
