"""Fetch the runbook an alert refers to, so it can be given to the LLM.

A reference is either an http(s) URL or a local file. GitHub ``blob``/``raw`` page URLs
are rewritten to raw-content URLs (:func:`github_raw_url`). Safety rules:

* The GitHub token is sent only to GitHub hosts (and to the origin of ``raw_base_url``),
  re-decided on every redirect hop, so it never follows a redirect to another host.
* Local references (relative paths, absolute paths, ``file://`` URLs) are read only from
  inside ``runbooks_dir`` after resolving symlinks (`graph.runbook_files`); with no
  ``runbooks_dir`` they are refused. An alert can never make us read an arbitrary file.
* Bodies are read up to ``max_bytes`` and refused beyond it; a single overall deadline of
  ``timeout`` seconds covers the whole fetch, redirects included.

An alert's runbook URL must not turn the fetcher against the network it runs in (SSRF):

* Only origins in ``allowed_hosts`` (``RUNBOOK_ALLOWED_HOSTS``, default ``github.com`` and
  ``raw.githubusercontent.com``) are fetched, and only over https, unless the entry says
  ``http://host`` or ``allow_http`` (``RUNBOOK_ALLOW_HTTP``) is set; see
  :func:`parse_allowed_hosts`. The rule applies to every redirect hop, so a redirect can
  neither leave the allowed hosts nor downgrade to http.
* Host names are resolved here (``loop.getaddrinfo``) when connecting; *every* address is
  checked (`graph.netguard`) and the connection is made to a checked address (the
  Host header and TLS server name stay the host name), so DNS rebinding cannot slip an
  internal address in between check and connect. Loopback, private, shared (CGNAT),
  site-local and reserved addresses are refused unless ``allow_private_networks``
  (``RUNBOOK_ALLOW_PRIVATE_NETWORKS``); link-local (169.254/16, fe80::/10, so cloud
  metadata), multicast, "this network" (0/8) and the known cloud metadata addresses are
  always refused. IPv4 addresses embedded in IPv6 ones (mapped, 6to4, NAT64) are judged
  as the IPv4 address.
* Fetches connect directly: ``HTTP(S)_PROXY``/``NO_PROXY`` are not used. A ``transport``
  given to :class:`RunbookFetcher` (tests) replaces the checked connection, so the address
  checks do not apply to it; the host rules still do.

Content is decoded as UTF-8 (a BOM is dropped) with ``errors="replace"``, so a runbook
saved in another 8-bit encoding still reaches the LLM, slightly garbled. Content with NUL
bytes is refused as binary. ``sha256`` and ``size`` describe the raw bytes as read.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from graph.netguard import BlockedAddress, CheckedTransport, blocked_reason, normalize_host
from graph.runbook_errors import RunbookError, describe
from graph.runbook_files import local_path, read_file
from graph.runbook_urls import (
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_PORTS,
    DEFAULT_RAW_BASE_URL,
    display_url,
    github_raw_url,
    origin_of,
    parse_allowed_hosts,
)

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "DEFAULT_RAW_BASE_URL",
    "GITHUB_HOSTS",
    "MAX_REDIRECTS",
    "Runbook",
    "RunbookError",
    "RunbookFetcher",
    "blocked_reason",
    "github_raw_url",
    "parse_allowed_hosts",
]

#: Hosts that receive the GitHub token (over https only); see ``RunbookFetcher``.
GITHUB_HOSTS = frozenset({"github.com", "raw.githubusercontent.com", "api.github.com"})
MAX_REDIRECTS = 5

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "sre-agent-runbook-fetcher"


@dataclass(frozen=True)
class Runbook:
    """A fetched runbook."""

    reference: str  # what the alert said
    source: str  # the URL (after redirects) or resolved file path actually read
    content: str
    sha256: str  # hex digest of the raw bytes
    size: int  # bytes


class RunbookFetcher:
    """Fetch runbooks from URLs or from a local runbooks directory.

    ``github_token`` is sent as ``Authorization: Bearer <token>`` only to
    ``https://`` URLs on :data:`GITHUB_HOSTS`, and to URLs with the same scheme, host
    and port as ``raw_base_url`` (so a GitHub Enterprise or test server can be used).
    Redirects (at most :data:`MAX_REDIRECTS`) are followed here, hop by hop, with that
    rule applied to each hop.

    URLs are fetched only from the origins ``allowed_hosts`` allows
    (:func:`parse_allowed_hosts`, with ``allow_http``), checked on every hop, and only from
    public addresses unless ``allow_private_networks`` (:func:`blocked_reason`); see the
    module docstring. ``raw_base_url`` is not allowed implicitly: list it too.

    Use as ``async with RunbookFetcher(...) as fetcher:`` or call :meth:`aclose`. One
    ``httpx.AsyncClient`` is created on first use and reused; ``fetch`` may be called
    concurrently.
    """

    def __init__(
        self,
        *,
        github_token: str | None = None,
        runbooks_dir: Path | None = None,
        timeout: float = 10.0,
        max_bytes: int = 512_000,
        raw_base_url: str = DEFAULT_RAW_BASE_URL,
        allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
        allow_http: bool = False,
        allow_private_networks: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._token = (github_token or "").strip() or None
        self._runbooks_dir = runbooks_dir
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._raw_base_url = raw_base_url.rstrip("/")
        self._raw_origin = origin_of(httpx.URL(self._raw_base_url))
        self._allowed = parse_allowed_hosts(allowed_hosts, allow_http=allow_http)
        self._allow_private = allow_private_networks
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> RunbookFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (idempotent; a later ``fetch`` opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def fetch(self, reference: str) -> Runbook:
        """Fetch the runbook ``reference`` names; raise :class:`RunbookError` on failure."""
        ref = reference.strip()
        if not ref:
            raise RunbookError("empty runbook reference")
        try:
            scheme = urlsplit(ref).scheme.lower() if "://" in ref else ""
        except ValueError as exc:
            raise RunbookError(f"invalid runbook reference {ref!r}: {exc}") from exc
        if scheme in ("http", "https"):
            source, raw = await self._fetch_url(github_raw_url(ref, self._raw_base_url))
        elif scheme in ("", "file"):
            # resolving and reading touch the disk: one trip to a worker thread for both
            path, raw = await asyncio.to_thread(self._read_local, ref)
            source = str(path)
        else:
            raise RunbookError(
                f"unsupported runbook reference {ref!r}: use an http(s) URL "
                "or a path inside RUNBOOKS_DIR"
            )
        return Runbook(
            reference=reference,
            source=source,
            content=self._decode(raw, ref),
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
        )

    def _read_local(self, ref: str) -> tuple[Path, bytes]:
        path = local_path(self._runbooks_dir, ref)
        return path, read_file(path, ref, self._max_bytes)

    # -- HTTP -------------------------------------------------------------------------

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport
                or CheckedTransport(allow_private_networks=self._allow_private),
                trust_env=False,  # no proxies: connections go to checked addresses
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,  # done by hand so the token is re-decided per hop
                headers={"User-Agent": _USER_AGENT},
            )
        return self._client

    def _sends_token(self, url: httpx.URL) -> bool:
        if self._token is None:
            return False
        if url.scheme == "https" and url.host in GITHUB_HOSTS:
            return True
        return origin_of(url) == self._raw_origin

    def _is_github(self, url: httpx.URL) -> bool:
        return url.host in GITHUB_HOSTS or origin_of(url) == self._raw_origin

    def _check_allowed(self, url: httpx.URL, redirected_from: httpx.URL | None = None) -> None:
        """Refuse a URL (or redirect target) whose origin ``allowed_hosts`` does not allow."""
        scheme = url.scheme
        host = normalize_host(url.host)
        port = url.port or DEFAULT_PORTS.get(scheme)
        if port is not None and (scheme, host, port) in self._allowed:
            return
        shown = display_url(url)
        if redirected_from is not None:
            shown = f"{shown} (redirected from {display_url(redirected_from)})"
        ports = sorted(p for s, h, p in self._allowed if h == host and s == scheme)
        if scheme == "http" and any(h == host and s == "https" for s, h, _ in self._allowed):
            why = (
                f"only https is allowed for {host} (set RUNBOOK_ALLOW_HTTP=true "
                f"or list it in RUNBOOK_ALLOWED_HOSTS as http://{host})"
            )
        elif ports:
            why = f"port {port} is not allowed for {host} (allowed: {', '.join(map(str, ports))})"
        else:
            why = f"{host} is not in RUNBOOK_ALLOWED_HOSTS"
        raise RunbookError(f"refusing runbook URL {shown}: {why}")

    async def _fetch_url(self, url_text: str) -> tuple[str, bytes]:
        try:
            url = httpx.URL(url_text)
        except httpx.InvalidURL as exc:
            raise RunbookError(f"invalid runbook URL {display_url(url_text)}: {exc}") from exc
        if not url.host:
            raise RunbookError(f"invalid runbook URL (no host): {display_url(url)}")
        self._check_allowed(url)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(url)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise RunbookError(
                f"timed out after {self._timeout:g}s fetching runbook: {display_url(url)}"
            ) from exc

    async def _follow(self, url: httpx.URL) -> tuple[str, bytes]:
        client = self._get_client()
        for _hop in range(MAX_REDIRECTS + 1):
            headers = {"Authorization": f"Bearer {self._token}"} if self._sends_token(url) else {}
            try:
                resp = await client.send(
                    client.build_request("GET", url, headers=headers), stream=True
                )
                try:
                    if resp.status_code in _REDIRECT_STATUSES:
                        url = self._redirect_target(resp)
                        self._check_allowed(url, redirected_from=resp.url)
                        continue
                    self._check_status(resp)
                    return str(resp.url), await self._read_body(resp)
                finally:
                    await resp.aclose()
            except httpx.TimeoutException:
                raise
            except BlockedAddress as exc:
                raise RunbookError(f"refusing runbook URL {display_url(url)}: {exc}") from exc
            except httpx.UnsupportedProtocol as exc:
                raise RunbookError(f"unsupported URL scheme: {display_url(url)}") from exc
            except httpx.TransportError as exc:
                raise RunbookError(
                    f"could not fetch runbook from {url.host}: {describe(exc)}"
                ) from exc
        raise RunbookError(f"too many redirects (more than {MAX_REDIRECTS}): {display_url(url)}")

    def _redirect_target(self, resp: httpx.Response) -> httpx.URL:
        location = resp.headers.get("Location")
        if not location:
            raise RunbookError(
                f"HTTP {resp.status_code} redirect without a Location: {display_url(resp.url)}"
            )
        try:
            target = resp.url.join(location)
        except httpx.InvalidURL as exc:
            raise RunbookError(f"invalid redirect from {display_url(resp.url)}: {exc}") from exc
        if target.scheme not in ("http", "https"):
            raise RunbookError(
                f"refusing redirect to a non-http(s) URL from {display_url(resp.url)}"
            )
        return target

    def _check_status(self, resp: httpx.Response) -> None:
        code, url = resp.status_code, resp.url
        if 200 <= code < 300:
            return
        shown = display_url(url)
        if code == 404:
            hint = ""
            if self._is_github(url) and self._token is None:
                hint = " (if the repository is private, set GITHUB_TOKEN)"
            raise RunbookError(f"runbook not found (HTTP 404): {shown}{hint}")
        if code in (401, 403):
            if not self._is_github(url):
                hint = "GITHUB_TOKEN is only sent to GitHub hosts"
            elif self._token is None:
                hint = "GITHUB_TOKEN is not set"
            else:
                hint = "check that GITHUB_TOKEN is valid and can read this repository"
            raise RunbookError(f"access denied (HTTP {code}): {shown}; {hint}")
        reason = f" {resp.reason_phrase}" if resp.reason_phrase else ""
        raise RunbookError(f"runbook fetch failed (HTTP {code}{reason}): {shown}")

    async def _read_body(self, resp: httpx.Response) -> bytes:
        too_big = RunbookError(
            f"runbook is larger than the {self._max_bytes}-byte limit: {display_url(resp.url)}"
        )
        declared = resp.headers.get("Content-Length", "")
        identity = "Content-Encoding" not in resp.headers  # else the length is compressed
        if identity and declared.isdigit() and int(declared) > self._max_bytes:
            raise too_big
        body = bytearray()
        async for chunk in resp.aiter_bytes():  # decoded (gunzipped) bytes
            body += chunk
            if len(body) > self._max_bytes:
                raise too_big
        return bytes(body)

    # -- decoding ---------------------------------------------------------------------

    @staticmethod
    def _decode(raw: bytes, ref: str) -> str:
        if b"\x00" in raw:
            raise RunbookError(f"runbook is not text (binary content): {ref!r}")
        return raw.decode("utf-8-sig", errors="replace")
