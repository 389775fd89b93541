"""A local OpenAI-compatible chat-completions server for tests: real HTTP on 127.0.0.1, so
the real provider client (langchain-openai → openai SDK) runs unchanged against it.

    with FakeChatCompletions() as server:              # or: server.start() / server.stop()
        settings = Settings(llm_model="openai:m", llm_base_url=server.base_url)
        ...
        server.requests                                 # every request, with what was answered

Speaks `POST /v1/chat/completions` (non-streamed, and streamed as SSE `data:` chunks with
content and tool-call deltas, finish reasons, the `stream_options.include_usage` usage chunk
and `[DONE]`) and `GET /v1/models`. Answers come from a responder called with each
`ChatRequest` (default `auto_reply`: fills the requested schema, or calls an offered tool);
a `Reply(structured={...})` is shaped the way the request asked for structured output:
JSON content for `response_format` (json_schema / json_object), a forced tool call for
`tool_choice` (langchain's function_calling method).

Failure injection for retry, fallback and soak tests: `server.fail(status=429,
retry_after=0.05, times=2)`, `server.fail(status=500, model="primary")`,
`server.fail(status=503, share=0.2, seed=1)`, `server.fail(status=504, delay=2.0)` (answers
late: client timeouts). `latency` delays every answer; `chunk_delay` every SSE chunk."""

from __future__ import annotations

import itertools
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "ChatRequest",
    "Failure",
    "FakeChatCompletions",
    "Reply",
    "auto_reply",
    "example_for_schema",
]


