"""The fake chat-completions server's own contract, on the wire (the agent's use of it is in
tests/integration/test_openai_compatible.py)."""

from __future__ import annotations

import json

import httpx

from tests.fakes.chat_completions import FakeChatCompletions, Reply


def post(client: httpx.Client, **body: object) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    return client.post("/chat/completions", json=body)


def test_failure_injection_counts_shares_and_headers():
    with FakeChatCompletions() as fake, httpx.Client(base_url=fake.base_url) as client:
        limited = fake.fail(429, times=2, retry_after=0.25)
        first = post(client)
        assert first.status_code == 429
        assert first.headers["retry-after"] == "1" and first.headers["retry-after-ms"] == "250"
        assert first.json()["error"]["type"] == "rate_limit_exceeded"
        assert post(client).status_code == 429
        assert post(client).status_code == 200 and limited.count == 2

        fake.fail(503, share=0.5, seed=7)
        statuses = [post(client).status_code for _ in range(40)]
        assert 10 < statuses.count(503) < 30  # about half, the same on every run
        assert fake.total == 43 and fake.failed == 2 + statuses.count(503)
        assert [r.status for r in fake.requests][-40:] == statuses

        assert client.get("/models").json()["data"][0]["id"] == "m"
        assert client.post("/embeddings", json={}).status_code == 404


def test_streamed_tool_calls_and_usage_chunk():
    def responder(request):
        return Reply.calls(("lookup", {"name": "billing"}), ("lookup", {"name": "ops"}))

    with (
        FakeChatCompletions(responder, chunk_size=5) as fake,
        httpx.Client(base_url=fake.base_url) as client,
    ):
        response = post(client, stream=True, stream_options={"include_usage": True})
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"] == fake.requests[0].usage
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    calls: dict[int, str] = {}
    for delta in deltas:
        for call in delta.get("tool_calls", []):
            calls[call["index"]] = calls.get(call["index"], "") + call["function"].get(
                "arguments", ""
            )
    assert [json.loads(calls[i]) for i in (0, 1)] == [{"name": "billing"}, {"name": "ops"}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
