"""Entrypoint addresses (Traefik's `[host]:port[/tcp|/udp]`, parsed by the static
config): binding and reserving.

Every worker binds its own listening socket with SO_REUSEPORT, and the kernel spreads
new connections across them. The control plane binds each address once first, with
SO_REUSEPORT but without listening (a socket that does not listen receives no
connections): that resolves port 0 to a real port that every worker then shares,
keeps the port ours while workers restart, and turns "address already in use" into one
clear start-up error instead of N worker failures.

`:80` means every interface, as in Traefik (Go listens dual-stack there): one IPv6
socket with IPV6_V6ONLY off when the host has IPv6, else `0.0.0.0`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

__all__ = ["AddressInUse", "ListenAddress", "bind", "display_url", "reserve"]

_BACKLOG = 4096  # as Go's (the kernel's somaxconn); the kernel caps what is asked


class AddressInUse(OSError):
    """An entrypoint's address is taken by another program."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """One entrypoint address: `host` is "" for every interface; `transport` tcp or udp."""

    host: str
    port: int
    transport: str = "tcp"

    def with_port(self, port: int) -> ListenAddress:
        return ListenAddress(self.host, port, self.transport)


def display_url(address: ListenAddress, scheme: str = "http") -> str:
    """How a human reaches `address`, e.g. `http://0.0.0.0:8000` for `:8000`."""
    host = address.host or "0.0.0.0"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{address.port}"


def reserve(address: ListenAddress) -> tuple[ListenAddress, list[socket.socket]]:
    """Bind (not listen) `address` in the control plane; port 0 becomes the real port.

    Raises AddressInUse when another program holds the address, even one that itself
    uses SO_REUSEPORT (a plain bind is tried first, the way Traefik fails without
    `reusePort`).
    """
    if address.port != 0:
        _probe_free(address)
    sockets: list[socket.socket] = []
    try:
        for family, sockaddr in _socket_addresses(address):
            sock = _socket(family, address, sockaddr)
            sockets.append(sock)
            if address.port == 0:
                # All families of one entrypoint share the port the kernel gave the first.
                address = address.with_port(sock.getsockname()[1])
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return address, sockets


def bind(address: ListenAddress, backlog: int = _BACKLOG) -> list[socket.socket]:
    """The listening sockets of one worker for `address` (port already resolved)."""
    sockets: list[socket.socket] = []
    try:
        for family, sockaddr in _socket_addresses(address):
            sock = _socket(family, address, sockaddr)
            sockets.append(sock)
            if address.transport == "tcp":
                sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _socket(family: int, address: ListenAddress, sockaddr: tuple[str, int]) -> socket.socket:
    kind = socket.SOCK_STREAM if address.transport == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # Dual-stack only when the user asked for every interface (`:80` or `[::]:80`).
            v6only = 0 if _is_unspecified(sockaddr[0]) else 1
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, _in_use_message(address)) from exc
        raise
    return sock


def _probe_free(address: ListenAddress) -> None:
    """Raise AddressInUse if a plain (no SO_REUSEPORT) bind of `address` fails."""
    kind = socket.SOCK_STREAM if address.transport == "tcp" else socket.SOCK_DGRAM
    for family, sockaddr in _socket_addresses(address):
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                v6only = 0 if _is_unspecified(sockaddr[0]) else 1
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise AddressInUse(exc.errno, _in_use_message(address)) from exc
                raise


def _socket_addresses(address: ListenAddress) -> list[tuple[int, tuple[str, int]]]:
    """(family, sockaddr) to bind for `address`; hostnames resolve to every address."""
    if not address.host:
        if socket.has_ipv6 and _ipv6_works():
            return [(socket.AF_INET6, ("::", address.port))]
        return [(socket.AF_INET, ("0.0.0.0", address.port))]
    try:
        ip = ipaddress.ip_address(address.host)
    except ValueError:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        seen: dict[tuple[str, int], int] = {}
        for family, _, _, _, sockaddr in infos:
            seen.setdefault((str(sockaddr[0]), address.port), int(family))
        return [(family, sockaddr) for sockaddr, family in seen.items()]
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, (address.host, address.port))]


def _is_unspecified(host: str) -> bool:
    return ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified


def _ipv6_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _in_use_message(address: ListenAddress) -> str:
    where = f"[{address.host}]" if ":" in address.host else address.host
    return f"address {where}:{address.port}/{address.transport} is already in use"
