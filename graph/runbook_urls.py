"""Runbook URLs: GitHub page URLs turned into raw-content URLs, the origins
``RUNBOOK_ALLOWED_HOSTS`` allows, and URLs as shown in messages (without credentials).
The fetcher that applies them is `graph.runbooks`."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import httpx

from graph.netguard import normalize_host

DEFAULT_RAW_BASE_URL = "https://raw.githubusercontent.com"
#: The default ``RUNBOOK_ALLOWED_HOSTS``.
DEFAULT_ALLOWED_HOSTS = ("github.com", "raw.githubusercontent.com")
DEFAULT_PORTS = {"http": 80, "https": 443}
GITHUB_WEB_HOSTS = frozenset({"github.com", "www.github.com"})

#: (scheme, host, port): one origin runbooks may be fetched from.
Origin = tuple[str, str, int]


def github_raw_url(url: str, raw_base_url: str = DEFAULT_RAW_BASE_URL) -> str:
    """Return the raw-content URL for a GitHub file page URL; other URLs are returned as is.

    ``https://github.com/<owner>/<repo>/blob/<ref>/<path>`` (or ``/raw/``) becomes
    ``<raw_base_url>/<owner>/<repo>/<ref>/<path>``; query (e.g. ``?plain=1``) and fragment
    (e.g. ``#L10``) are dropped. GitHub URLs of other shapes, raw.githubusercontent.com
    URLs and all other URLs come back unchanged.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https"):
        return url
    if (parts.hostname or "").lower() not in GITHUB_WEB_HOSTS:
        return url
    segments = parts.path.split("/")
    # ["", owner, repo, "blob"|"raw", ref, *path]
    if len(segments) < 6 or segments[3] not in ("blob", "raw"):
        return url
    owner, repo, rest = segments[1], segments[2], segments[4:]
    if not owner or not repo or not all(rest):
        return url
    return "/".join([raw_base_url.rstrip("/"), owner, repo, *rest])


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the scheme's default port filled in."""
    default_port = DEFAULT_PORTS.get(url.scheme)
    return (url.scheme, url.host, url.port or default_port)


def display_url(url: httpx.URL | str) -> str:
    """URL for messages, without any user:password part."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return str(url)
    if "@" not in parts.netloc:
        return str(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def parse_allowed_hosts(entries: Iterable[str], *, allow_http: bool = False) -> frozenset[Origin]:
    """The origins ``RUNBOOK_ALLOWED_HOSTS`` entries allow; ``ValueError`` names a bad entry.

    * ``host`` allows ``https://host`` (port 443); ``host:port`` allows that port.
    * ``http://host[:port]`` allows plain http to that host (port 80 unless given), and only
      http; ``https://host[:port]`` is the same as ``host[:port]``.
    * ``allow_http`` (``RUNBOOK_ALLOW_HTTP``) adds, for each https origin, the http origin
      on port 80 (bare host) or on the port given.

    Host names match exactly (no wildcards, no subdomains). Empty entries are ignored, so
    an empty list allows no URL at all (local runbooks only).
    """
    origins: set[Origin] = set()
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        scheme = None
        rest = entry
        if "://" in entry:
            scheme, _, rest = entry.partition("://")
            scheme = scheme.lower()
            if scheme not in DEFAULT_PORTS:
                raise ValueError(f"runbook host {entry!r}: the scheme must be http or https")
        try:
            parts = urlsplit("//" + rest)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"runbook host {entry!r}: {exc}") from exc
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"runbook host {entry!r}: give a host[:port], not a URL path")
        host = normalize_host(parts.hostname or "")
        if not host or "*" in host:
            raise ValueError(f"runbook host {entry!r}: expected host, host:port or http://host")
        if scheme == "http":
            origins.add(("http", host, port or 80))
            continue
        origins.add(("https", host, port or 443))
        if allow_http:
            origins.add(("http", host, port or 80))
    return frozenset(origins)
