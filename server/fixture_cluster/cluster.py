""":class:`FixtureCluster`: the fixture API served over HTTP on 127.0.0.1, with a request log."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import yaml

from .api import FixtureAPI, FixtureHTTPServer, is_write_request
from .scenario import Scenario

__all__ = ["FixtureCluster", "RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fixture cluster received (``query`` is the raw query string,
    ``time`` the ``time.time()`` it arrived, ``status`` the HTTP status answered)."""

    method: str
    path: str
    query: str
    time: float
    status: int = 0
    accept: str = ""

    @property
    def is_write(self) -> bool:
        return is_write_request(self.method, self.path)


class FixtureCluster:
    """A read-only Kubernetes API server that serves a :class:`Scenario`.

    ``now`` is the cluster's clock for ages in Table output (default: the scenario's
    reference time). Use as ``with FixtureCluster(scenario) as cluster: ...``.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        log_requests: bool = False,
    ) -> None:
        self.scenario = scenario
        self.api = FixtureAPI(scenario, now=now)
        self._host = host
        self._port = port
        self._log_requests = log_requests
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server: FixtureHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving on a background daemon thread (no-op if already started)."""
        if self._server is not None:
            return
        self.api.stopping.clear()
        self._server = FixtureHTTPServer(
            (self._host, self._port), self.api, self._record, self._log_requests
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fixture-cluster-{self.scenario.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (open watches end too)."""
        server, self._server = self._server, None
        if server is None:
            return
        self.api.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FixtureCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (only while started)."""
        if self._server is None:
            raise RuntimeError("the fixture cluster is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port!s}"

    def write_kubeconfig(
        self, path: Path, namespace: str = "default", context: str = "fixture"
    ) -> Path:
        """Write a kubeconfig for this cluster (plain http, no credentials) to ``path``."""
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    # Request log -----------------------------------------------------------------------

    def _record(
        self, method: str, path: str, query: str, started: float, status: int, accept: str
    ) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, started, status, accept))

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of all requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def write_requests(self) -> list[RecordedRequest]:
        """The received requests that would have modified the cluster (all refused)."""
        return [r for r in self.requests if r.is_write]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
