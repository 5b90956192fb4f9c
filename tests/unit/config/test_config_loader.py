"""Loading: Traefik-style YAML and TOML files, flags, environment, precedence, search."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from proxynow.config.errors import ConfigError
from proxynow.config.loader import find_config_file, load_dynamic_file, load_static

EXAMPLES = Path(__file__).parent / "examples"


def example(name: str) -> str:
    return str(EXAMPLES / name)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def test_realistic_static_yaml() -> None:
    loaded = load_static([], {}, example("static.yml"))
    config = loaded.config
    assert loaded.file is not None and not loaded.empty
    web, secure = config.entry_points["web"], config.entry_points["websecure"]
    assert web.http.redirections is not None and web.http.redirections.entry_point is not None
    assert web.http.redirections.entry_point.to == "websecure"
    assert secure.as_default is True
    assert secure.http.middlewares == ["secure-headers@file"]
    assert secure.http.tls is not None and secure.http.tls.cert_resolver == "letsencrypt"
    assert secure.http.tls.domains[0].sans == ["*.example.com"]
    assert secure.forwarded_headers.trusted_ips == ["127.0.0.1/32", "10.0.0.0/8"]
    assert secure.proxy_protocol is not None
    timeouts = secure.transport.responding_timeouts
    assert (timeouts.read_timeout, timeouts.write_timeout, timeouts.idle_timeout) == (42, 0, 300)
    assert secure.transport.life_cycle.grace_time_out == 30.0
    assert secure.transport.keep_alive_max_requests == 100
    assert config.providers.providers_throttle_duration == 0.5
    assert config.providers.docker is not None and config.providers.docker.network == "proxy"
    assert config.providers.file is not None
    le = config.certificates_resolvers["letsencrypt"].acme
    assert le is not None and le.http_challenge is not None
    assert (le.key_type, le.http_challenge.entry_point) == ("EC256", "web")
    dns = config.certificates_resolvers["dns"].acme
    assert dns is not None and dns.dns_challenge is not None
    assert dns.dns_challenge.propagation is not None
    assert dns.dns_challenge.propagation.delay_before_checks == 10.0
    assert config.ping is not None and config.ping.entry_point == "traefik"
    assert config.metrics is not None and config.metrics.prometheus is not None
    assert config.metrics.prometheus.buckets == [0.1, 0.5, 1.0]
    assert (config.log.level, config.log.format) == ("INFO", "json")
    assert config.access_log is not None and config.access_log.filters is not None
    assert config.access_log.filters.min_duration == 0.01
    assert config.servers_transport.max_idle_conns_per_host == 50
    assert config.workers == 3


def test_realistic_static_toml() -> None:
    config = load_static([], {}, example("static.toml")).config
    assert config.entry_points["web"].address == ":80"
    acme = config.certificates_resolvers["myresolver"].acme
    assert acme is not None and acme.tls_challenge is not None
    assert config.providers.docker is not None
    assert config.providers.docker.exposed_by_default is False
    assert config.log.level == "DEBUG"


def test_realistic_dynamic_yaml() -> None:
    config = load_dynamic_file(example("dynamic.yml"))
    blog = config.http.routers["blog"]
    assert (blog.service, blog.priority, blog.entry_points) == ("blog", 10, ["websecure"])
    assert blog.tls is not None and blog.tls.domains[0].main == "example.com"
    balancer = config.http.services["blog"].load_balancer
    assert balancer is not None
    assert [s.weight for s in balancer.servers] == [3, 1]
    assert balancer.health_check is not None and balancer.health_check.interval == 10.0
    assert balancer.sticky is not None and balancer.sticky.cookie is not None
    assert balancer.sticky.cookie.same_site == "lax"
    assert balancer.servers_transport == "mytransport"
    weighted = config.http.services["canary"].weighted
    assert weighted is not None and [s.weight for s in weighted.services] == [9, 1]
    assert config.http.services["mirrored"].mirroring is not None
    assert config.http.services["ha"].failover is not None
    assert config.http.middlewares["auth"].kind == "basicAuth"
    assert config.http.middlewares["limit"].options.period == 60.0  # type: ignore[union-attr]
    transport = config.http.servers_transports["mytransport"]
    assert transport.root_cas == ["/certs/ca.pem"]
    assert transport.forwarding_timeouts.dial_timeout == 5.0
    assert transport.forwarding_timeouts.idle_conn_timeout == 90.0
    db = config.tcp.routers["db"]
    assert db.tls is not None and db.tls.passthrough is True
    tcp_balancer = config.tcp.services["db"].load_balancer
    assert tcp_balancer is not None and tcp_balancer.servers[0].address == "10.0.0.5:5432"
    assert config.tcp.middlewares["only-lan"].kind == "ipAllowList"
    assert config.tls.certificates[0].key_file == "/certs/example.key"
    assert config.tls.options["default"].sni_strict is True
    client_auth = config.tls.options["modern"].client_auth
    assert client_auth is not None
    assert client_auth.client_auth_type == "RequireAndVerifyClientCert"
    store = config.tls.stores["default"]
    assert store.default_certificate is not None


def test_realistic_dynamic_toml() -> None:
    config = load_dynamic_file(example("dynamic.toml"))
    router = config.http.routers["my-router"]
    assert router.tls is not None and router.tls.cert_resolver == "myresolver"
    balancer = config.http.services["my-service"].load_balancer
    assert balancer is not None and balancer.pass_host_header is False
    assert [(s.url, s.weight) for s in balancer.servers] == [
        ("http://127.0.0.1:8080", 1),
        ("http://127.0.0.1:8081", 2),
    ]
    errors = config.http.middlewares["errors-page"].options
    assert errors.status_rewrites == {"418": 500}  # type: ignore[union-attr]


def test_flags_in_traefik_form() -> None:
    config = load_static(
        [
            "--entryPoints.web.address=:80",
            "--entrypoints.websecure.address",
            ":443",
            "--providers.docker",
            "--providers.docker.exposedByDefault=false",
            "--certificatesResolvers.le.acme.email=x@example.com",
            "--certificatesresolvers.le.acme.httpchallenge.entrypoint=web",
            "--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.1, 10.0.0.2",
            "--entryPoints.websecure.http.tls.domains[0].main=example.com",
            "--entryPoints.websecure.http.tls.domains[0].sans=a.example.com,b.example.com",
            "--api.insecure",
            "--ping",
        ],
        {},
        search_dirs=[],
    ).config
    assert config.entry_points["websecure"].address == ":443"
    assert config.providers.docker is not None
    assert config.providers.docker.exposed_by_default is False
    acme = config.certificates_resolvers["le"].acme
    assert acme is not None and acme.email == "x@example.com"
    assert acme.http_challenge is not None and acme.http_challenge.entry_point == "web"
    assert config.entry_points["web"].forwarded_headers.trusted_ips == ["10.0.0.1", "10.0.0.2"]
    tls = config.entry_points["websecure"].http.tls
    assert tls is not None and tls.domains[0].sans == ["a.example.com", "b.example.com"]
    assert config.api is not None and config.api.insecure is True
    assert config.ping is not None


def test_environment_in_traefik_form() -> None:
    config = load_static(
        [],
        {
            "PROXYNOW_ENTRYPOINTS_WEB_ADDRESS": ":80",
            "PROXYNOW_PROVIDERS_DOCKER": "true",
            "PROXYNOW_PROVIDERS_DOCKER_EXPOSEDBYDEFAULT": "false",
            "PROXYNOW_LOG_LEVEL": "debug",
            "PROXYNOW_CERTIFICATESRESOLVERS_LE_ACME_EMAIL": "x@example.com",
            "PROXYNOW_SOMETHING_ELSE": "ignored",
            "UNRELATED": "1",
        },
        search_dirs=[],
    ).config
    assert config.entry_points["web"].address == ":80"
    assert config.providers.docker is not None
    assert config.providers.docker.exposed_by_default is False
    assert config.log.level == "DEBUG"
    assert config.certificates_resolvers["le"].acme is not None


def test_precedence_flags_over_environment_over_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "proxynow.yml",
        """
        entryPoints:
          web: {address: ":80"}
          admin: {address: ":9000"}
        log: {level: ERROR, format: json}
        providers:
          docker: {network: from-file}
        """,
    )
    config = load_static(
        ["--entryPoints.web.address=:8080", "--providers.docker=false"],
        {"PROXYNOW_ENTRYPOINTS_WEB_ADDRESS": ":7070", "PROXYNOW_LOG_LEVEL": "INFO"},
        path,
    ).config
    assert config.entry_points["web"].address == ":8080"  # flag beats env and file
    assert config.entry_points["admin"].address == ":9000"  # file only
    assert (config.log.level, config.log.format) == ("INFO", "json")  # env beats file
    assert config.providers.docker is None  # --providers.docker=false disables


def test_nothing_configured_is_reported_empty() -> None:
    loaded = load_static([], {}, search_dirs=[])
    assert loaded.empty and loaded.file is None
    assert loaded.config.entry_points == {}


def test_search_places_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "etc", tmp_path / "home"
    first.mkdir()
    second.mkdir()
    (second / "proxynow.toml").write_text('[entryPoints.web]\naddress = ":1"\n')
    assert find_config_file([str(first), str(second)]) == str(second / "proxynow.toml")
    (first / "proxynow.yaml").write_text("entryPoints: {web: {address: ':2'}}\n")
    found = find_config_file([str(first), str(second)])
    assert found == str(first / "proxynow.yaml")
    loaded = load_static([], {}, search_dirs=[str(first), str(second)])
    assert loaded.file == found and loaded.config.entry_points["web"].port == 2


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_static([], {}, str(tmp_path / "nope.yml"))
