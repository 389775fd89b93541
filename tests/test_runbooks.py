"""Tests for graph.runbooks against a real HTTP server on 127.0.0.1 (and "localhost")."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from graph.runbooks import Runbook, RunbookError, RunbookFetcher, github_raw_url

TOKEN = "ghp_test_token"
RUNBOOK = "# DB latency\n\nCheck the slow-query log. Ünïcödé ✓\n".encode()
LIMIT = 1_000


@dataclass
class Seen:
    host: str
    path: str
    authorization: str | None


@dataclass
class Server:
    port: int
    requests: list[Seen] = field(default_factory=list)

    @property
    def github(self) -> str:
        """The "GitHub" origin (used as raw_base_url)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def other(self) -> str:
        """Same server under another host name: a non-GitHub host."""
        return f"http://localhost:{self.port}"


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            server.requests.append(
                Seen(self.headers["Host"], self.path, self.headers.get("Authorization"))
            )
            path = self.path
            if path in ("/acme/runbooks/main/db/latency.md", "/landed.md"):
                self._send(200, RUNBOOK, Content_Type="text/plain; charset=utf-8")
            elif path == "/acme/runbooks/main/latin1.md":
                self._send(200, b"caf\xe9\n")
            elif path == "/acme/runbooks/main/logo.png":
                self._send(200, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
            elif path == "/acme/private/main/x.md":
                self._send(403, b"Forbidden")
            elif path == "/boom":
                self._send(500, b"oops")
            elif path == "/redirect-cross":
                self._send(302, Location=f"{server.other}/landed.md")
            elif path == "/redirect-same":
                self._send(301, Location="/acme/runbooks/main/db/latency.md")
            elif path == "/redirect-loop":
                self._send(302, Location="/redirect-loop")
            elif path == "/slow":
                time.sleep(2)
                self._send(200, b"too late")
            elif path == "/big":
                self._send(200, b"x" * (LIMIT + 1))
            elif path == "/big-stream":  # no Content-Length: HTTP/1.0, ends at close
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(1_000):
                        self.wfile.write(b"y" * 1_000)
                except OSError:
                    pass  # the client stopped reading, as it should
            else:
                self._send(404, b"Not Found")

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    state = Server(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
async def fetcher(server: Server, tmp_path: Path) -> AsyncIterator[RunbookFetcher]:
    server.requests.clear()
    async with RunbookFetcher(
        github_token=TOKEN, raw_base_url=server.github, timeout=0.5, max_bytes=LIMIT
    ) as f:
        yield f


async def _error(fetcher: RunbookFetcher, reference: str) -> str:
    with pytest.raises(RunbookError) as info:
        await fetcher.fetch(reference)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- URL conversion -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://github.com/acme/runbooks/blob/main/db/latency.md",
            "https://raw.githubusercontent.com/acme/runbooks/main/db/latency.md",
        ),
        (
            "https://github.com/acme/runbooks/blob/main/db/latency.md?plain=1#L10-L20",
            "https://raw.githubusercontent.com/acme/runbooks/main/db/latency.md",
        ),
        (
            "https://github.com/acme/runbooks/raw/v1.2/latency.md",
            "https://raw.githubusercontent.com/acme/runbooks/v1.2/latency.md",
        ),
        (
            "https://www.GitHub.com/acme/runbooks/blob/refs/heads/main/a%20b.md",
            "https://raw.githubusercontent.com/acme/runbooks/refs/heads/main/a%20b.md",
        ),
        (  # already raw: unchanged
            "https://raw.githubusercontent.com/acme/runbooks/main/db/latency.md",
            "https://raw.githubusercontent.com/acme/runbooks/main/db/latency.md",
        ),
        ("https://github.com/acme/runbooks", "https://github.com/acme/runbooks"),
        (
            "https://github.com/acme/runbooks/tree/main/db",
            "https://github.com/acme/runbooks/tree/main/db",
        ),
        ("https://wiki.example.com/runbooks/db", "https://wiki.example.com/runbooks/db"),
        ("runbooks/db.md", "runbooks/db.md"),
    ],
)
def test_github_raw_url(url: str, expected: str) -> None:
    assert github_raw_url(url) == expected


