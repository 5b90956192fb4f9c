"""What Traefik 3.7 reads that proxynow reads differently: deprecated keys, options not
modelled yet, keys at the root of a file.

Three tables, each the one place its kind of decision is written down:

- `DEPRECATED`: keys Traefik 3.7 still accepts with a deprecation notice (its v3
  migration notes). proxynow reads them too, `ipWhiteList` under the name of its
  replacement, and warns naming what to write instead (`keys.normalize` meets them).
- `UNSUPPORTED`: static options Traefik 3.7 has and proxynow does not apply yet. A file
  that sets them still starts proxynow: each is left out of the configuration with a
  warning, once. An option whose absence would change what is exposed or how peers are
  verified is an error instead, so that nothing is served less safely than written.
- Keys at the root of a file that are not sections: Traefik ignores them (files often
  carry `version:` or YAML anchors there), proxynow warns with a "did you mean".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from proxynow.config import dynamic, middlewares, static

__all__ = [
    "DEPRECATED",
    "UNSUPPORTED",
    "Deprecation",
    "Unsupported",
    "deprecations",
    "unsupported_options",
]

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Deprecation:
    """A key Traefik still reads, and what to write instead.

    `rename` is the field that takes the key's value (None: the key keeps its own field);
    `when` limits the warning to some values (`ruleSyntax: v2` is an error of its own).
    """

    message: str
    rename: str | None = None
    when: Callable[[Any], bool] | None = None

    def applies(self, value: Any) -> bool:
        return self.when is None or bool(self.when(value))


def _not_v2(value: Any) -> bool:
    return not (isinstance(value, str) and value.lower() == "v2")


_REDIRECT = "use a redirectScheme middleware instead"
_RULE_SYNTAX = Deprecation(
    "ruleSyntax is deprecated since Traefik v3.4: remove it (rules are read as v3)", when=_not_v2
)

DEPRECATED: Mapping[type[BaseModel], Mapping[str, Deprecation]] = {
    middlewares.Middleware: {
        "ipWhiteList": Deprecation(
            "ipWhiteList is deprecated since Traefik v3.0: write ipAllowList", "ipAllowList"
        ),
    },
    middlewares.TCPMiddleware: {
        "ipWhiteList": Deprecation(
            "ipWhiteList is deprecated since Traefik v3.0: write ipAllowList", "ipAllowList"
        ),
    },
    middlewares.StripPrefix: {
        "forceSlash": Deprecation("forceSlash is deprecated: remove it (it has no effect)"),
    },
    middlewares.Headers: {
        "sslRedirect": Deprecation(f"sslRedirect is deprecated: {_REDIRECT}"),
        "sslTemporaryRedirect": Deprecation(
            f"sslTemporaryRedirect is deprecated: {_REDIRECT} (permanent: false)"
        ),
        "sslHost": Deprecation(f"sslHost is deprecated: {_REDIRECT}"),
        "sslForceHost": Deprecation(f"sslForceHost is deprecated: {_REDIRECT}"),
        "featurePolicy": Deprecation("featurePolicy is deprecated: write permissionsPolicy"),
        "publicKey": Deprecation(
            "publicKey (HTTP public key pinning) is deprecated: remove it, browsers ignore it"
        ),
    },
    dynamic.Router: {"ruleSyntax": _RULE_SYNTAX},
    dynamic.TCPRouter: {"ruleSyntax": _RULE_SYNTAX},
    dynamic.TCPLoadBalancer: {
        "proxyProtocol": Deprecation(
            "proxyProtocol on a TCP loadBalancer is deprecated since Traefik v3.5.2: set "
            "proxyProtocol on a tcp.serversTransports entry and name it in serversTransport"
        ),
    },
    static.Core: {
        "defaultRuleSyntax": Deprecation(
            "core.defaultRuleSyntax is deprecated since Traefik v3.4: remove it "
            "(rules are read as v3)",
            when=_not_v2,
        ),
    },
    static.DNSChallenge: {
        "delayBeforeCheck": Deprecation(
            "delayBeforeCheck is deprecated since Traefik v3.3: write propagation.delayBeforeChecks"
        ),
        "disablePropagationCheck": Deprecation(
            "disablePropagationCheck is deprecated since Traefik v3.3: write "
            "propagation.disableChecks"
        ),
    },
}


def deprecations(model: type[BaseModel]) -> Mapping[str, Deprecation]:
    """The deprecated keys of `model`, as Traefik spells them."""
    return DEPRECATED.get(model, {})


# ---------------------------------------------------------------- static options not modelled


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A static option proxynow does not apply yet. `error` decides, from its value,
    whether leaving it out changes security (then it is an error, not a warning)."""

    message: str
    error: Callable[[Any], bool] | None = None


def _always(_: Any) -> bool:
    return True


def _any_false(value: Any) -> bool:
    """`encodedCharacters` with some character refused: a hardening not applied."""
    return isinstance(value, dict) and any(
        item is False or str(item).lower() == "false" for item in value.values()
    )


def _not_keep(value: Any) -> bool:
    return str(value).lower() != "keep"


