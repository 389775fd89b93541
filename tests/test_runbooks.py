"""Tests for graph.runbooks against a real HTTP server on 127.0.0.1 (and "localhost").

Reaching it needs the explicit opt-ins: the test origins listed (with http:// and their
port) and RUNBOOK_ALLOW_PRIVATE_NETWORKS; the SSRF tests check the strict defaults."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import graph.netguard
import graph.runbooks
from graph.runbooks import (
    Runbook,
    RunbookError,
    RunbookFetcher,
    blocked_reason,
    github_raw_url,
    parse_allowed_hosts,
)

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
        github_token=TOKEN,
        raw_base_url=server.github,
        timeout=0.5,
        max_bytes=LIMIT,
        allowed_hosts=[server.github, server.other, "http://127.0.0.1:1"],
        allow_private_networks=True,
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

    async with RunbookFetcher(
        github_token=TOKEN,
        transport=httpx.MockTransport(handle),
        allowed_hosts=["raw.githubusercontent.com", "example.com"],
    ) as fetcher:
        runbook = await fetcher.fetch("https://github.com/o/r/blob/main/x.md")
        await fetcher.fetch("https://example.com/x.md")
    assert runbook.content == "mocked"
    assert [str(r.url) for r in seen] == [
        "https://raw.githubusercontent.com/o/r/main/x.md",
        "https://example.com/x.md",
    ]
    assert [r.headers.get("Authorization") for r in seen] == [f"Bearer {TOKEN}", None]


# -- SSRF: allowed hosts and addresses --------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "allow_http", "expected"),
    [
        (["github.com"], False, {("https", "github.com", 443)}),
        (["GitHub.com.", " "], True, {("https", "github.com", 443), ("http", "github.com", 80)}),
        (["wiki.corp:8443"], False, {("https", "wiki.corp", 8443)}),
        (
            ["https://wiki.corp:8443/"],
            True,
            {("https", "wiki.corp", 8443), ("http", "wiki.corp", 8443)},
        ),
        (["http://wiki.corp"], False, {("http", "wiki.corp", 80)}),
        (
            ["http://[::1]:8080", "http://127.0.0.1:1"],
            False,
            {("http", "::1", 8080), ("http", "127.0.0.1", 1)},
        ),
        ([], False, set()),
    ],
)
def test_parse_allowed_hosts(
    entries: list[str], allow_http: bool, expected: set[tuple[str, str, int]]
) -> None:
    assert parse_allowed_hosts(entries, allow_http=allow_http) == expected


@pytest.mark.parametrize(
    "entry",
    [
        "ftp://github.com",
        "github.com/acme",
        "user@github.com",
        "*.github.com",
        "github.com:x",
        ":80",
    ],
)
def test_parse_allowed_hosts_rejects(entry: str) -> None:
    with pytest.raises(ValueError, match="runbook host"):
        parse_allowed_hosts([entry])


@pytest.mark.parametrize(
    ("address", "strict", "relaxed"),
    [
        ("140.82.112.3", None, None),  # github.com
        ("2606:50c0:8000::154", None, None),  # raw.githubusercontent.com
        ("64:ff9b::8c52:7003", None, None),  # NAT64 of a public address
        ("127.0.0.1", "loopback", None),
        ("::1", "loopback", None),
        ("10.1.2.3", "private", None),
        ("172.16.0.1", "private", None),
        ("192.168.0.1", "private", None),
        ("fd12::1", "private", None),
        ("100.64.0.1", "non-public", None),  # shared (CGNAT)
        ("240.0.0.1", "reserved", None),  # reserved
        ("fec0::1", "site-local", None),
        ("::ffff:127.0.0.1", "loopback", None),  # IPv4-mapped
        ("2002:7f00:1::", "loopback", None),  # 6to4
        ("64:ff9b::7f00:1", "loopback", None),  # NAT64
        ("169.254.169.254", "link-local", "link-local"),
        ("fe80::1", "link-local", "link-local"),
        ("::ffff:169.254.169.254", "link-local", "link-local"),
        ("fd00:ec2::254", "metadata", "metadata"),
        ("100.100.100.200", "metadata", "metadata"),
        ("0.0.0.0", "unspecified", "unspecified"),
        ("0.1.2.3", "unspecified", "unspecified"),
        ("::", "unspecified", "unspecified"),
        ("224.0.0.1", "multicast", "multicast"),
    ],
)
def test_blocked_reason(address: str, strict: str | None, relaxed: str | None) -> None:
    for allow, expected in [(False, strict), (True, relaxed)]:
        reason = blocked_reason(address, allow_private_networks=allow)
        if expected is None:
            assert reason is None, (address, allow)
        else:
            assert reason is not None and expected in reason, (address, allow, reason)


def _strict(*allowed: str, **options: bool) -> RunbookFetcher:
    return RunbookFetcher(timeout=2, max_bytes=LIMIT, allowed_hosts=allowed, **options)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("https://example.com/x.md", "example.com is not in RUNBOOK_ALLOWED_HOSTS"),
        ("https://10.0.0.1/x.md", "10.0.0.1 is not in RUNBOOK_ALLOWED_HOSTS"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not in"),
        ("http://[::1]/x.md", ":1 is not in RUNBOOK_ALLOWED_HOSTS"),
        ("https://api.github.com/repos/acme/x", "api.github.com is not in"),
        ("https://github.com:8443/acme/x.md", "port 8443 is not allowed for github.com"),
        ("http://raw.githubusercontent.com/acme/r/main/x.md", "only https is allowed"),
    ],
)
async def test_default_allows_only_github_over_https(reference: str, expected: str) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))
    async with RunbookFetcher(transport=transport) as fetcher:
        message = await _error(fetcher, reference)
        assert message.startswith("refusing runbook URL")
        assert expected in message
        await fetcher.fetch("https://github.com/acme/r/blob/main/x.md")  # allowed
    assert [str(r.url) for r in seen] == ["https://raw.githubusercontent.com/acme/r/main/x.md"]


@pytest.mark.parametrize(
    ("allowed", "reason"),
    [
        ("http://10.0.0.5", "10.0.0.5, a private address"),
        ("http://192.168.1.10:8080", "192.168.1.10, a private address"),
        ("http://[fd12::1]", "fd12::1, a private address"),
        ("http://100.64.0.1", "100.64.0.1, a shared or otherwise non-public address"),
        ("http://127.0.0.1:1", "127.0.0.1, a loopback address"),
    ],
)
async def test_private_ip_literal_refused_even_when_listed(allowed: str, reason: str) -> None:
    async with _strict(allowed) as fetcher:
        message = await _error(fetcher, f"{allowed}/x.md")
    assert reason in message
    assert "RUNBOOK_ALLOW_PRIVATE_NETWORKS" in message


async def test_hostname_resolving_to_loopback_refused(server: Server) -> None:
    server.requests.clear()
    async with _strict(server.other) as fetcher:
        message = await _error(fetcher, f"{server.other}/landed.md")
    assert "localhost resolves to" in message
    assert "a loopback address" in message
    assert server.requests == []


@pytest.mark.parametrize(
    ("allowed", "reason"),
    [
        ("http://169.254.169.254", "169.254.169.254, a link-local address"),
        ("http://[fe80::1]", "a link-local address"),
        ("http://[::ffff:169.254.169.254]", "a link-local address (169.254.169.254 embedded"),
        ("http://[fd00:ec2::254]", "a cloud metadata address"),
    ],
)
async def test_link_local_and_metadata_refused_even_with_private_networks(
    allowed: str, reason: str
) -> None:
    async with _strict(allowed, allow_private_networks=True) as fetcher:
        message = await _error(fetcher, f"{allowed}/latest/meta-data/")
    assert reason in message
    assert "RUNBOOK_ALLOW_PRIVATE_NETWORKS" not in message


async def test_redirect_to_disallowed_host_refused(server: Server) -> None:
    server.requests.clear()
    async with _strict(server.github, allow_private_networks=True) as fetcher:
        message = await _error(fetcher, f"{server.github}/redirect-cross")
    assert message == (
        f"refusing runbook URL {server.other}/landed.md (redirected from "
        f"{server.github}/redirect-cross): localhost is not in RUNBOOK_ALLOWED_HOSTS"
    )
    assert [r.path for r in server.requests] == ["/redirect-cross"]


async def test_http_refused_when_https_required(server: Server) -> None:
    server.requests.clear()
    https_only = f"127.0.0.1:{server.port}"
    async with _strict(https_only, allow_private_networks=True) as fetcher:
        message = await _error(fetcher, f"{server.github}/landed.md")
    assert "only https is allowed for 127.0.0.1" in message
    assert "RUNBOOK_ALLOW_HTTP" in message
    assert server.requests == []
    # ... also on a redirect hop (a downgrade) ...
    async with _strict(server.github, f"localhost:{server.port}", allow_private_networks=True) as f:
        assert "only https is allowed for localhost" in await _error(
            f, f"{server.github}/redirect-cross"
        )
    assert [r.path for r in server.requests] == ["/redirect-cross"]
    # ... and allowed with RUNBOOK_ALLOW_HTTP.
    async with _strict(https_only, allow_http=True, allow_private_networks=True) as fetcher:
        assert (await fetcher.fetch(f"{server.github}/landed.md")).content == RUNBOOK.decode()


async def test_connects_to_the_checked_address(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetcher resolves the name itself and connects to the address it checked, keeping
    the name in the Host header: no second lookup for DNS rebinding to answer."""
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return {"runbooks.internal": ["127.0.0.1"], "mixed.example": ["140.82.112.3", "127.0.0.1"]}[
            host
        ]

    monkeypatch.setattr(graph.netguard, "_getaddrinfo", resolve)
    server.requests.clear()
    internal, mixed = (
        f"http://runbooks.internal:{server.port}",
        f"http://mixed.example:{server.port}",
    )
    async with _strict(internal, mixed, allow_private_networks=True) as fetcher:
        runbook = await fetcher.fetch(f"{internal}/landed.md")
    assert runbook.content == RUNBOOK.decode()
    assert [r.host for r in server.requests] == [f"runbooks.internal:{server.port}"]
    # Strict: every address is checked, not just the first.
    async with _strict(internal, mixed) as fetcher:
        assert "runbooks.internal resolves to 127.0.0.1, a loopback address" in await _error(
            fetcher, f"{internal}/landed.md"
        )
        assert "mixed.example resolves to 127.0.0.1, a loopback address" in await _error(
            fetcher, f"{mixed}/landed.md"
        )
    assert lookups == ["runbooks.internal"] * 2 + ["mixed.example"]
    assert len(server.requests) == 1


