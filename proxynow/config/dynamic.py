"""Dynamic configuration: routers, services, middlewares, transports and TLS.

`DynamicConfig` follows Traefik's dynamic schema (../shared/TRAEFIK.md §1.2-1.5, §1.9) key
for key. It is what the file provider reads, what the Docker label parser produces and,
with names qualified `name@provider`, what the snapshot carries to the workers. Models
hold shape and defaults only; references and rules are checked by the aggregator.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from proxynow.config.base import Duration, Model, alias
from proxynow.config.middlewares import Middleware, TCPMiddleware, require_exactly_one

RESPONSE_HEADER_BYTES = 1 << 20  # as entryPoints.<n>.http.maxHeaderBytes for requests
RESPONSE_HEADER_COUNT = 1024


def _reject_v2_syntax(value: str) -> str:
    if value.lower() == "v2":
        raise ValueError(
            "ruleSyntax v2 is not supported: proxynow reads v3 rules only "
            "(rewrite the rule in v3 syntax and remove ruleSyntax)"
        )
    if value not in ("", "v3"):
        raise ValueError(f"unknown ruleSyntax {value!r} (only v3 is supported)")
    return value


RuleSyntax = Annotated[str, AfterValidator(_reject_v2_syntax)]


class Domain(Model):
    main: str = ""
    sans: list[str] = []


# ---------------------------------------------------------------- HTTP routers


class RouterTLS(Model):
    cert_resolver: str = ""
    domains: list[Domain] = []
    options: str = ""


class RouterObservability(Model):
    access_logs: bool | None = None
    metrics: bool | None = None
    tracing: bool | None = None
    trace_verbosity: Literal["minimal", "detailed"] = "minimal"


class Router(Model):
    entry_points: list[str] = []
    middlewares: list[str] = []
    service: str = ""
    rule: str = ""
    rule_syntax: RuleSyntax = ""
    priority: int = 0
    tls: RouterTLS | None = None
    observability: RouterObservability | None = None


# ---------------------------------------------------------------- HTTP services


class Server(Model):
    url: str
    weight: int = 1
    preserve_path: bool = False


class HealthCheck(Model):
    path: str
    scheme: str = ""
    mode: Literal["http", "grpc"] = "http"
    hostname: str = ""
    port: int = 0
    interval: Duration = 30.0
    unhealthy_interval: Duration | None = None
    timeout: Duration = 5.0
    headers: dict[str, str] = {}
    follow_redirects: bool = True
    method: str = "GET"
    status: int = 0


class PassiveHealthCheck(Model):
    failure_window: Duration = 10.0
    max_failed_attempts: int = 1


class Cookie(Model):
    name: str = ""
    secure: bool = False
    http_only: bool = False
    same_site: Literal["", "none", "lax", "strict"] = ""
    max_age: int = 0
    path: str = "/"
    domain: str = ""


class Sticky(Model):
    cookie: Cookie | None = None


class ResponseForwarding(Model):
    flush_interval: Duration = 0.1


class LoadBalancer(Model):
    servers: list[Server] = []
    strategy: Literal["wrr", "p2c", "hrw", "leasttime"] = "wrr"
    pass_host_header: bool = True
    health_check: HealthCheck | None = None
    passive_health_check: PassiveHealthCheck | None = None
    sticky: Sticky | None = None
    servers_transport: str = ""
    response_forwarding: ResponseForwarding = Field(default_factory=ResponseForwarding)


class HealthCheckPropagation(Model):
    """`healthCheck: {}` on weighted/mirroring/failover: propagate children's health."""


class WeightedService(Model):
    name: str
    weight: int = 1


class Weighted(Model):
    services: list[WeightedService] = []
    sticky: Sticky | None = None
    health_check: HealthCheckPropagation | None = None


class Mirror(Model):
    name: str
    percent: int = 0


class Mirroring(Model):
    service: str
    mirrors: list[Mirror] = []
    max_body_size: int = -1
    mirror_body: bool = True
    health_check: HealthCheckPropagation | None = None


class FailoverErrors(Model):
    """Traefik 3.7: answers from the main service that send the request to the fallback."""

    status: list[str] = []


class Failover(Model):
    service: str
    fallback: str
    health_check: HealthCheckPropagation | None = None
    errors: FailoverErrors | None = None
    max_request_body_bytes: int | None = None


class Service(Model):
    """One HTTP service: exactly one of the kinds below is set."""

    load_balancer: LoadBalancer | None = None
    weighted: Weighted | None = None
    mirroring: Mirroring | None = None
    failover: Failover | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        require_exactly_one(self, "service")
        return self


# ---------------------------------------------------------------- servers transports


class ForwardingTimeouts(Model):
    dial_timeout: Duration = 30.0
    response_header_timeout: Duration = 0.0
    idle_conn_timeout: Duration = 90.0
    read_idle_timeout: Duration = 0.0
    ping_timeout: Duration = 15.0


class CertAndKey(Model):
    cert_file: str
    key_file: str


class ServersTransport(Model):
    server_name: str = ""
    certificates: list[CertAndKey] = []
    insecure_skip_verify: bool = False
    root_cas: list[str] = alias("rootCAs", default=[])
    cipher_suites: list[str] = []
    min_version: str = ""
    max_version: str = ""
    max_idle_conns_per_host: int = 0
    disable_http2: bool = alias("disableHTTP2", default=False)
    peer_cert_sans: list[str] = alias("peerCertSANs", default=[])
    forwarding_timeouts: ForwardingTimeouts = Field(default_factory=ForwardingTimeouts)
    # proxynow's own (Go's transport has a fixed 10 MiB): a response head beyond either
    # limit is refused with a 502 (docs/limits.md).
    max_response_header_bytes: int = Field(default=RESPONSE_HEADER_BYTES, gt=0)
    max_response_header_count: int = Field(default=RESPONSE_HEADER_COUNT, gt=0)