def test_github_raw_url_custom_base() -> None:
    assert (
        github_raw_url("https://github.com/o/r/blob/main/x.md", "http://127.0.0.1:9/raw/")
        == "http://127.0.0.1:9/raw/o/r/main/x.md"
    )


# -- HTTP -----------------------------------------------------------------------------


async def test_blob_url_fetched_from_raw_host_with_token(
    fetcher: RunbookFetcher, server: Server
) -> None:
    ref = "https://github.com/acme/runbooks/blob/main/db/latency.md?plain=1"
    runbook = await fetcher.fetch(ref)
    assert runbook == Runbook(
        reference=ref,
        source=f"{server.github}/acme/runbooks/main/db/latency.md",
        content=RUNBOOK.decode(),
        sha256=hashlib.sha256(RUNBOOK).hexdigest(),
        size=len(RUNBOOK),
    )
    assert [(r.path, r.authorization) for r in server.requests] == [
        ("/acme/runbooks/main/db/latency.md", f"Bearer {TOKEN}")
    ]


async def test_token_not_sent_to_other_host(fetcher: RunbookFetcher, server: Server) -> None:
    runbook = await fetcher.fetch(f"{server.other}/acme/runbooks/main/db/latency.md")
    assert runbook.content == RUNBOOK.decode()
    assert [r.authorization for r in server.requests] == [None]


async def test_token_not_sent_after_cross_host_redirect(
    fetcher: RunbookFetcher, server: Server
) -> None:
    runbook = await fetcher.fetch(f"{server.github}/redirect-cross")
    assert runbook.source == f"{server.other}/landed.md"
    assert [(r.host, r.authorization) for r in server.requests] == [
        (f"127.0.0.1:{server.port}", f"Bearer {TOKEN}"),
        (f"localhost:{server.port}", None),
    ]


async def test_token_kept_on_same_host_redirect(fetcher: RunbookFetcher, server: Server) -> None:
    runbook = await fetcher.fetch(f"{server.github}/redirect-same")
    assert runbook.source == f"{server.github}/acme/runbooks/main/db/latency.md"
    assert [r.authorization for r in server.requests] == [f"Bearer {TOKEN}"] * 2


async def test_redirect_limit(fetcher: RunbookFetcher, server: Server) -> None:
    assert "too many redirects" in await _error(fetcher, f"{server.github}/redirect-loop")
    assert len(server.requests) == 6  # the first request and 5 redirects


async def test_404(fetcher: RunbookFetcher, server: Server) -> None:
    message = await _error(fetcher, "https://github.com/acme/runbooks/blob/main/missing.md")
    assert message.startswith(
        f"runbook not found (HTTP 404): {server.github}/acme/runbooks/main/missing.md"
    )


async def test_403_mentions_github_token(fetcher: RunbookFetcher, server: Server) -> None:
    message = await _error(fetcher, f"{server.github}/acme/private/main/x.md")
    assert "HTTP 403" in message
    assert "GITHUB_TOKEN" in message


async def test_other_status(fetcher: RunbookFetcher, server: Server) -> None:
    assert "HTTP 500" in await _error(fetcher, f"{server.github}/boom")


async def test_timeout(fetcher: RunbookFetcher, server: Server) -> None:
    started = time.monotonic()
    assert "timed out after 0.5s" in await _error(fetcher, f"{server.github}/slow")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
async def test_size_limit(fetcher: RunbookFetcher, server: Server, path: str) -> None:
    assert f"larger than the {LIMIT}-byte limit" in await _error(fetcher, server.github + path)


async def test_connection_refused(fetcher: RunbookFetcher) -> None:
    assert "could not fetch runbook from 127.0.0.1" in await _error(
        fetcher, "http://127.0.0.1:1/x.md"
    )


async def test_non_utf8_replaced_and_binary_refused(
    fetcher: RunbookFetcher, server: Server
) -> None:
    runbook = await fetcher.fetch(f"{server.github}/acme/runbooks/main/latin1.md")
    assert runbook.content == "caf\ufffd\n"
    assert runbook.sha256 == hashlib.sha256(b"caf\xe9\n").hexdigest()
    assert runbook.size == 5
    assert "binary" in await _error(fetcher, f"{server.github}/acme/runbooks/main/logo.png")