async def test_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(graph.netguard, "_getaddrinfo", resolve)
    async with _strict("wiki.example") as fetcher:
        message = await _error(fetcher, "https://wiki.example/x.md")
    assert message == (
        "could not fetch runbook from wiki.example: cannot resolve wiki.example: "
        "Name or service not known"
    )


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


# -- https to a checked address -------------------------------------------------------


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for DNS name ``name`` and its key (PEM files)."""
    pytest.importorskip("cryptography")  # present through other packages, not a dependency
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """An https server on 127.0.0.1 with a certificate for "runbooks.internal"."""
    cert_file, key_file = _self_signed(tmp_path, "runbooks.internal")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    state = Server(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state, cert_file
    httpd.shutdown()
    httpd.server_close()


async def test_https_to_the_checked_address_verifies_the_host_name(
    tls_server: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting to the resolved address keeps TLS checking the certificate against the
    host name (SNI and verification use the name, not the address)."""
    server, ca = tls_server

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(graph.netguard, "_getaddrinfo", resolve)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    good, bad = f"runbooks.internal:{server.port}", f"other.internal:{server.port}"
    async with _strict(good, bad, allow_private_networks=True) as fetcher:
        runbook = await fetcher.fetch(f"https://{good}/landed.md")
        assert runbook.content == RUNBOOK.decode()
        assert "CERTIFICATE_VERIFY_FAILED" in await _error(fetcher, f"https://{bad}/landed.md")
    assert [r.host for r in server.requests] == [good]