class HTTPConfig(Model):
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    middlewares: dict[str, Middleware] = {}
    servers_transports: dict[str, ServersTransport] = {}


# ---------------------------------------------------------------- TCP


class TCPRouterTLS(Model):
    passthrough: bool = False
    cert_resolver: str = ""
    options: str = ""
    domains: list[Domain] = []


class TCPRouter(Model):
    entry_points: list[str] = []
    middlewares: list[str] = []
    service: str = ""
    rule: str = ""
    rule_syntax: RuleSyntax = ""
    priority: int = 0
    tls: TCPRouterTLS | None = None


class TCPServer(Model):
    address: str
    tls: bool = False


class ProxyProtocol(Model):
    version: Literal[1, 2] = 2


class TCPLoadBalancer(Model):
    servers: list[TCPServer] = []
    servers_transport: str = ""
    proxy_protocol: ProxyProtocol | None = None
    termination_delay: Duration | None = None


class TCPWeighted(Model):
    services: list[WeightedService] = []


class TCPService(Model):
    load_balancer: TCPLoadBalancer | None = None
    weighted: TCPWeighted | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        require_exactly_one(self, "service")
        return self


class TCPClientTLS(Model):
    server_name: str = ""
    insecure_skip_verify: bool = False
    root_cas: list[str] = alias("rootCAs", default=[])
    certificates: list[CertAndKey] = []
    peer_cert_sans: list[str] = alias("peerCertSANs", default=[])


class TCPServersTransport(Model):
    dial_timeout: Duration = 30.0
    dial_keep_alive: Duration = 15.0
    termination_delay: Duration = 0.1
    proxy_protocol: ProxyProtocol | None = None
    tls: TCPClientTLS | None = None


class TCPConfig(Model):
    routers: dict[str, TCPRouter] = {}
    services: dict[str, TCPService] = {}
    middlewares: dict[str, TCPMiddleware] = {}
    servers_transports: dict[str, TCPServersTransport] = {}


# ---------------------------------------------------------------- UDP


class UDPRouter(Model):
    entry_points: list[str] = []
    service: str = ""


class UDPServer(Model):
    address: str


class UDPLoadBalancer(Model):
    servers: list[UDPServer] = []


class UDPService(Model):
    load_balancer: UDPLoadBalancer | None = None
    weighted: TCPWeighted | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        require_exactly_one(self, "service")
        return self


class UDPConfig(Model):
    routers: dict[str, UDPRouter] = {}
    services: dict[str, UDPService] = {}


# ---------------------------------------------------------------- TLS


class CertificateFile(Model):
    cert_file: str
    key_file: str
    stores: list[str] = []


ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]


class ClientAuth(Model):
    ca_files: list[str] = []
    client_auth_type: ClientAuthType = "NoClientCert"


class TLSOptions(Model):
    min_version: str = "VersionTLS12"
    max_version: str = ""
    cipher_suites: list[str] = []
    curve_preferences: list[str] = []
    client_auth: ClientAuth | None = None
    sni_strict: bool = False
    alpn_protocols: list[str] = ["h2", "http/1.1", "acme-tls/1"]
    disable_session_tickets: bool = False


class DefaultCertificate(Model):
    cert_file: str
    key_file: str


class DefaultGeneratedCert(Model):
    resolver: str
    domain: Domain | None = None


class TLSStore(Model):
    default_certificate: DefaultCertificate | None = None
    default_generated_cert: DefaultGeneratedCert | None = None


class TLSConfig(Model):
    certificates: list[CertificateFile] = []
    options: dict[str, TLSOptions] = {}
    stores: dict[str, TLSStore] = {}


# ---------------------------------------------------------------- top level


class DynamicConfig(Model):
    """The whole dynamic configuration; `DynamicConfig()` is the empty one."""

    http: HTTPConfig = Field(default_factory=HTTPConfig)
    tcp: TCPConfig = Field(default_factory=TCPConfig)
    udp: UDPConfig = Field(default_factory=UDPConfig)
    tls: TLSConfig = Field(default_factory=TLSConfig)


_NAMED_SECTIONS = (
    ("http", "routers"),
    ("http", "services"),
    ("http", "middlewares"),
    ("http", "serversTransports"),
    ("tcp", "routers"),
    ("tcp", "services"),
    ("tcp", "middlewares"),
    ("tcp", "serversTransports"),
    ("udp", "routers"),
    ("udp", "services"),
)


def invalid_names(config: DynamicConfig) -> list[tuple[tuple[str, ...], str]]:
    """Object names a provider may not use: `@` is reserved for `name@provider` references.

    Not a model validator because the aggregator builds `DynamicConfig`s whose names are
    qualified on purpose.
    """
    found: list[tuple[tuple[str, ...], str]] = []
    for protocol, section in _NAMED_SECTIONS:
        part = getattr(config, protocol)
        field = next(n for n, f in type(part).model_fields.items() if f.alias == section)
        for name in getattr(part, field):
            if "@" in name:
                message = f"name {name!r} must not contain '@' (it is reserved for references)"
                found.append(((protocol, section, name), message))
    return found
