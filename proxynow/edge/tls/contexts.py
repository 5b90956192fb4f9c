"""TLS termination settings: certificates, TLS options, and the per-graph SNI table.

`build_tls(config, routers)` runs with every graph build. It loads the certificates of
`tls.certificates` and `tls.stores.default.defaultCertificate` (a path or inline PEM, like
Traefik's FileOrContent; the ACME manager hands its certificates in inline), compiles the
TLS options, and returns an immutable `SniTable`: exact name → context, `*.one.label` →
context, then the default certificate (configured, else "PROXYNOW DEFAULT CERT", made once
per process). SSL contexts come from a per-worker `ContextCache` keyed by certificate
content and options, so a graph swap reuses every context it can (sessions survive too).

TLS options per server name follow Traefik: a router with `tls.options` applies them to
the hosts of its `Host(...)` rule; every other name uses `default`.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from proxynow.config.dynamic import DynamicConfig, TLSOptions
from proxynow.edge.tls.tickets import set_ticket_key, set_tls13_suites, supported
from proxynow.rules import Node, rule_domains

__all__ = [
    "DEFAULT_CERT_NAME",
    "CertPair",
    "ContextCache",
    "OptionSpec",
    "SniTable",
    "build_tls",
    "cert_pair",
    "generated_default",
    "go_cipher_name",
    "load_pem",
    "option_spec",
    "options_by_host",
]

log = logging.getLogger(__name__)

DEFAULT_CERT_NAME = "PROXYNOW DEFAULT CERT"
_VERSIONS = {
    "VersionTLS10": ssl.TLSVersion.TLSv1,
    "VersionTLS11": ssl.TLSVersion.TLSv1_1,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's TLS 1.2 suite names → OpenSSL's (TLS 1.3 suites are not configurable, as in Go).
_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
# OpenSSL's names → Go's, for metrics labels (Go names the ChaCha20 suites with _SHA256).
_GO_CIPHERS = {openssl: go for go, openssl in _CIPHERS.items()}
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1"}
_CURVES.update({"secp256r1": "prime256v1", "secp384r1": "secp384r1", "secp521r1": "secp521r1"})
_VERIFY = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# acme-tls/1 only ever gets the challenge context.
_UNSERVED_ALPN = frozenset({"acme-tls/1"})


@dataclass(frozen=True, slots=True)
class CertPair:
    """A certificate chain and its key (PEM) and the names it is valid for."""

    cert: bytes
    key: bytes
    names: tuple[str, ...]

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.cert + b"\0" + self.key).digest()


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """TLS options resolved to what OpenSSL takes; hashable (a context cache key)."""

    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: str = ""
    curve: str = ""
    alpn: tuple[str, ...] = ("h2", "http/1.1")  # Traefik's default, acme-tls/1 aside
    sni_strict: bool = False
    verify: ssl.VerifyMode = ssl.CERT_NONE
    client_cas: bytes = b""
    session_tickets: bool = True


DEFAULT_OPTIONS = OptionSpec()


def load_pem(value: str) -> bytes:
    """FileOrContent: inline PEM as is, anything else is a file path."""
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii")
    with open(value, "rb") as handle:
        return handle.read()


def option_spec(options: TLSOptions) -> OptionSpec:
    """Compile one `tls.options` entry; unknown names raise ValueError."""
    curves = [_lookup(_CURVES, "curve", name) for name in options.curve_preferences]
    auth = options.client_auth
    cas = b"".join(load_pem(ca) for ca in auth.ca_files) if auth is not None else b""
    return OptionSpec(
        min_version=tls_version(options.min_version or "VersionTLS12"),
        max_version=tls_version(options.max_version or "VersionTLS13"),
        ciphers=cipher_names(options.cipher_suites),
        curve=curves[0] if curves else "",
        alpn=tuple(p for p in options.alpn_protocols if p not in _UNSERVED_ALPN),
        sni_strict=options.sni_strict,
        verify=_VERIFY[auth.client_auth_type] if auth is not None else ssl.CERT_NONE,
        client_cas=cas,
        session_tickets=not options.disable_session_tickets,
    )


def _lookup(table: Mapping[str, str], what: str, name: str) -> str:
    value = table.get(name)
    if value is None:
        raise ValueError(f"unknown {what} {name!r}")
    return value


def cipher_names(names: Iterable[str]) -> str:
    """Go's TLS 1.2 suite names as an OpenSSL cipher string; unknown names raise ValueError."""
    return ":".join(dict.fromkeys(_lookup(_CIPHERS, "cipher suite", name) for name in names))


