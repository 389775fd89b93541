"""Model selection by name; missing keys fail at start-up naming the variable."""

from __future__ import annotations

import pytest

from graph.models import ModelConfigError, build_chat_model, choose_model
from graph.settings import Settings


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "XAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_no_model_configured_means_demo():
    assert choose_model(settings()).is_demo


@pytest.mark.parametrize(
    ("values", "label"),
    [
        ({"llm_model": "openai:gpt-4.1-mini"}, "openai:gpt-4.1-mini"),
        ({"default_llm_provider": "gemini"}, "google_genai:gemini-2.5-flash"),
        ({"default_llm_provider": "grok"}, "xai:grok-4"),
        ({"default_llm_provider": "openai"}, "openai:gpt-4.1"),
    ],
)
def test_model_names(values, label):
    assert choose_model(settings(**values)).label == label


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("openai:gpt-4.1", "OPENAI_API_KEY"),
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("google_genai:gemini-2.5-flash", "GOOGLE_API_KEY or GEMINI_API_KEY"),
        ("xai:grok-4", "XAI_API_KEY"),
    ],
)
def test_missing_key_names_the_variable(model, variable):
    s = settings(llm_model=model)
    with pytest.raises(ModelConfigError, match=f"set {variable}"):
        build_chat_model(choose_model(s), s)


def test_bad_model_string_says_the_expected_shape():
    with pytest.raises(ModelConfigError, match="provider:model"):
        choose_model(settings(llm_model="gpt-4"))
    with pytest.raises(ModelConfigError, match="unknown model provider 'acme'"):
        choose_model(settings(llm_model="acme:x"))


def test_openai_compatible_endpoint_needs_no_key():
    s = settings(llm_model="openai:qwen2.5", llm_base_url="http://127.0.0.1:9/v1")
    model = build_chat_model(choose_model(s), s)
    assert model.model_name == "qwen2.5"  # type: ignore[attr-defined]
    assert str(model.openai_api_base) == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


def test_key_reaches_the_client(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    s = settings(llm_model="google_genai:gemini-2.5-flash")
    model = build_chat_model(choose_model(s), s)
    assert model.google_api_key.get_secret_value() == "g-key"  # type: ignore[attr-defined]
