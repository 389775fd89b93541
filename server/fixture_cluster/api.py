"""The fixture Kubernetes API: routing of requests to discovery, objects, logs and reviews.

:class:`FixtureAPI` answers one request at a time as a :class:`Response` (no sockets
involved); :class:`APIRequestHandler` is the ``http.server`` glue around it. The API is
read-only: every write is answered with a ``405 MethodNotAllowed`` Status.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .resources import READ_ONLY_REVIEWS, ResourceRegistry, ResourceType
from .scenario import Scenario
from .selectors import field_selector, label_selector
from .store import ObjectStore
from .tables import render_table

__all__ = [
    "APIRequestHandler",
    "FixtureAPI",
    "FixtureHTTPServer",
    "Response",
    "is_write_request",
]

Obj = dict[str, Any]
Query = Mapping[str, list[str]]

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T18:36:33Z",
    "goVersion": "go1.22.10",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_HTTP_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def is_write_request(method: str, path: str) -> bool:
    """Would this request modify the cluster? (SSAR/SSRR POSTs only ask, so they don't.)"""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return False
    last = urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
    return not (method == "POST" and last in READ_ONLY_REVIEWS)


@dataclass
class Response:
    """An HTTP response of the fixture API."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    watch: bool = False  # an (empty) watch stream: the handler keeps it open for a while
    watch_timeout: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode())

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), "text/plain; charset=utf-8")


def status_response(
    code: int, message: str, details: Obj | None = None, reason: str | None = None
) -> Response:
    """A Kubernetes ``Status`` failure object."""
    payload: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _HTTP_REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        payload["details"] = details
    return Response.json(payload, code)


def not_found(rt: ResourceType | None = None, name: str = "") -> Response:
    if rt is None:
        return status_response(404, "the server could not find the requested resource")
    details: Obj = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return status_response(404, f'{rt.group_resource} "{name}" not found', details)


def _first(query: Query, key: str, default: str = "") -> str:
    values = query.get(key)
    return values[0] if values else default


def _truthy(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


def _media_alternatives(accept: str) -> list[tuple[str, dict[str, str]]]:
    result = []
    for alternative in accept.split(","):
        parts = [p.strip() for p in alternative.split(";")]
        params = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip()
        result.append((parts[0].lower(), params))
    return result


def _negotiate(accept: str) -> tuple[str, str]:
    """``("table"|"partial"|"json", meta.k8s.io version)`` for an Accept header."""
    for media_type, params in _media_alternatives(accept or "application/json"):
        if media_type not in ("application/json", "*/*", "application/*", ""):
            continue  # e.g. protobuf, which the fixture does not speak
        as_kind = params.get("as", "")
        if as_kind == "Table" and params.get("g") == "meta.k8s.io":
            return "table", params.get("v", "v1")
        if as_kind.startswith("PartialObjectMetadata") and params.get("g") == "meta.k8s.io":
            return "partial", params.get("v", "v1")
        if not as_kind:
            return "json", "v1"
    return "json", "v1"


@dataclass
class _Target:
    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None
    subresource: str | None
    rest: list[str]


class FixtureAPI:
    """Answers Kubernetes API requests from a scenario's objects and logs."""

    def __init__(self, scenario: Scenario, now: datetime | None = None) -> None:
        self.scenario = scenario
        self.now = now or scenario.reference_time
        self.registry = ResourceRegistry(scenario.objects)
        self.store = ObjectStore(scenario, self.registry)
        self.stopping = threading.Event()

    # Entry point -----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Query,
        accept: str = "application/json",
        body: bytes = b"",
        server_address: str = "127.0.0.1:443",
    ) -> Response:
        method = method.upper()
        segments = [s for s in path.split("/") if s]
        if is_write_request(method, path):
            return self._refuse_write(method, path)
        if method == "POST":
            return self._review(segments, body)
        try:
            return self._get(segments, query, accept, server_address)
        except ValueError as exc:  # bad selector or non-integer limit/tailLines/...
            return status_response(400, str(exc))

    def _get(self, segments: list[str], query: Query, accept: str, address: str) -> Response:
        if not segments:
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]
            paths += [f"/apis/{g}" for g in self.registry.group_versions() if g]
            return Response.json({"paths": sorted(paths)})
        head = segments[0]
        if head == "version" and len(segments) == 1:
            return Response.json(KUBERNETES_VERSION)
        if head in ("healthz", "livez", "readyz"):
            return Response.text("ok")
        if head == "api":
            if len(segments) == 1:
                return Response.json(self.registry.api_versions(address))
            return self._resource_request("", segments[1], segments[2:], query, accept)
        if head == "apis":
            if len(segments) == 1:
                return Response.json(self.registry.api_group_list())
            if len(segments) == 2:
                group = self.registry.api_group(segments[1])
                if group is None:
                    return not_found()
                return Response.json({"kind": "APIGroup", "apiVersion": "v1", **group})
            return self._resource_request(segments[1], segments[2], segments[3:], query, accept)
        return not_found()

    # Writes and reviews ----------------------------------------------------------------

    def _refuse_write(self, method: str, path: str) -> Response:
        return status_response(
            405,
            f"the fixture cluster is read-only: {method} {urlsplit(path).path} is not allowed",
            {"causes": [{"reason": "MethodNotAllowed", "message": "read-only fixture cluster"}]},
        )

    def _review(self, segments: list[str], body: bytes) -> Response:
        kinds = {
            "selfsubjectaccessreviews": "SelfSubjectAccessReview",
            "selfsubjectrulesreviews": "SelfSubjectRulesReview",
        }
        if len(segments) != 4 or segments[:3] != ["apis", "authorization.k8s.io", "v1"]:
            return not_found()
        kind = kinds.get(segments[3])
        if kind is None:
            return not_found()
        spec: Obj = {}
        try:
            parsed = json.loads(body.decode("utf-8")) if body else {}
            if isinstance(parsed, dict) and isinstance(parsed.get("spec"), dict):
                spec = parsed["spec"]
        except (UnicodeDecodeError, ValueError):
            pass  # protobuf or garbage: the answer does not depend on it
        status: Obj
        if kind == "SelfSubjectAccessReview":
            status = {"allowed": True, "reason": "the fixture cluster allows all reads"}
        else:
            status = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False,
            }
        review = {
            "kind": kind,
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return Response.json(review, 201)

    # Resources -------------------------------------------------------------------------

    def _target(self, group: str, version: str, rest: list[str]) -> _Target | None:
        if not rest:
            return None
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = self.registry.lookup(group, version, rest[2])
            if rt is not None and rt.namespaced and "/" not in rt.plural:
                name = rest[3] if len(rest) > 3 else None
                sub = rest[4] if len(rest) > 4 else None
                return _Target(group, version, rest[1], rest[2], name, sub, rest[5:])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return _Target(group, version, None, rest[0], name, sub, rest[3:])

    def _resource_request(
        self, group: str, version: str, rest: list[str], query: Query, accept: str
    ) -> Response:
        if not rest:
            resources = self.registry.api_resource_list(group, version)
            return Response.json(resources) if resources else not_found()
        target = self._target(group, version, rest)
        if target is None:
            return not_found()
        rt = self.registry.lookup(group, version, target.plural)
        if rt is None or not rt.served:
            return not_found()
        if target.subresource is not None:
            return self._subresource(rt, target, query, accept)
        if target.name is None:
            if _truthy(_first(query, "watch")):
                return self._watch(query)
            return self._list(rt, target.namespace, query, accept)
        if rt.namespaced and target.namespace is None:
            return not_found()
        obj = self.store.get(rt, target.namespace, target.name)
        if obj is None:
            return not_found(rt, target.name)
        return self._render(rt, [obj], accept, query, single=True)

    def _list(self, rt: ResourceType, namespace: str | None, query: Query, accept: str) -> Response:
        labels = label_selector(_first(query, "labelSelector"))
        fields = field_selector(_first(query, "fieldSelector"))
        items = [o for o in self.store.list(rt, namespace) if labels(o) and fields(o)]
        return self._render(rt, items, accept, query, single=False)

    def _render(
        self, rt: ResourceType, items: list[Obj], accept: str, query: Query, single: bool
    ) -> Response:
        resource_version = self.store.resource_version
        metadata: Obj = {"resourceVersion": resource_version}
        if not single:
            limit = int(_first(query, "limit", "0") or 0)
            offset = int(_first(query, "continue", "0") or 0)
            if limit > 0 or offset > 0:
                end = offset + limit if limit > 0 else len(items)
                if end < len(items):
                    metadata["continue"] = str(end)
                    metadata["remainingItemCount"] = len(items) - end
                items = items[offset:end]
        mode, meta_version = _negotiate(accept)
        if mode == "table":
            table = render_table(
                rt,
                items,
                self.now,
                include_object=_first(query, "includeObject", "Metadata"),
                resource_version=resource_version,
                table_version=meta_version,
            )
            table["metadata"] = metadata
            return Response.json(table)
        if mode == "partial":
            partial = [
                {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": f"meta.k8s.io/{meta_version}",
                    "metadata": o["metadata"],
                }
                for o in items
            ]
            if single:
                return Response.json(partial[0])
            return Response.json(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": f"meta.k8s.io/{meta_version}",
                    "metadata": metadata,
                    "items": partial,
                }
            )
        if single:
            return Response.json(items[0])
        return Response.json(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": metadata,
                "items": items,
            }
        )

    def _watch(self, query: Query) -> Response:
        timeout = float(_first(query, "timeoutSeconds", "30") or 30)
        return Response(200, watch=True, watch_timeout=min(timeout, 30.0))

    def _subresource(
        self, rt: ResourceType, target: _Target, query: Query, accept: str
    ) -> Response:
        name = target.name or ""
        sub = target.subresource or ""
        if self.registry.lookup(rt.group, rt.version, f"{rt.plural}/{sub}") is None:
            return not_found()
        if rt.namespaced and target.namespace is None:
            return not_found()
        obj = self.store.get(rt, target.namespace, name)
        if obj is None:
            return not_found(rt, name)
        if sub == "log" and rt.plural == "pods":
            return self._pod_log(obj, query)
        if sub == "status":
            return self._render(rt, [obj], accept, query, single=True)
        if sub == "scale":
            return Response.json(_scale(obj))
        if sub == "proxy":
            return status_response(
                503, f"no kubelet behind the fixture cluster: cannot proxy to {rt.kind} {name}"
            )
        return status_response(400, f"the fixture cluster does not support {rt.plural}/{sub}")

    def _pod_log(self, pod: Obj, query: Query) -> Response:
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        names = [
            c.get("name", "")
            for key in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(key) or []
        ]
        container = _first(query, "container")
        if not container:
            main = [c.get("name", "") for c in spec.get("containers") or []]
            if len(main) != 1:
                return status_response(
                    400,
                    f"a container name must be specified for pod {meta['name']}, "
                    f"choose one of: [{' '.join(main)}]",
                )
            container = main[0]
        if container not in names:
            return status_response(
                400, f"container {container} is not valid for pod {meta['name']}"
            )
        previous = _truthy(_first(query, "previous"))
        text = self.scenario.log(meta["namespace"], meta["name"], container, previous)
        if text is None:
            if previous:
                return status_response(
                    400,
                    f'previous terminated container "{container}" in pod "{meta["name"]}" '
                    "not found",
                )
            text = ""
        tail = _first(query, "tailLines")
        if tail:
            lines = text.splitlines(keepends=True)
            count = int(tail)
            text = "".join(lines[-count:]) if count > 0 else ""
        limit = _first(query, "limitBytes")
        if limit and int(limit) > 0:
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return Response.text(text)


