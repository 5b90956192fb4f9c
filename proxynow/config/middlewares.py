"""HTTP and TCP middleware configuration: one model per Traefik middleware type.

`Middleware` is the typed union of the 24 OSS HTTP middlewares: exactly one of its fields
is set, `Middleware.kind` names it and `Middleware.options` is that type's model. Defaults
are Traefik's (see ../shared/TRAEFIK.md §1.4 and Traefik's middleware reference pages).
"""

from __future__ import annotations

from typing import Self

from pydantic import field_validator, model_validator

from proxynow.config.base import Duration, Model, alias
from proxynow.rules.goregexp import RegexpError
from proxynow.rules.goreplace import compile_capturing

MIB = 1024 * 1024


class AddPrefix(Model):
    prefix: str

    @field_validator("prefix")
    @classmethod
    def _not_empty(cls, prefix: str) -> str:
        if not prefix:
            raise ValueError("prefix cannot be empty")  # Traefik's error
        return prefix


class BasicAuth(Model):
    users: list[str] = []
    users_file: str = ""
    realm: str = "traefik"
    remove_header: bool = False
    header_field: str = ""


class Buffering(Model):
    max_request_body_bytes: int = 0
    mem_request_body_bytes: int = MIB
    max_response_body_bytes: int = 0
    mem_response_body_bytes: int = MIB
    retry_expression: str = ""


class Chain(Model):
    middlewares: list[str]


class CircuitBreaker(Model):
    expression: str
    check_period: Duration = 0.1
    fallback_duration: Duration = 10.0
    recovery_duration: Duration = 10.0
    response_code: int = 503


class Compress(Model):
    excluded_content_types: list[str] = []
    included_content_types: list[str] = []
    min_response_body_bytes: int = 1024
    default_encoding: str = ""
    encodings: list[str] = ["gzip", "br", "zstd"]


class ContentType(Model):
    # Deprecated in Traefik v3: unset or true detects, false makes the middleware a no-op.
    auto_detect: bool | None = None


class DigestAuth(Model):
    users: list[str] = []
    users_file: str = ""
    realm: str = "traefik"
    remove_header: bool = False
    header_field: str = ""


class EncodedCharacters(Model):
    allow_encoded_slash: bool = False
    allow_encoded_back_slash: bool = False
    allow_encoded_null_character: bool = False
    allow_encoded_semicolon: bool = False
    allow_encoded_percent: bool = False
    allow_encoded_question_mark: bool = False
    allow_encoded_hash: bool = False


class Errors(Model):
    status: list[str] = []
    status_rewrites: dict[str, int] = {}
    service: str = ""
    query: str = ""


