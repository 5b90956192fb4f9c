"""Static configuration: entrypoints, providers, certificate resolvers, API, metrics, logs.

`StaticConfig` mirrors Traefik's static configuration (../shared/TRAEFIK.md §1.6, §1.8,
§1.10, §1.11, §1.13) with Traefik's defaults, plus proxynow's own `workers`. It is read
once at start from a file, CLI flags and `PROXYNOW_*` variables (see
`proxynow.config.loader`).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from proxynow.config.base import Duration, Model, alias
from proxynow.config.dynamic import (
    RESPONSE_HEADER_BYTES,
    RESPONSE_HEADER_COUNT,
    Domain,
    ForwardingTimeouts,
)
from proxynow.config.middlewares import ClientTLS

MIB = 1024 * 1024
# Go's math.MaxInt - 1: entrypoint redirections outrank every user router.
REDIRECTION_PRIORITY = 2**63 - 2
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"

_ADDRESS = re.compile(
    r"^(?P<host>\[[0-9a-fA-F:.%\w]*\]|[^:\[\]/]*):(?P<port>\d{1,5})(?:/(?P<proto>tcp|udp))?$"
)


def _check_address(value: str) -> str:
    match = _ADDRESS.match(value)
    if match is None or int(match.group("port")) > 65535:
        raise ValueError(f"invalid address {value!r} (expected [host]:port[/tcp|/udp], e.g. :80)")
    return value


Address = Annotated[str, AfterValidator(_check_address)]

# ---------------------------------------------------------------- entrypoints


class ForwardedHeaders(Model):
    trusted_ips: list[str] = alias("trustedIPs", default=[])
    insecure: bool = False
    connection: list[str] = []


class EntryPointProxyProtocol(Model):
    trusted_ips: list[str] = alias("trustedIPs", default=[])
    insecure: bool = False


class RedirectEntryPoint(Model):
    to: str
    scheme: str = "https"
    permanent: bool = True
    priority: int = REDIRECTION_PRIORITY


class Redirections(Model):
    entry_point: RedirectEntryPoint | None = None


class EntryPointTLS(Model):
    options: str = ""
    cert_resolver: str = ""
    domains: list[Domain] = []


class EntryPointHTTP(Model):
    redirections: Redirections | None = None
    middlewares: list[str] = []
    tls: EntryPointTLS | None = None
    encode_query_semicolons: bool = False
    sanitize_path: bool = True
    max_header_bytes: int = Field(default=MIB, gt=0)
    # proxynow's own (Go has no count limit, only maxHeaderBytes): docs/limits.md.
    max_header_count: int = Field(default=256, gt=0)
    max_target_bytes: int = Field(default=64 << 10, gt=0)


class EntryPointHTTP2(Model):
    max_concurrent_streams: int = 250


class RespondingTimeouts(Model):
    read_timeout: Duration = 60.0
    write_timeout: Duration = 0.0
    idle_timeout: Duration = 180.0


class LifeCycle(Model):
    request_accept_grace_timeout: Duration = 0.0
    grace_time_out: Duration = alias("graceTimeOut", default=10.0)


class EntryPointTransport(Model):
    responding_timeouts: RespondingTimeouts = Field(default_factory=RespondingTimeouts)
    life_cycle: LifeCycle = Field(default_factory=LifeCycle)
    keep_alive_max_requests: int = 0
    keep_alive_max_time: Duration = 0.0
    # proxynow's own: Go listens with the kernel's somaxconn (4096 on current kernels);
    # asyncio would use 100, which drops connections in a burst. The kernel caps it.
    listen_backlog: int = Field(default=4096, gt=0)


class EntryPointUDP(Model):
    timeout: Duration = 3.0


class EntryPointObservability(Model):
    access_logs: bool = True
    metrics: bool = True
    tracing: bool = True


class EntryPoint(Model):
    address: Address
    as_default: bool = False
    allow_acme_by_pass: bool = alias("allowACMEByPass", default=False)
    reuse_port: bool = False
    forwarded_headers: ForwardedHeaders = Field(default_factory=ForwardedHeaders)
    proxy_protocol: EntryPointProxyProtocol | None = None
    http: EntryPointHTTP = Field(default_factory=EntryPointHTTP)
    http2: EntryPointHTTP2 = Field(default_factory=EntryPointHTTP2)
    transport: EntryPointTransport = Field(default_factory=EntryPointTransport)
    udp: EntryPointUDP = Field(default_factory=EntryPointUDP)
    observability: EntryPointObservability = Field(default_factory=EntryPointObservability)

    @property
    def host(self) -> str:
        """The host part without brackets; "" means every address."""
        return _ADDRESS.match(self.address).group("host").strip("[]")  # type: ignore[union-attr]

    @property
    def port(self) -> int:
        return int(_ADDRESS.match(self.address).group("port"))  # type: ignore[union-attr]

    @property
    def protocol(self) -> Literal["tcp", "udp"]:
        proto = _ADDRESS.match(self.address).group("proto")  # type: ignore[union-attr]
        return "udp" if proto == "udp" else "tcp"


# ---------------------------------------------------------------- providers


class DockerProvider(Model):
    endpoint: str = "unix:///var/run/docker.sock"
    username: str = ""
    password: str = ""
    tls: ClientTLS | None = None
    exposed_by_default: bool = True
    network: str = ""
    default_rule: str = "Host(`{{ normalize .Name }}`)"
    use_bind_port_ip: bool = alias("useBindPortIP", default=False)
    watch: bool = True
    constraints: str = ""
    allow_empty_services: bool = False
    http_client_timeout: Duration = 0.0
    # proxynow's own: also read `traefik.*` labels (proxynow.* wins), for migration.
    traefik_labels: bool = False


class FileProvider(Model):
    filename: str = ""
    directory: str = ""
    watch: bool = True
    # Log every rendered template (of a file with `{{`) at debug level, as Traefik does.
    debug_log_generated_template: bool = False
    # proxynow's own (Traefik has no such limit): a file larger than this is refused and
    # its last good configuration keeps serving (providers/file.py).
    max_file_bytes: int = Field(10 * MIB, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if bool(self.filename) == bool(self.directory):
            raise ValueError("set exactly one of filename and directory")
        return self


class Providers(Model):
    # Traefik waits 2 s before every rebuild; we publish the first change of a quiet
    # period at once and coalesce only what follows within this window (control/aggregator.py).
    providers_throttle_duration: Duration = 0.1
    docker: DockerProvider | None = None
    file: FileProvider | None = None


# ---------------------------------------------------------------- ACME


class EAB(Model):
    kid: str
    hmac_encoded: str = alias("hmacEncoded")


class HTTPChallenge(Model):
    entry_point: str
    delay: Duration = 0.0


class TLSChallenge(Model):
    delay: Duration = 0.0


class Propagation(Model):
    delay_before_checks: Duration = 0.0
    disable_checks: bool = False
    require_all_rns: bool = alias("requireAllRNS", default=False)
    disable_ans_checks: bool = alias("disableANSChecks", default=False)


class DNSChallenge(Model):
    provider: str
    resolvers: list[str] = []
    propagation: Propagation | None = None
    delay_before_check: Duration = 0.0
    disable_propagation_check: bool = False


KeyType = Literal["EC256", "EC384", "RSA2048", "RSA4096", "RSA8192"]


class ACME(Model):
    email: str = ""
    storage: str = "acme.json"
    ca_server: str = LETS_ENCRYPT
    key_type: KeyType = "RSA4096"
    certificates_duration: int = 2160
    preferred_chain: str = ""
    profile: str = ""
    eab: EAB | None = None
    disable_common_name: bool = False
    email_addresses: list[str] = []
    ca_certificates: list[str] = []
    ca_system_cert_pool: bool = False
    ca_server_name: str = ""
    client_timeout: Duration = 120.0
    client_response_header_timeout: Duration = 30.0
    certificate_timeout: Duration = 30.0
    http_challenge: HTTPChallenge | None = None
    tls_challenge: TLSChallenge | None = None
    dns_challenge: DNSChallenge | None = None


class CertificateResolver(Model):
    acme: ACME | None = None


# ---------------------------------------------------------------- API, observability


class API(Model):
    insecure: bool = False
    dashboard: bool = True
    debug: bool = False
    base_path: str = "/"
    disable_dashboard_ad: bool = False


class Ping(Model):
    entry_point: str = "traefik"
    manual_routing: bool = False
    terminating_status_code: int = 503


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Labels the request families already carry (a header label may not shadow one).
_OWN_LABELS = frozenset(
    ("code", "method", "protocol", "entrypoint", "router", "service", "tls_version",
     "tls_cipher", "le", "url")
)  # fmt: skip


class Prometheus(Model):
    buckets: list[float] = [0.1, 0.3, 1.2, 5.0]
    entry_point: str = "traefik"
    add_entry_points_labels: bool = True
    add_routers_labels: bool = False
    add_services_labels: bool = True
    manual_routing: bool = False
    # Prometheus label name -> request header name (docs/metrics.md for the bounds).
    header_labels: dict[str, str] = {}

    @model_validator(mode="after")
    def _label_names(self) -> Self:
        for label, header in self.header_labels.items():
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"headerLabels: {label!r} is not a Prometheus label name")
            if label in _OWN_LABELS:
                raise ValueError(f"headerLabels: {label!r} is a label the metrics already have")
            if not header or not header.isascii() or any(c in header for c in " \t:"):
                raise ValueError(f"headerLabels: {header!r} is not a header name")
        return self


class Metrics(Model):
    prometheus: Prometheus | None = None


LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class Log(Model):
    # Traefik accepts `level: info`; the model keeps the canonical uppercase.
    level: Annotated[LogLevel, BeforeValidator(_upper)] = "ERROR"
    format: Literal["common", "json"] = "common"
    file_path: str = ""
    no_color: bool = False
    max_size: int = 0
    max_age: int = 0
    max_backups: int = 0
    compress: bool = False


_STATUS_RANGE = re.compile(r"\s*([1-9]\d\d)\s*(?:-\s*([1-9]\d\d)\s*)?")


def _status_ranges(codes: list[str]) -> list[str]:
    """`statusCodes` entries are `200` or `300-302` (Traefik ignores a bad filter with an
    error in its log; refusing the configuration says so where it is written)."""
    for code in codes:
        for part in code.split(","):
            match = _STATUS_RANGE.fullmatch(part)
            if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
                raise ValueError(f"invalid status code range {part!r} (200 or 300-302)")
    return codes


class AccessLogFilters(Model):
    status_codes: Annotated[list[str], AfterValidator(_status_ranges)] = []
    retry_attempts: bool = False
    min_duration: Duration = 0.0


class HeaderFields(Model):
    default_mode: Literal["keep", "drop", "redact"] = "drop"
    names: dict[str, Literal["keep", "drop", "redact"]] = {}


class AccessLogFields(Model):
    default_mode: Literal["keep", "drop", "redact"] = "keep"
    names: dict[str, Literal["keep", "drop", "redact"]] = {}
    headers: HeaderFields | None = None


class AccessLog(Model):
    file_path: str = ""
    format: Literal["common", "genericCLF", "json"] = "common"
    buffering_size: int = Field(default=0, ge=0)
    add_internals: bool = False
    filters: AccessLogFilters | None = None
    fields: AccessLogFields | None = None


class StaticServersTransport(Model):
    insecure_skip_verify: bool = False
    root_cas: list[str] = alias("rootCAs", default=[])
    max_idle_conns_per_host: int = 200
    forwarding_timeouts: ForwardingTimeouts = Field(default_factory=ForwardingTimeouts)
    max_response_header_bytes: int = Field(default=RESPONSE_HEADER_BYTES, gt=0)
    max_response_header_count: int = Field(default=RESPONSE_HEADER_COUNT, gt=0)


class StaticTCPServersTransport(Model):
    dial_timeout: Duration = 30.0
    dial_keep_alive: Duration = 15.0
    termination_delay: Duration = 0.1


class Global(Model):
    check_new_version: bool = False
    send_anonymous_usage: bool = False


class Core(Model):
    default_rule_syntax: Literal["v3"] = "v3"


def _cpu_count() -> int:
    return os.cpu_count() or 1


class StaticConfig(Model):
    """The whole static configuration; `StaticConfig()` is valid and has no entrypoint."""

    global_: Global = alias("global", default_factory=Global)
    core: Core = Field(default_factory=Core)
    entry_points: dict[str, EntryPoint] = {}
    providers: Providers = Field(default_factory=Providers)
    certificates_resolvers: dict[str, CertificateResolver] = {}
    api: API | None = None
    ping: Ping | None = None
    metrics: Metrics | None = None
    log: Log = Field(default_factory=Log)
    access_log: AccessLog | None = None
    servers_transport: StaticServersTransport = Field(default_factory=StaticServersTransport)
    tcp_servers_transport: StaticTCPServersTransport = Field(
        default_factory=StaticTCPServersTransport
    )
    workers: int = Field(default_factory=_cpu_count, ge=1)