@dataclass
class ChatRequest:
    """One request the server received, and what it answered (`status`, `usage`)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    time: float
    status: int = 0
    usage: dict[str, int] | None = None
    """The usage the server reported for this request (None: failed, or not reported)."""
    reply: Reply | None = None

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The function definitions offered (`{"name", "description", "parameters"}`)."""
        return [t["function"] for t in self.body.get("tools") or [] if t.get("function")]

    @property
    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    @property
    def forced_tool(self) -> str | None:
        """The function `tool_choice` forces, if any (structured output by tool call)."""
        choice = self.body.get("tool_choice")
        if isinstance(choice, dict):
            return (choice.get("function") or {}).get("name")
        return None

    @property
    def response_format(self) -> dict[str, Any] | None:
        value = self.body.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def structured_output(self) -> str | None:
        """The schema name when structured output is asked for (either way), else None."""
        fmt = self.response_format
        if fmt and fmt.get("type") == "json_schema":
            return str((fmt.get("json_schema") or {}).get("name", "json_schema"))
        if fmt and fmt.get("type") == "json_object":
            return "json_object"
        return self.forced_tool

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema of the requested structured output, if any."""
        fmt = self.response_format
        if fmt and fmt.get("type") == "json_schema":
            return (fmt.get("json_schema") or {}).get("schema")
        forced = self.forced_tool
        for tool in self.tools:
            if tool["name"] == forced:
                return tool.get("parameters")
        return None

    @property
    def text(self) -> str:
        """All message text of the prompt, joined (for assertions and responders)."""
        return "\n".join(_content_text(m.get("content")) for m in self.messages)


@dataclass
class Reply:
    """What to answer: text, tool calls, or values for the requested structured output."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    structured: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    """Override the computed usage (`prompt_tokens`, `completion_tokens`)."""

    @classmethod
    def text(cls, content: str) -> Reply:
        return cls(content=content)

    @classmethod
    def calls(cls, *calls: tuple[str, dict[str, Any]], content: str = "") -> Reply:
        return cls(content=content, tool_calls=list(calls))

    @classmethod
    def values(cls, **values: Any) -> Reply:
        return cls(structured=values)


Responder = Callable[[ChatRequest], Reply]


@dataclass
class Failure:
    """An injected error answer (see `FakeChatCompletions.fail`)."""

    status: int = 500
    times: int | None = None
    """Fail only the first `times` matching requests (None: no limit)."""
    share: float | None = None
    """Fail this fraction of matching requests, at random (seeded)."""
    model: str | None = None
    """Only requests for this model name."""
    retry_after: float | None = None
    """Seconds, sent as `Retry-After` (rounded up) and `retry-after-ms`."""
    delay: float = 0.0
    """Seconds to wait before answering (beyond a client timeout: a hang)."""
    message: str | None = None
    seed: int | None = None
    count: int = 0
    """How many requests this rule failed so far."""
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._random.seed(self.seed)

    def matches(self, request: ChatRequest) -> bool:
        if self.model is not None and request.model != self.model:
            return False
        if self.times is not None and self.count >= self.times:
            return False
        return self.share is None or self._random.random() < self.share


# --- responses ----------------------------------------------------------------------------


def example_for_schema(
    schema: dict[str, Any] | None, root: dict[str, Any] | None = None, *, boolean: bool = True
) -> Any:
    """A value that satisfies a (simple) JSON schema: first enum value, `boolean` for
    booleans, "example" for strings, empty lists, objects with every property."""
    if not schema:
        return {}
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return example_for_schema(
            (root.get("$defs") or root.get("definitions") or {}).get(name), root, boolean=boolean
        )
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0], root, boolean=boolean)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {
            name: example_for_schema(sub, root, boolean=boolean)
            for name, sub in (schema.get("properties") or {}).items()
        }
    return {
        "array": [],
        "string": "example",
        "integer": 0,
        "number": 0,
        "boolean": boolean,
        "null": None,
    }.get(kind)


def auto_reply(request: ChatRequest) -> Reply:
    """The default responder: fill a requested schema (booleans true, so an agent's
    "conclude" ends the loop), else call the first offered tool, else say something."""
    if request.structured_output:
        return Reply(structured=example_for_schema(request.schema))
    if request.tools:
        tool = request.tools[0]
        args = example_for_schema(tool.get("parameters"))
        return Reply.calls((tool["name"], args if isinstance(args, dict) else {}))
    return Reply.text("Nothing to add.")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


_FAILURE_TYPES = {429: "rate_limit_exceeded", 408: "timeout", 503: "service_unavailable"}


# --- the server ---------------------------------------------------------------------------


class FakeChatCompletions:
    """The server. `base_url` is `http://127.0.0.1:<port>/v1` once started."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        chunk_size: int = 12,
        record: bool = True,
    ) -> None:
        self.responder: Responder = responder or auto_reply
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.chunk_size = chunk_size
        self.record = record
        """Keep every request in `requests` (off for long soak runs; counters still count)."""
        self.failures: list[Failure] = []
        self.total = 0
        self.failed = 0
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._requests: list[ChatRequest] = []
        self._ids = itertools.count(1)
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeChatCompletions:
        if self._server is None:
            self._server = _HTTPServer((self._host, self._port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-chat-completions",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeChatCompletions:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # requests and failures

    @property
    def requests(self) -> list[ChatRequest]:
        """Chat-completion requests received, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[ChatRequest]:
        return [r for r in self.requests if r.model == model]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self.total = self.failed = 0

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = None,
        share: float | None = None,
        model: str | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        message: str | None = None,
        seed: int | None = 0,
    ) -> Failure:
        """Answer matching requests with `status` (rules are checked in order)."""
        rule = Failure(status, times, share, model, retry_after, delay, message, seed)
        with self._lock:
            self.failures.append(rule)
        return rule

    def _failure_for(self, request: ChatRequest) -> Failure | None:
        with self._lock:
            self.total += 1
            if self.record:
                self._requests.append(request)
            for rule in self.failures:
                if rule.matches(request):
                    rule.count += 1
                    self.failed += 1
                    return rule
        return None

    # answers

    def _completion_id(self) -> str:
        return f"chatcmpl-fake-{next(self._ids)}"

    def shape(self, request: ChatRequest, reply: Reply) -> tuple[str, list[dict[str, Any]]]:
        """(content, tool_calls) in the wire format the request asked for."""
        content, calls = reply.content, list(reply.tool_calls)
        if reply.structured is not None:
            if request.forced_tool and not request.response_format:
                calls = [(request.forced_tool, reply.structured)]
            else:
                content = json.dumps(reply.structured)
        tool_calls = [
            {
                "id": f"call_fake_{next(self._ids)}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for name, args in calls
        ]
        return content, tool_calls

    def usage_for(self, request: ChatRequest, reply: Reply, content: str, calls: Any) -> Any:
        prompt = _tokens(json.dumps(request.messages) + json.dumps(request.tools))
        completion = _tokens(content + json.dumps(calls))
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, **(reply.usage or {})}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return usage

    def completion(self, request: ChatRequest, reply: Reply) -> dict[str, Any]:
        content, calls = self.shape(request, reply)
        usage = self.usage_for(request, reply, content, calls)
        request.usage = usage
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if calls:
            message["tool_calls"] = calls
        return {
            "id": self._completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": usage,
        }

    def chunks(self, request: ChatRequest, reply: Reply) -> Iterator[dict[str, Any]]:
        """The SSE chunk objects of a streamed answer."""
        content, calls = self.shape(request, reply)
        usage = self.usage_for(request, reply, content, calls)
        base = {
            "id": self._completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
            "system_fingerprint": None,
        }
        extra = {"usage": None} if request.include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice], **extra}

        size = self.chunk_size
        yield chunk({"role": "assistant", "content": ""})
        for start in range(0, len(content), size):
            yield chunk({"content": content[start : start + size]})
        for index, call in enumerate(calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            yield chunk({"tool_calls": [{**head, "function": {"name": call["function"]["name"]}}]})
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), size):
                piece = arguments[start : start + size]
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if calls else "stop")
        if request.include_usage:
            request.usage = usage
            yield {**base, "choices": [], "usage": usage}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeChatCompletions) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            models = sorted({r.model for r in self.server.fake.requests} or {"fake-model"})
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route for GET {self.path}", "not_found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not re.search(r"/chat/completions/?$", self.path.split("?")[0]):
            self._error(404, f"no route for POST {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._error(400, f"invalid JSON body: {exc}", "invalid_request_error")
            return
        fake = self.server.fake
        request = ChatRequest(
            self.path, body, {k.lower(): v for k, v in self.headers.items()}, time.time()
        )
        failure = fake._failure_for(request)
        if failure is not None:
            time.sleep(failure.delay)
            request.status = failure.status
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(max(1, int(-(-failure.retry_after // 1))))
                headers["retry-after-ms"] = str(int(failure.retry_after * 1000))
            message = failure.message or f"injected failure {failure.status}"
            kind = _FAILURE_TYPES.get(failure.status, "server_error")
            self._error(failure.status, message, kind, headers)
            return
        time.sleep(fake.latency)
        try:
            reply = fake.responder(request)
        except Exception as exc:  # a broken responder is a test bug: say so loudly
            request.status = 500
            self._error(500, f"responder failed: {type(exc).__name__}: {exc}", "server_error")
            raise
        request.reply, request.status = reply, 200
        if request.stream:
            self._stream(fake, request, reply)
        else:
            self._json(200, fake.completion(request, reply))

    # writing

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._write(data)

    def _error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        error = {"message": message, "type": kind, "param": None, "code": kind}
        self._json(status, {"error": error}, headers)

    def _stream(self, fake: FakeChatCompletions, request: ChatRequest, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [f"data: {json.dumps(c)}\n\n" for c in fake.chunks(request, reply)]
        for event in [*events, "data: [DONE]\n\n"]:
            if fake.chunk_delay:
                time.sleep(fake.chunk_delay)
            data = event.encode()
            if not self._write(b"%X\r\n%s\r\n" % (len(data), data)):
                return
        self._write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True
            return False