class ClientTLS(Model):
    """TLS settings of a client connection (forwardAuth, Docker API)."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    insecure_skip_verify: bool = False
    ca_optional: bool = False


class ForwardAuth(Model):
    address: str
    tls: ClientTLS | None = None
    trust_forward_header: bool = False
    auth_response_headers: list[str] = []
    auth_response_headers_regex: str = ""
    auth_request_headers: list[str] = []
    add_auth_cookies_to_response: list[str] = []
    header_field: str = ""
    forward_body: bool = False
    max_body_size: int = -1
    max_response_body_size: int = -1
    preserve_location_header: bool = False
    preserve_request_method: bool = False
    auth_signin_url: str = alias("authSigninURL", default="")


class GrpcWeb(Model):
    allow_origins: list[str] = []


class Headers(Model):
    custom_request_headers: dict[str, str] = {}
    custom_response_headers: dict[str, str] = {}
    access_control_allow_credentials: bool = False
    access_control_allow_headers: list[str] = []
    access_control_allow_methods: list[str] = []
    access_control_allow_origin_list: list[str] = []
    access_control_allow_origin_list_regex: list[str] = []
    access_control_expose_headers: list[str] = []
    access_control_max_age: int = 0
    add_vary_header: bool = False
    allowed_hosts: list[str] = []
    hosts_proxy_headers: list[str] = []
    ssl_proxy_headers: dict[str, str] = {}
    sts_seconds: int = 0
    sts_include_subdomains: bool = False
    sts_preload: bool = False
    force_sts_header: bool = alias("forceSTSHeader", default=False)
    frame_deny: bool = False
    custom_frame_options_value: str = ""
    content_type_nosniff: bool = False
    browser_xss_filter: bool = False
    custom_browser_xss_value: str = alias("customBrowserXSSValue", default="")
    content_security_policy: str = ""
    content_security_policy_report_only: str = ""
    public_key: str = ""
    referrer_policy: str = ""
    permissions_policy: str = ""
    feature_policy: str = ""
    is_development: bool = False
    ssl_redirect: bool = False
    ssl_temporary_redirect: bool = False
    ssl_host: str = ""
    ssl_force_host: bool = False


class IPStrategy(Model):
    depth: int = 0
    excluded_ips: list[str] = alias("excludedIPs", default=[])
    ipv6_subnet: int | None = None


class IPAllowList(Model):
    source_range: list[str] = []
    ip_strategy: IPStrategy | None = alias("ipStrategy", default=None)
    reject_status_code: int = 403


class SourceCriterion(Model):
    ip_strategy: IPStrategy | None = alias("ipStrategy", default=None)
    request_header_name: str = ""
    request_host: bool = False


class InFlightReq(Model):
    amount: int = 0
    source_criterion: SourceCriterion | None = None


class CertSubject(Model):
    country: bool = False
    province: bool = False
    locality: bool = False
    organization: bool = False
    organizational_unit: bool = False
    common_name: bool = False
    serial_number: bool = False
    domain_component: bool = False


class CertIssuer(Model):
    country: bool = False
    province: bool = False
    locality: bool = False
    organization: bool = False
    common_name: bool = False
    serial_number: bool = False
    domain_component: bool = False


class CertInfo(Model):
    not_after: bool = False
    not_before: bool = False
    sans: bool = False
    serial_number: bool = False
    subject: CertSubject | None = None
    issuer: CertIssuer | None = None


class PassTLSClientCert(Model):
    pem: bool = False
    info: CertInfo | None = None


class RateLimit(Model):
    average: int = 0
    period: Duration = 1.0
    burst: int = 1
    source_criterion: SourceCriterion | None = None


class RedirectScheme(Model):
    scheme: str = "https"
    port: str = ""
    permanent: bool = False


def _go_regexp(pattern: str) -> str:
    """A Go regexp option: invalid ones are errors on the middleware, as in Traefik."""
    try:
        compile_capturing(pattern.strip())
    except RegexpError as exc:
        raise ValueError(f"error compiling regular expression {pattern}: {exc}") from None
    return pattern


class RedirectRegex(Model):
    regex: str
    replacement: str
    permanent: bool = False

    _regex = field_validator("regex")(_go_regexp)


class ReplacePath(Model):
    path: str


class ReplacePathRegex(Model):
    regex: str
    replacement: str

    _regex = field_validator("regex")(_go_regexp)


class Retry(Model):
    attempts: int = 0
    initial_interval: Duration = 0.1
    timeout: Duration = 0.0
    max_request_body_bytes: int = 2 * MIB
    status: list[str] = []
    disable_retry_on_network_error: bool = False
    retry_non_idempotent_method: bool = False


class StripPrefix(Model):
    prefixes: list[str] = []
    force_slash: bool = False


class StripPrefixRegex(Model):
    regex: list[str] = []

    @field_validator("regex")
    @classmethod
    def _regexps(cls, patterns: list[str]) -> list[str]:
        return [_go_regexp(pattern) for pattern in patterns]


MiddlewareOptions = (
    AddPrefix
    | BasicAuth
    | Buffering
    | Chain
    | CircuitBreaker
    | Compress
    | ContentType
    | DigestAuth
    | EncodedCharacters
    | Errors
    | ForwardAuth
    | GrpcWeb
    | Headers
    | IPAllowList
    | InFlightReq
    | PassTLSClientCert
    | RateLimit
    | RedirectScheme
    | RedirectRegex
    | ReplacePath
    | ReplacePathRegex
    | Retry
    | StripPrefix
    | StripPrefixRegex
)


def _set_fields(model: Model) -> list[str]:
    """Names of the fields of a one-of model that are set (not None)."""
    return [name for name in type(model).model_fields if getattr(model, name) is not None]


def require_exactly_one(model: Model, what: str) -> None:
    """Raise if not exactly one field of a one-of model (middleware, service) is set."""
    chosen = _set_fields(model)
    fields = type(model).model_fields
    if len(chosen) == 1:
        return
    if not chosen:
        raise ValueError(
            f"{what} has no type; set exactly one of: "
            + ", ".join(str(field.alias) for field in fields.values())
        )
    names = ", ".join(str(fields[name].alias) for name in chosen)
    raise ValueError(f"{what} has {len(chosen)} types ({names}); exactly one is allowed")


class Middleware(Model):
    """One HTTP middleware: exactly one of the fields below is set."""

    add_prefix: AddPrefix | None = None
    basic_auth: BasicAuth | None = None
    buffering: Buffering | None = None
    chain: Chain | None = None
    circuit_breaker: CircuitBreaker | None = None
    compress: Compress | None = None
    content_type: ContentType | None = None
    digest_auth: DigestAuth | None = None
    encoded_characters: EncodedCharacters | None = None
    errors: Errors | None = None
    forward_auth: ForwardAuth | None = None
    grpc_web: GrpcWeb | None = None
    headers: Headers | None = None
    ip_allow_list: IPAllowList | None = alias("ipAllowList", default=None)
    in_flight_req: InFlightReq | None = None
    pass_tls_client_cert: PassTLSClientCert | None = alias("passTLSClientCert", default=None)
    rate_limit: RateLimit | None = None
    redirect_scheme: RedirectScheme | None = None
    redirect_regex: RedirectRegex | None = None
    replace_path: ReplacePath | None = None
    replace_path_regex: ReplacePathRegex | None = None
    retry: Retry | None = None
    strip_prefix: StripPrefix | None = None
    strip_prefix_regex: StripPrefixRegex | None = None

    @model_validator(mode="after")
    def _one_type(self) -> Self:
        require_exactly_one(self, "middleware")
        return self

    @property
    def kind(self) -> str:
        """Traefik's name of the type that is set (`basicAuth`, `stripPrefix`, ...)."""
        name = _set_fields(self)[0]
        return str(type(self).model_fields[name].alias)

    @property
    def options(self) -> MiddlewareOptions:
        """The options model of the type that is set."""
        value: MiddlewareOptions = getattr(self, _set_fields(self)[0])
        return value


MIDDLEWARE_TYPES: tuple[str, ...] = tuple(
    str(field.alias) for field in Middleware.model_fields.values()
)


class InFlightConn(Model):
    amount: int = 0


class TCPIPAllowList(Model):
    source_range: list[str] = []


class TCPMiddleware(Model):
    """One TCP middleware: exactly one of `inFlightConn`, `ipAllowList`."""

    in_flight_conn: InFlightConn | None = None
    ip_allow_list: TCPIPAllowList | None = alias("ipAllowList", default=None)

    @model_validator(mode="after")
    def _one_type(self) -> Self:
        require_exactly_one(self, "middleware")
        return self

    @property
    def kind(self) -> str:
        name = _set_fields(self)[0]
        return str(type(self).model_fields[name].alias)

    @property
    def options(self) -> InFlightConn | TCPIPAllowList:
        value: InFlightConn | TCPIPAllowList = getattr(self, _set_fields(self)[0])
        return value