def tls_version(name: str) -> ssl.TLSVersion:
    """`VersionTLS12` and the like; unknown names raise ValueError."""
    version = _VERSIONS.get(name)
    if version is None:
        raise ValueError(f"unknown TLS version {name!r}")
    return version


class ContextCache:
    """A worker's SSL contexts by (certificate, options); kept across graph swaps."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[bytes, OptionSpec], ssl.SSLContext] = {}
        self._used: set[tuple[bytes, OptionSpec]] = set()
        # (cert PEM, key PEM) → CertPair: a graph build parses only new certificates.
        self._pairs: dict[tuple[bytes, bytes], CertPair] = {}
        self._pairs_used: dict[tuple[bytes, bytes], CertPair] = {}
        # The session-ticket key every worker shares (edge/tls/tickets.py); None: OpenSSL's
        # own per context, until the control plane's arrives.
        self._ticket_key: bytes | None = None

    def set_ticket_key(self, key: bytes) -> None:
        """Encrypt tickets with `key` from now on, in every context made or to be made."""
        self._ticket_key = key
        for context in self._contexts.values():
            _share_tickets(context, key)

    def pair(self, cert: bytes, key: bytes) -> CertPair:
        pair = self._pairs.get((cert, key))
        if pair is None:
            pair = cert_pair(cert, key)
        self._pairs_used[(cert, key)] = pair
        return pair

    def get(self, pair: CertPair, spec: OptionSpec) -> ssl.SSLContext:
        key = (pair.digest, spec)
        self._used.add(key)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = _make_context(pair, spec)
            if self._ticket_key is not None:
                _share_tickets(context, self._ticket_key)
        return context

    def retain_used(self) -> None:
        """Forget contexts the last build did not use (call after a build)."""
        for key in set(self._contexts) - self._used:
            del self._contexts[key]
        self._used = set()
        self._pairs, self._pairs_used = self._pairs_used, {}


def _share_tickets(context: ssl.SSLContext, key: bytes) -> None:
    if not set_ticket_key(context, key):
        _warn_unshared(supported() or "OpenSSL refused the key")


@functools.cache
def _warn_unshared(reason: str) -> None:
    """Once per process and reason."""
    log.warning(
        "TLS session tickets: each worker keeps its own key, so a client resumes only on "
        "the worker it first reached (%s)",
        reason,
    )


def _make_context(pair: CertPair, spec: OptionSpec) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = spec.min_version
    context.maximum_version = spec.max_version
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if not spec.session_tickets:
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0
    else:
        # One ticket per TLS 1.3 handshake is enough to resume; each costs an encryption.
        context.num_tickets = 1
    if spec.ciphers:
        context.set_ciphers(spec.ciphers)
    if spec.max_version >= ssl.TLSVersion.TLSv1_3:
        set_tls13_suites(context)  # where it cannot, OpenSSL's order (AES-256 first) stays
    if spec.curve:
        context.set_ecdh_curve(spec.curve)
    if spec.alpn:
        context.set_alpn_protocols(list(spec.alpn))
    if spec.verify != ssl.CERT_NONE:
        context.verify_mode = spec.verify
        if spec.client_cas:
            context.load_verify_locations(cadata=spec.client_cas.decode("ascii"))
    load_chain(context, pair.cert, pair.key)
    return context


def load_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """`load_cert_chain` reads files only: PEM content goes through a private temp file."""
    fd, path = tempfile.mkstemp(prefix="proxynow-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n" + cert)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


@dataclass(frozen=True, slots=True)
class SniTable:
    """An immutable SNI → context table (one per graph)."""

    exact: Mapping[str, ssl.SSLContext] = field(default_factory=dict)
    wildcard: Mapping[str, ssl.SSLContext] = field(default_factory=dict)  # "one.label" → ctx
    default: ssl.SSLContext | None = None  # None: sniStrict, unknown names are refused

    def lookup(self, sni: str) -> ssl.SSLContext | None:
        context = self.exact.get(sni)
        if context is not None:
            return context
        context = self.wildcard.get(sni.partition(".")[2])
        return context if context is not None else self.default


def build_tls(
    config: DynamicConfig, host_options: Mapping[str, str], cache: ContextCache
) -> SniTable:
    """The SNI table of one entrypoint (call `cache.retain_used()` after the last one of a
    graph). `host_options` maps a host to the TLS options name its
    router asked for. A certificate or option that cannot be loaded is logged and left
    out; the table is always usable."""
    specs = _specs(config)
    default_spec = specs.get("default", DEFAULT_OPTIONS)
    exact: dict[str, ssl.SSLContext] = {}
    wildcard: dict[str, ssl.SSLContext] = {}
    pairs = _certificates(config, cache)
    for pair in pairs:
        for name in pair.names:
            spec = specs.get(host_options.get(name, "default"), default_spec)
            try:
                context = cache.get(pair, spec)
            except (ssl.SSLError, ValueError, OSError) as exc:
                log.error("TLS certificate for %s cannot be used: %s", name, exc)
                break
            if name.startswith("*."):
                wildcard.setdefault(name[2:], context)
            else:
                exact.setdefault(name, context)
    default: ssl.SSLContext | None = None
    if not default_spec.sni_strict:
        default = cache.get(_default_pair(config, cache, pairs), default_spec)
    return SniTable(exact, wildcard, default)


def options_by_host(routers: Iterable[tuple[Node, str]]) -> dict[str, str]:
    """host → options name, from (parsed rule, options name) of routers with TLS options."""
    hosts: dict[str, str] = {}
    for node, options in routers:
        if options:
            for host in rule_domains(node):
                hosts.setdefault(host, options.split("@", 1)[0])
    return hosts


def _specs(config: DynamicConfig) -> dict[str, OptionSpec]:
    specs: dict[str, OptionSpec] = {}
    for name, options in config.tls.options.items():
        try:
            specs[name.split("@", 1)[0]] = option_spec(options)
        except (ValueError, OSError) as exc:
            log.error("TLS options %s skipped: %s", name, exc)
    return specs


def _certificates(config: DynamicConfig, cache: ContextCache) -> list[CertPair]:
    pairs: list[CertPair] = []
    for entry in config.tls.certificates:
        try:
            pairs.append(cache.pair(load_pem(entry.cert_file), load_pem(entry.key_file)))
        except (OSError, ValueError) as exc:
            log.error("TLS certificate %s skipped: %s", entry.cert_file[:60], exc)
    return pairs


def cert_pair(cert: bytes, key: bytes) -> CertPair:
    """A CertPair with the DNS names of the certificate (SANs, else its common name)."""
    # Imported here: a worker without TLS never needs cryptography (about 15% of its imports).
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    leaf = x509.load_pem_x509_certificate(cert)
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = names.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return CertPair(cert, key, tuple(dict.fromkeys(name.lower() for name in dns)))


def _default_pair(config: DynamicConfig, cache: ContextCache, pairs: list[CertPair]) -> CertPair:
    """The default store's certificate: the ACME one of `defaultGeneratedCert` once it is
    issued (it arrives among the certificates), else `defaultCertificate`, else ours."""
    store = config.tls.stores.get("default")
    generated = store.default_generated_cert if store is not None else None
    if generated is not None and generated.domain is not None and generated.domain.main:
        wanted = {generated.domain.main.lower(), *(n.lower() for n in generated.domain.sans)}
        for pair in pairs:
            if wanted <= set(pair.names):
                return pair
    configured = store.default_certificate if store is not None else None
    if configured is not None:
        try:
            return cache.pair(load_pem(configured.cert_file), load_pem(configured.key_file))
        except (OSError, ValueError) as exc:
            log.error("TLS default certificate skipped: %s", exc)
    return generated_default()


_GENERATED: list[CertPair] = []


def generated_default() -> CertPair:
    """The self-signed PROXYNOW DEFAULT CERT (ECDSA P-256), made once per process."""
    if not _GENERATED:
        from proxynow.certs import self_signed  # cryptography: see `cert_pair`

        san = f"{os.urandom(16).hex()}.proxynow.default"
        cert, key = self_signed(
            DEFAULT_CERT_NAME,
            [san],
            valid_for=datetime.timedelta(days=365),
            backdate=datetime.timedelta(days=1),
        )
        _GENERATED.append(CertPair(cert, key, ()))
    return _GENERATED[0]


def go_cipher_name(openssl_name: str) -> str:
    """The Go (IANA) name of a negotiated cipher as Traefik reports it; TLS 1.3 suites
    already have that name in OpenSSL."""
    return _GO_CIPHERS.get(openssl_name, openssl_name)