@pytest.mark.parametrize("reference", ["", "   ", "ftp://example.com/x.md"])
async def test_bad_references(fetcher: RunbookFetcher, reference: str) -> None:
    await _error(fetcher, reference)


async def test_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"mocked")

    async with RunbookFetcher(github_token=TOKEN, transport=httpx.MockTransport(handle)) as fetcher:
        runbook = await fetcher.fetch("https://github.com/o/r/blob/main/x.md")
        await fetcher.fetch("https://example.com/x.md")
    assert runbook.content == "mocked"
    assert [str(r.url) for r in seen] == [
        "https://raw.githubusercontent.com/o/r/main/x.md",
        "https://example.com/x.md",
    ]
    assert [r.headers.get("Authorization") for r in seen] == [f"Bearer {TOKEN}", None]


# -- local files ----------------------------------------------------------------------


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runbooks"
    (root / "db").mkdir(parents=True)
    (root / "db" / "latency.md").write_bytes(RUNBOOK)
    (tmp_path / "secret.txt").write_text("top secret")
    return root


@pytest.fixture
async def local(runbooks_dir: Path) -> AsyncIterator[RunbookFetcher]:
    async with RunbookFetcher(runbooks_dir=runbooks_dir, max_bytes=LIMIT) as f:
        yield f


async def test_local_file(local: RunbookFetcher, runbooks_dir: Path) -> None:
    target = runbooks_dir / "db" / "latency.md"
    for ref in ["db/latency.md", "./db/../db/latency.md", str(target), target.as_uri()]:
        runbook = await local.fetch(ref)
        assert runbook.reference == ref
        assert runbook.source == str(target.resolve())
        assert runbook.content == RUNBOOK.decode()
        assert runbook.sha256 == hashlib.sha256(RUNBOOK).hexdigest()
        assert runbook.size == len(RUNBOOK)


async def test_runbooks_dir_may_be_a_symlink(runbooks_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(runbooks_dir, target_is_directory=True)
    async with RunbookFetcher(runbooks_dir=link) as fetcher:
        assert (await fetcher.fetch("db/latency.md")).content == RUNBOOK.decode()


async def test_dotdot_escape_refused(local: RunbookFetcher) -> None:
    message = await _error(local, "../secret.txt")
    assert "'..'" in message
    assert "RUNBOOKS_DIR" in message
    assert "RUNBOOKS_DIR" in await _error(local, "db/../../secret.txt")


async def test_symlink_escape_refused(
    local: RunbookFetcher, runbooks_dir: Path, tmp_path: Path
) -> None:
    (runbooks_dir / "evil.md").symlink_to(tmp_path / "secret.txt")
    (runbooks_dir / "evil-dir").symlink_to(tmp_path, target_is_directory=True)
    for ref in ["evil.md", "evil-dir/secret.txt"]:
        message = await _error(local, ref)
        assert "symlink" in message
        assert "RUNBOOKS_DIR" in message


async def test_absolute_path_outside_refused(local: RunbookFetcher, tmp_path: Path) -> None:
    for ref in [str(tmp_path / "secret.txt"), (tmp_path / "secret.txt").as_uri(), "/etc/passwd"]:
        message = await _error(local, ref)
        assert "absolute path is outside RUNBOOKS_DIR" in message


async def test_local_errors(local: RunbookFetcher, runbooks_dir: Path) -> None:
    assert "not found" in await _error(local, "db/nope.md")
    assert "not a regular file" in await _error(local, "db")
    assert "host" in await _error(local, "file://fileserver/db/latency.md")
    (runbooks_dir / "big.md").write_bytes(b"z" * (LIMIT + 1))
    assert "limit" in await _error(local, "big.md")


async def test_local_disabled_without_runbooks_dir(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text("x")
    async with RunbookFetcher() as fetcher:
        for ref in ["x.md", str(tmp_path / "x.md"), (tmp_path / "x.md").as_uri()]:
            assert await _error(fetcher, ref) == "local runbooks are disabled; set RUNBOOKS_DIR"
