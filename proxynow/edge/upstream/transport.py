"""A resolved `serversTransport` and the key of a pool of upstream connections.

`TransportOptions` is what a connection needs of a transport (Traefik's defaults where the
configuration is silent); `PoolKey` is one backend address under one transport. Plain
values, below the pool and the backend TLS that read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxynow.config.dynamic import RESPONSE_HEADER_BYTES, RESPONSE_HEADER_COUNT, ServersTransport
from proxynow.config.static import StaticConfig

__all__ = ["PoolKey", "TransportOptions", "resolve_transport"]

_GO_DEFAULT_MAX_IDLE = 2  # Go's DefaultMaxIdleConnsPerHost, for a serversTransport's 0
_GO_PING_TIMEOUT = 15.0  # what Go's HTTP/2 transport takes for a PingTimeout of 0


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """A resolved `serversTransport` (Traefik defaults)."""

    name: str = "default@internal"
    dial_timeout: float = 30.0
    response_header_timeout: float = 0.0
    idle_conn_timeout: float = 90.0
    # HTTP/2 health pings (Go's ReadIdleTimeout, PingTimeout): a connection that has read
    # nothing for `read_idle_timeout` (0: never checked) is sent a PING, and closed if no
    # frame comes back within `ping_timeout` (0 or less: 15 s, as Go's transport takes it).
    read_idle_timeout: float = 0.0
    ping_timeout: float = 15.0
    max_idle_conns_per_host: int = 200
    insecure_skip_verify: bool = False
    root_cas: tuple[str, ...] = ()
    server_name: str = ""
    certificates: tuple[tuple[str, str], ...] = ()  # (certFile, keyFile): path or PEM
    min_version: str = ""
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()
    max_response_header_bytes: int = RESPONSE_HEADER_BYTES
    max_response_header_count: int = RESPONSE_HEADER_COUNT
    disable_http2: bool = False  # https:// servers: offer only http/1.1 by ALPN


def resolve_transport(
    static: StaticConfig, transports: Mapping[str, ServersTransport], name: str
) -> TransportOptions:
    """The options of serversTransport `name` (a dynamic one), or of the static
    `serversTransport` (`default@internal`) when `name` is empty or not dynamic."""
    spec = transports.get(name) if name else None
    if spec is None:
        default = static.servers_transport
        timeouts = default.forwarding_timeouts
        return TransportOptions(
            dial_timeout=timeouts.dial_timeout,
            response_header_timeout=timeouts.response_header_timeout,
            idle_conn_timeout=timeouts.idle_conn_timeout,
            read_idle_timeout=timeouts.read_idle_timeout,
            ping_timeout=timeouts.ping_timeout if timeouts.ping_timeout > 0 else _GO_PING_TIMEOUT,
            max_idle_conns_per_host=max(default.max_idle_conns_per_host, 0),
            insecure_skip_verify=default.insecure_skip_verify,
            root_cas=tuple(default.root_cas),
            max_response_header_bytes=default.max_response_header_bytes,
            max_response_header_count=default.max_response_header_count,
        )
    timeouts = spec.forwarding_timeouts
    max_idle = spec.max_idle_conns_per_host or _GO_DEFAULT_MAX_IDLE
    return TransportOptions(
        name=name,
        dial_timeout=timeouts.dial_timeout,
        response_header_timeout=timeouts.response_header_timeout,
        idle_conn_timeout=timeouts.idle_conn_timeout,
        read_idle_timeout=timeouts.read_idle_timeout,
        ping_timeout=timeouts.ping_timeout if timeouts.ping_timeout > 0 else _GO_PING_TIMEOUT,
        max_idle_conns_per_host=max(max_idle, 0),
        insecure_skip_verify=spec.insecure_skip_verify,
        root_cas=tuple(spec.root_cas),
        server_name=spec.server_name,
        certificates=tuple((c.cert_file, c.key_file) for c in spec.certificates),
        min_version=spec.min_version,
        max_version=spec.max_version,
        cipher_suites=tuple(spec.cipher_suites),
        max_response_header_bytes=spec.max_response_header_bytes,
        max_response_header_count=spec.max_response_header_count,
        disable_http2=spec.disable_http2,
    )


@dataclass(frozen=True, slots=True)
class PoolKey:
    """One backend address under one transport. `http2`: over `http`, prior-knowledge h2c
    (an `h2c://` server); over `https`, `h2` offered first by ALPN (unless the transport's
    `disableHTTP2`). A server's upgrade requests use the key without it (edge/graph/services.py):
    a connection upgrade cannot be carried over HTTP/2."""

    scheme: str
    host: str
    port: int
    transport: TransportOptions
    http2: bool = False
