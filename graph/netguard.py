"""Outbound connections that cannot be turned against the network they run in: every
address a host name resolves to is checked (no loopback, private, link-local, metadata or
reserved addresses unless private networks are allowed) and the connection goes to a checked
address, so DNS rebinding between the check and the connect cannot slip through."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets, IP literals in canonical form."""
    host = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


#: Cloud instance-metadata endpoints outside the link-local ranges (AWS IPv6, Alibaba).
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_reason(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    allow_private_networks: bool = False,
) -> str | None:
    """Why a runbook may not be fetched from ``address`` ("a loopback address", ...), or None.

    Link-local (which includes the usual cloud metadata address 169.254.169.254),
    multicast, unspecified / "this network" and known metadata addresses are always
    refused; loopback, private, shared, site-local and other non-global addresses are
    refused unless ``allow_private_networks``. An IPv4 address embedded in an IPv6 one
    (IPv4-mapped, 6to4, NAT64 64:ff9b::/96) is judged as that IPv4 address.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            reason = blocked_reason(embedded, allow_private_networks=allow_private_networks)
            return None if reason is None else f"{reason} ({embedded} embedded in IPv6)"
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if allow_private_networks:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "a shared or otherwise non-public address"
    return None


class BlockedAddress(Exception):
    """Raised at connect time for an address :func:`blocked_reason` refuses."""


async def _getaddrinfo(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in resolver order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address, then connects to a checked one."""

    def __init__(self, *, allow_private_networks: bool) -> None:
        self._allow_private = allow_private_networks
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            addresses = await _getaddrinfo(host, port)
        except (OSError, UnicodeError) as exc:
            detail = (
                exc.strerror
                if isinstance(exc, OSError) and exc.strerror
                else (str(exc) or type(exc).__name__)
            )
            raise httpcore.ConnectError(f"cannot resolve {host}: {detail}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        for address in addresses:
            reason = blocked_reason(address, allow_private_networks=self._allow_private)
            if reason is not None:
                hint = ""
                if blocked_reason(address, allow_private_networks=True) is None:
                    hint = " (RUNBOOK_ALLOW_PRIVATE_NETWORKS=true allows it)"
                literal = normalize_host(host) == normalize_host(address)
                where = address if literal else f"{host} resolves to {address}"
                raise BlockedAddress(f"{where}, {reason}{hint}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await self._addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the next address
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for runbooks")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that connects through :class:`CheckedBackend`
    (and so through no proxy)."""

    def __init__(self, *, allow_private_networks: bool) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedBackend(allow_private_networks=allow_private_networks),
        )