def _skips_verify(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    flag = next((v for k, v in value.items() if str(k).lower() == "insecureskipverify"), False)
    return flag is True or str(flag).lower() == "true"


_NOT_YET = "is not supported yet"
_PROVIDERS = (
    "swarm",
    "kubernetesCRD",
    "kubernetesIngress",
    "kubernetesIngressNGINX",
    "kubernetesGateway",
    "knative",
    "consul",
    "consulCatalog",
    "nomad",
    "ecs",
    "etcd",
    "zooKeeper",
    "redis",
    "http",
    "plugin",
)
_METRICS = ("datadog", "statsD", "influxDB2", "otlp")

# Paths in Traefik's spelling (matched case-insensitively); "*" is any name.
UNSUPPORTED: Mapping[Loc, Unsupported] = {
    ("tracing",): Unsupported(f"tracing {_NOT_YET}: no spans are exported"),
    **{
        ("metrics", name): Unsupported(f"the {name} metrics backend {_NOT_YET} (only prometheus)")
        for name in _METRICS
    },
    ("metrics", "addInternals"): Unsupported(f"metrics.addInternals {_NOT_YET}"),
    ("log", "otlp"): Unsupported(f"log.otlp {_NOT_YET}: logs go to stderr or log.filePath"),
    ("accessLog", "otlp"): Unsupported(f"accessLog.otlp {_NOT_YET}"),
    ("experimental",): Unsupported(f"experimental features (plugins, ...) {_NOT_YET}"),
    ("hostResolver",): Unsupported(
        f"hostResolver (CNAME flattening) {_NOT_YET}: Host() matches the request host only"
    ),
    ("ocsp",): Unsupported(f"OCSP stapling {_NOT_YET}"),
    ("spiffe",): Unsupported(f"SPIFFE {_NOT_YET}"),
    ("serversTransport", "spiffe"): Unsupported(
        f"serversTransport.spiffe {_NOT_YET}; it changes how backends are authenticated, so "
        "proxynow refuses to start rather than connect to them otherwise",
        _always,
    ),
    ("tcpServersTransport", "tls"): Unsupported(
        f"tcpServersTransport.tls {_NOT_YET}; with insecureSkipVerify it would weaken "
        "backend verification, so that is refused",
        _skips_verify,
    ),
    ("tcpServersTransport", "spiffe"): Unsupported(
        f"tcpServersTransport.spiffe {_NOT_YET}; it changes how backends are authenticated",
        _always,
    ),
    **{
        ("providers", name): Unsupported(
            f"the {name} provider {_NOT_YET}: the routes it would bring are not served"
        )
        for name in _PROVIDERS
    },
    ("providers", "rest"): Unsupported(
        f"the rest provider {_NOT_YET}; it exposes an endpoint that rewrites the routing, "
        "so it is refused rather than ignored",
        _always,
    ),
    ("entryPoints", "*", "http3"): Unsupported(
        f"HTTP/3 {_NOT_YET}: the entrypoint serves HTTP/1.1 over TCP only"
    ),
    ("entryPoints", "*", "http", "encodedCharacters"): Unsupported(
        f"entrypoint encodedCharacters {_NOT_YET}; refusing an encoded character is a "
        "protection proxynow would not apply, so a false value is an error",
        _any_false,
    ),
    ("entryPoints", "*", "http", "underscoreHeadersStrategy"): Unsupported(
        f"underscoreHeadersStrategy {_NOT_YET} (and deprecated for aliasHeadersStrategy); "
        "delete or reject is a protection proxynow would not apply, so it is an error",
        _not_keep,
    ),
    ("entryPoints", "*", "http", "aliasHeadersStrategy"): Unsupported(
        f"aliasHeadersStrategy {_NOT_YET}; delete or reject is a protection proxynow "
        "would not apply, so it is an error",
        _not_keep,
    ),
    ("entryPoints", "*", "http2", "maxDecoderHeaderTableSize"): Unsupported(
        f"http2.maxDecoderHeaderTableSize {_NOT_YET}"
    ),
    ("entryPoints", "*", "http2", "maxEncoderHeaderTableSize"): Unsupported(
        f"http2.maxEncoderHeaderTableSize {_NOT_YET}"
    ),
    ("entryPoints", "*", "observability", "traceVerbosity"): Unsupported(
        f"observability.traceVerbosity {_NOT_YET} (no tracing)"
    ),
    ("certificatesResolvers", "*", "tailscale"): Unsupported(
        f"the tailscale certificate resolver {_NOT_YET}: routers naming it get the "
        "default certificate"
    ),
}

_EXPERIMENTAL_DEPRECATED = {
    "kubernetesgateway": "experimental.kubernetesGateway is deprecated since Traefik v3.1",
    "kubernetesingressnginx": "experimental.kubernetesIngressNGINX is deprecated since v3.6.2",
}


@dataclass(frozen=True, slots=True)
class Found:
    """One unsupported option met in a raw static configuration."""

    loc: Loc  # as the user spelt it
    message: str
    error: bool


def unsupported_options(raw: dict[str, Any]) -> tuple[dict[str, Any], list[Found]]:
    """`raw` (a static file's data) without the options of `UNSUPPORTED`, and what was left
    out. The input is not modified."""
    found: list[Found] = []
    cleaned = raw
    for pattern, entry in UNSUPPORTED.items():
        cleaned = _remove(cleaned, pattern, (), entry, found)
    return cleaned, found


def _remove(node: Any, pattern: Loc, loc: Loc, entry: Unsupported, found: list[Found]) -> Any:
    if not isinstance(node, dict) or not pattern:
        return node
    head, rest = str(pattern[0]).lower(), pattern[1:]
    result = dict(node)
    for key, value in node.items():
        if not isinstance(key, str) or (head != "*" and key.lower() != head):
            continue
        if rest:
            result[key] = _remove(value, rest, (*loc, key), entry, found)
            continue
        del result[key]
        error = entry.error is not None and entry.error(value)
        found.append(Found((*loc, key), _message(entry, value, error), error))
    return result


def _message(entry: Unsupported, value: Any, error: bool) -> str:
    text = entry.message if error or entry.error is None else entry.message.split("; ")[0]
    if isinstance(value, dict):
        notes = [_EXPERIMENTAL_DEPRECATED.get(str(key).lower()) for key in value]
        text += "".join(f"; {note}" for note in notes if note)
    return f"{text}; left out" if not error else text