def _scale(obj: Obj) -> Obj:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: obj["metadata"][k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in obj["metadata"]
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in labels.items()),
        },
    }


Recorder = Callable[[str, str, str, float, int, str], None]
"""``(method, path, raw query, start time, status, accept)`` → None."""


class FixtureHTTPServer(ThreadingHTTPServer):
    """Threading HTTP server for a :class:`FixtureAPI` (TCP_NODELAY on every connection)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        api: FixtureAPI,
        record: Recorder,
        log_requests: bool = False,
    ) -> None:
        self.api = api
        self.record = record
        self.log_requests = log_requests
        super().__init__(address, APIRequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


class APIRequestHandler(BaseHTTPRequestHandler):
    """``http.server`` handler: reads the whole body, asks the API, records, answers."""

    protocol_version = "HTTP/1.1"
    server_version = "fixture-kube-apiserver/1.0"
    server: FixtureHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        started = time.time()
        body = self._read_body()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        accept = self.headers.get("Accept", "")
        address = self.headers.get("Host") or "127.0.0.1"
        try:
            response = self.server.api.handle(
                self.command, parts.path, query, accept or "application/json", body, address
            )
        except Exception as exc:
            traceback.print_exc()
            response = status_response(500, f"fixture cluster error: {exc!r}")
        self.server.record(self.command, parts.path, parts.query, started, response.status, accept)
        if response.watch:
            self._stream_empty_watch(response.watch_timeout)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _stream_empty_watch(self, timeout: float) -> None:
        """An empty watch stream that ends after ``timeout`` seconds or on shutdown."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.server.api.stopping.wait(timeout)
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch
