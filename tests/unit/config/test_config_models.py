"""Models: Traefik defaults, durations, case-insensitive keys, one-of objects."""

from __future__ import annotations

import os

import pytest

from proxynow.config.base import parse_duration
from proxynow.config.dynamic import DynamicConfig, Server
from proxynow.config.errors import ConfigError
from proxynow.config.keys import normalize
from proxynow.config.loader import validate, validate_dynamic
from proxynow.config.middlewares import MIDDLEWARE_TYPES, BasicAuth, Middleware
from proxynow.config.static import REDIRECTION_PRIORITY, StaticConfig


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("2h45m10.5s", 9910.5),
        ("100us", 0.0001),
        ("0", 0.0),
        ("-1s", -1.0),
        ("42", 42.0),
        ("0.25", 0.25),
        (7, 7.0),
        (1.5, 1.5),
    ],
)
def test_duration_accepts_go_syntax_and_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["s", "10x", "1m30", "ten seconds", "1s 2s", ""])
def test_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_static_defaults_are_traefiks() -> None:
    config = StaticConfig.model_validate(
        {
            "entryPoints": {"web": {"address": ":80"}},
            "providers": {"docker": {}, "file": {"filename": "f.yml"}},
        }
    )
    web = config.entry_points["web"]
    assert web.transport.responding_timeouts.read_timeout == 60.0
    assert web.transport.responding_timeouts.write_timeout == 0.0
    assert web.transport.responding_timeouts.idle_timeout == 180.0
    assert web.transport.life_cycle.grace_time_out == 10.0
    assert web.transport.life_cycle.request_accept_grace_timeout == 0.0
    assert web.http.max_header_bytes == 1024 * 1024
    assert web.forwarded_headers.insecure is False
    assert (web.host, web.port, web.protocol) == ("", 80, "tcp")
    docker = config.providers.docker
    assert docker is not None
    assert docker.endpoint == "unix:///var/run/docker.sock"
    assert docker.exposed_by_default is True
    assert docker.watch is True
    assert docker.default_rule == "Host(`{{ normalize .Name }}`)"
    assert config.providers.file is not None and config.providers.file.watch is True
    assert (
        config.providers.providers_throttle_duration == 0.1
    )  # deliberately shorter than Traefik's 2 s: see docs/configuration.md
    assert config.log.level == "ERROR"
    assert config.log.format == "common"
    assert config.servers_transport.max_idle_conns_per_host == 200
    assert config.servers_transport.forwarding_timeouts.dial_timeout == 30.0
    assert config.servers_transport.forwarding_timeouts.idle_conn_timeout == 90.0
    assert config.workers == (os.cpu_count() or 1)
    assert config.api is None and config.ping is None and config.metrics is None


def test_acme_prometheus_redirection_defaults() -> None:
    config = StaticConfig.model_validate(
        {
            "entryPoints": {
                "web": {
                    "address": ":80",
                    "http": {"redirections": {"entryPoint": {"to": "websecure"}}},
                },
                "websecure": {"address": "[::1]:443/udp"},
            },
            "certificatesResolvers": {
                "le": {"acme": {"email": "a@example.com", "tlsChallenge": {}}}
            },
            "metrics": {"prometheus": {}},
            "api": {},
        }
    )
    redirect = config.entry_points["web"].http.redirections
    assert redirect is not None and redirect.entry_point is not None
    assert (redirect.entry_point.scheme, redirect.entry_point.permanent) == ("https", True)
    assert redirect.entry_point.priority == REDIRECTION_PRIORITY
    secure = config.entry_points["websecure"]
    assert (secure.host, secure.port, secure.protocol) == ("::1", 443, "udp")
    acme = config.certificates_resolvers["le"].acme
    assert acme is not None
    assert acme.storage == "acme.json"
    assert acme.key_type == "RSA4096"
    assert acme.ca_server == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme.certificates_duration == 2160
    assert config.metrics is not None and config.metrics.prometheus is not None
    assert config.metrics.prometheus.buckets == [0.1, 0.3, 1.2, 5.0]
    assert config.metrics.prometheus.add_entry_points_labels is True
    assert config.metrics.prometheus.add_routers_labels is False
    assert config.api is not None and config.api.dashboard is True


def test_dynamic_defaults() -> None:
    config = DynamicConfig.model_validate(
        {
            "http": {
                "services": {"s": {"loadBalancer": {"servers": [{"url": "http://a"}]}}},
                "serversTransports": {"t": {}},
            },
            "tls": {"options": {"default": {}}},
        }
    )
    balancer = config.http.services["s"].load_balancer
    assert balancer is not None
    assert balancer.pass_host_header is True
    assert balancer.strategy == "wrr"
    assert balancer.servers == [Server(url="http://a", weight=1)]
    assert balancer.response_forwarding.flush_interval == 0.1
    timeouts = config.http.servers_transports["t"].forwarding_timeouts
    assert (timeouts.dial_timeout, timeouts.response_header_timeout) == (30.0, 0.0)
    assert (timeouts.idle_conn_timeout, timeouts.ping_timeout) == (90.0, 15.0)
    options = config.tls.options["default"]
    assert options.min_version == "VersionTLS12"
    assert options.alpn_protocols == ["h2", "http/1.1", "acme-tls/1"]


def test_empty_dynamic_config_is_valid() -> None:
    empty = DynamicConfig()
    assert empty.http.routers == {} and empty.tcp.services == {} and empty.tls.certificates == []
    assert validate_dynamic({}) == empty


def test_keys_are_case_insensitive_but_names_keep_case() -> None:
    config = validate_dynamic(
        {
            "HTTP": {
                "routers": {"MyRouter": {"RULE": "Host(`a`)", "entrypoints": ["web"]}},
                "services": {
                    "Svc": {
                        "loadbalancer": {"passhostheader": False, "servers": [{"URL": "http://b"}]}
                    }
                },
                "middlewares": {
                    "H": {"headers": {"customrequestheaders": {"X-Custom-Header": "v"}}}
                },
            }
        }
    )
    assert config.http.routers["MyRouter"].entry_points == ["web"]
    balancer = config.http.services["Svc"].load_balancer
    assert balancer is not None and balancer.pass_host_header is False
    headers = config.http.middlewares["H"].options
    assert headers.custom_request_headers == {"X-Custom-Header": "v"}  # type: ignore[union-attr]


def test_normalize_turns_numeric_map_keys_into_strings() -> None:
    raw = {"errors": {"statusrewrites": {418: 500}}}
    assert normalize(Middleware, raw) == {"errors": {"statusRewrites": {"418": 500}}}


def test_explicit_aliases_use_traefiks_spelling() -> None:
    static = validate(
        StaticConfig,
        {
            "entryPoints": {
                "w": {
                    "address": ":1",
                    "forwardedHeaders": {"trustedIPs": ["10.0.0.0/8"]},
                    "transport": {"lifeCycle": {"graceTimeOut": "3s"}},
                }
            },
            "serversTransport": {"rootCAs": ["/ca.pem"], "insecureSkipVerify": True},
            "certificatesResolvers": {"z": {"acme": {"eab": {"kid": "k", "hmacEncoded": "h"}}}},
        },
    )
    assert static.entry_points["w"].forwarded_headers.trusted_ips == ["10.0.0.0/8"]
    assert static.entry_points["w"].transport.life_cycle.grace_time_out == 3.0
    assert static.servers_transport.root_cas == ["/ca.pem"]
    assert static.servers_transport.insecure_skip_verify is True
    acme = static.certificates_resolvers["z"].acme
    assert acme is not None and acme.eab is not None and acme.eab.hmac_encoded == "h"


def test_middleware_exposes_kind_and_options() -> None:
    middleware = Middleware.model_validate({"basicAuth": {"users": ["u:p"]}})
    assert middleware.kind == "basicAuth"
    assert middleware.options == BasicAuth(users=["u:p"])
    assert len(MIDDLEWARE_TYPES) == 24
    assert "passTLSClientCert" in MIDDLEWARE_TYPES and "ipAllowList" in MIDDLEWARE_TYPES


def test_every_middleware_type_validates_with_minimal_options() -> None:
    required = {
        "addPrefix": {"prefix": "/p"},
        "chain": {"middlewares": ["a"]},
        "circuitBreaker": {"expression": "NetworkErrorRatio() > 0.5"},
        "forwardAuth": {"address": "http://auth"},
        "redirectRegex": {"regex": "^x", "replacement": "y"},
        "replacePath": {"path": "/"},
        "replacePathRegex": {"regex": "^x", "replacement": "y"},
    }
    for kind in MIDDLEWARE_TYPES:
        middleware = Middleware.model_validate({kind: required.get(kind, {})})
        assert middleware.kind == kind


def test_models_are_frozen() -> None:
    server = Server(url="http://a")
    with pytest.raises(ValueError, match="frozen"):
        server.weight = 3  # type: ignore[misc]


def test_v2_rule_syntax_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_dynamic({"http": {"routers": {"r": {"rule": "Host(`a`)", "ruleSyntax": "v2"}}}})
    (issue,) = caught.value.issues
    assert issue.path == "http.routers.r.ruleSyntax"
    assert issue.message.startswith("ruleSyntax v2 is not supported")


def test_header_labels_keep_their_names_and_refuse_bad_ones() -> None:
    labels = {"tenant": "X-Tenant", "User_agent": "User-Agent"}
    config = StaticConfig.model_validate({"metrics": {"prometheus": {"headerLabels": labels}}})
    assert config.metrics is not None and config.metrics.prometheus is not None
    assert config.metrics.prometheus.header_labels == labels
    for bad in ({"1x": "X"}, {"a-b": "X"}, {"__x": "X"}, {"code": "X"}, {"ok": "Bad Name"}):
        with pytest.raises(ValueError, match="headerLabels"):
            StaticConfig.model_validate({"metrics": {"prometheus": {"headerLabels": bad}}})
