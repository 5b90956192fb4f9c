"""Configuration files for the benchmark's servers.

The backend is nginx serving fixed bodies. Traefik and proxynow read the SAME static and dynamic
YAML files (proxynow reads Traefik's schema; Traefik ignores the `workers` key, proxynow uses it).
nginx-as-proxy gets the equivalent nginx.conf, with upstream keep-alive. Everything is written
under one run directory; the dynamic file is replaced atomically so that a watching proxy never
reads half a file.
"""

from __future__ import annotations

import datetime
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from proxynow.certs import self_signed

SMALL_BODY = b"Hello, World!"  # 13 bytes
# Common English words, for a text body that compresses as prose does (about 3.2x with
# gzip), not as one repeated line would (100x).
_WORD_TEXT = (
    "the of and to in is was that for on with as by at from this it an be are or his which "
    "has had not have their were but its been one also who they after all her first new two "
    "other more can than into some when time would only most years may over these there out "
    "about city during between under such where many later so world made both school state"
)
_WORDS = _WORD_TEXT.split()


def text_body(size: int) -> bytes:
    """`size` bytes of words, the same on every run."""
    pick = random.Random(7).choice
    text = " ".join(pick(_WORDS) for _ in range(size // 3)).encode()
    return text[:size]


BODIES: dict[str, bytes] = {
    "/": SMALL_BODY,
    "/16k": b"a" * 16 * 1024,
    "/1m": b"b" * 1024 * 1024,
    "/text16k": text_body(16 * 1024),
}
TEXT_PATHS = ("/text16k",)  # served as text/plain (the others as application/octet-stream)
CHAIN_PREFIX = "/p"  # the chain-of-five scenario's stripPrefix
UPLOAD_PATH = "/upload"  # accepts a POST body and answers SMALL_BODY
UPLOAD_SIZE = 64 * 1024
ROUTER_HOST = "h{:04d}.bench"  # Host of the i-th host-keyed router


@dataclass(frozen=True)
class Setup:
    """What the proxy is configured with for a scenario.

    routers == 0 means one catch-all router (PathPrefix(`/`)); otherwise that many routers,
    each keyed on its own Host, all to the same backend service.
    """

    workers: int = 1
    routers: int = 0
    tls: bool = False  # HTTPS: every router with `tls: {}`, the harness's certificate as default
    h2: bool = False  # nginx listens with `http2` (Traefik and proxynow speak it anyway)
    metrics: bool = (
        False  # Prometheus metrics with every label set (entrypoints, routers, services)
    )
    access_log: bool = False  # the access log in JSON, to a file in the scenario's directory
    # "" (none), "chain5" (headers, stripPrefix, rateLimit, compress, ipAllowList on every
    # router, none with anything to do but strip) or "compress" (compress on every router)
    middlewares: str = ""


TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate (bench.test, 127.0.0.1) in `directory`; the
    same one for every proxy of a scenario."""
    cert_path, key_path = directory / TLS_CERT, directory / TLS_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(
        "bench.test",
        ["bench.test", "127.0.0.1"],
        valid_for=datetime.timedelta(days=30),
        backdate=datetime.timedelta(days=1),
    )
    key_path.write_bytes(key)
    cert_path.write_bytes(cert)
    return cert_path, key_path


def router_hosts(routers: int) -> list[str]:
    return [ROUTER_HOST.format(i) for i in range(routers)]


# --- backend -----------------------------------------------------------------------------


def write_backend(directory: Path, port: int, workers: int = 2) -> Path:
    """nginx serving 13 B at /, 16 KiB at /16k, 1 MiB at /1m and accepting POSTs at /upload."""
    www = directory / "www"
    www.mkdir(parents=True, exist_ok=True)
    for path, body in BODIES.items():
        if path != "/":
            (www / path.lstrip("/")).write_bytes(body)
    small = SMALL_BODY.decode()
    text_locations = "\n".join(
        f"        location = {path} {{ default_type text/plain; sendfile on; }}"
        for path in TEXT_PATHS
    )
    server = f"""
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        location = / {{ return 200 "{small}"; }}
        location = {UPLOAD_PATH} {{
            client_max_body_size 4m;
            client_body_buffer_size 128k;
            return 200 "{small}";
        }}
        # sendfile: the files go to the socket without a copy through nginx's buffers,
        # which halved the backend's CPU per 1 MiB body on the load core (wrk's core).
        location / {{ sendfile on; }}
{text_locations}
    }}"""
    return write_nginx(directory, "backend", workers, server, upstream="")


# --- nginx as the proxy ------------------------------------------------------------------


def write_nginx_proxy(directory: Path, port: int, backend_port: int, setup: Setup) -> Path:
    """nginx proxying to the backend with upstream keep-alive; host-keyed like the routers."""
    upstream = f"""
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 256;
    }}"""
    # Stream bodies both ways like Traefik does, instead of spooling them to temp files.
    proxy = """
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_max_temp_file_size 0;
            client_max_body_size 4m;"""
    ssl, tls_lines = "", ""
    if setup.tls:
        cert, key = write_certificate(directory)
        ssl = " ssl"
        tls_lines = f"""
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;"""
    if setup.h2:
        ssl += " http2"  # nginx 1.22: h2 by ALPN with ssl, prior-knowledge h2c without
    tls_lines += _NGINX_MIDDLEWARES.get(setup.middlewares, "")
    if setup.routers == 0:
        servers = f"""{tls_lines}
    server {{
        listen 127.0.0.1:{port}{ssl} default_server backlog=4096;
        location / {{{proxy}
        }}
        location {CHAIN_PREFIX}/ {{{proxy.replace("backend;", "backend/;")}
            proxy_set_header X-Bench 1;
            allow 127.0.0.1;
            deny all;
        }}
    }}"""
    else:
        names = " ".join(router_hosts(setup.routers))
        servers = f"""{tls_lines}
    server {{
        listen 127.0.0.1:{port}{ssl} default_server backlog=4096;
        return 404;
    }}
    server {{
        listen 127.0.0.1:{port}{ssl};
        server_name {names};
        location / {{{proxy}
        }}
    }}"""
    return write_nginx(directory, "nginx-proxy", setup.workers, servers, upstream)


# nginx's nearest to MIDDLEWARE_SETS (no rate limit: nginx's limit_req has no equivalent
# of a limit that is never reached without counting); gzip at nginx's default level, 1.
_NGINX_GZIP = """
    gzip on;
    gzip_types text/plain;
    gzip_min_length 1024;"""
_NGINX_MIDDLEWARES = {"chain5": _NGINX_GZIP, "compress": _NGINX_GZIP}


def write_nginx(directory: Path, name: str, workers: int, servers: str, upstream: str) -> Path:
    """A foreground nginx (master + workers) whose files all live under `directory`."""
    prefix = directory / name
    prefix.mkdir(parents=True, exist_ok=True)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = f"""daemon off;
master_process on;
worker_processes {workers};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
worker_rlimit_nofile 16384;
events {{
    worker_connections 8192;
    multi_accept on;
}}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server_names_hash_max_size 8192;
    server_names_hash_bucket_size 64;
{temp}
{upstream}
{servers}
}}
"""
    path = prefix / "nginx.conf"
    path.write_text(conf)
    return path


# --- Traefik and proxynow ----------------------------------------------------------------


def static_config(port: int, dynamic_path: Path, workers: int) -> dict[str, Any]:
    """Traefik's static schema; `workers` is proxynow's only addition (Traefik ignores it)."""
    return {
        # Both options default to phoning home; this machine has no route out and must not try.
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}},
        "providers": {"file": {"filename": str(dynamic_path), "watch": True}},
        "log": {"level": "ERROR"},
        "workers": workers,
    }


def dynamic_config(
    backend_port: int,
    setup: Setup,
    extra_routers: tuple[str, ...] = (),
    certificate: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """Routers and the one backend service; `extra_routers` are churn routers (name = host)."""
    routers: dict[str, Any] = {}
    if setup.routers == 0:
        routers["bench"] = _router("PathPrefix(`/`)")
    for i, host in enumerate(router_hosts(setup.routers)):
        routers[f"r{i:04d}"] = _router(f"Host(`{host}`)")
    for host in extra_routers:
        routers[host.replace(".", "-")] = _router(f"Host(`{host}`)")
    server = {"url": f"http://127.0.0.1:{backend_port}"}
    service = {"loadBalancer": {"servers": [server]}}
    config: dict[str, Any] = {"http": {"routers": routers, "services": {"backend": service}}}
    if setup.middlewares:
        config["http"]["middlewares"] = MIDDLEWARE_SETS[setup.middlewares]
        for router in routers.values():
            router["middlewares"] = list(MIDDLEWARE_SETS[setup.middlewares])
    if setup.tls and certificate is not None:
        for router in routers.values():
            router["tls"] = {}
        cert, key = certificate
        default = {"certFile": str(cert), "keyFile": str(key)}
        config["tls"] = {"stores": {"default": {"defaultCertificate": default}}}
    return config


# What the middleware scenarios put on every router, the same file for Traefik and proxynow.
# chain5 is the chain with nothing to do: a high rate limit, an allow list that
# allows, compress on a 13 B body it skips; only stripPrefix changes the request.
MIDDLEWARE_SETS: dict[str, dict[str, Any]] = {
    "chain5": {
        "hdr": {"headers": {"customRequestHeaders": {"X-Bench": "1"}}},
        "strip": {"stripPrefix": {"prefixes": [CHAIN_PREFIX]}},
        "rate": {"rateLimit": {"average": 100_000_000, "burst": 100_000_000}},
        "gzip": {"compress": {}},
        "allow": {"ipAllowList": {"sourceRange": ["127.0.0.1/32"]}},
    },
    "compress": {"gzip": {"compress": {}}},
}


def _router(rule: str) -> dict[str, Any]:
    return {"rule": rule, "service": "backend", "entryPoints": ["web"]}


def write_yaml_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temp file in the same directory, fsync, then rename over `path`."""
    text = yaml.safe_dump(data, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class TraefikFiles:
    static: Path
    dynamic: Path


def write_traefik_files(
    directory: Path, port: int, backend_port: int, setup: Setup
) -> TraefikFiles:
    """The static and dynamic YAML shared by Traefik and proxynow for one scenario."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TraefikFiles(directory / "static.yml", directory / "dynamic.yml")
    certificate = write_certificate(directory) if setup.tls else None
    write_yaml_atomic(files.dynamic, dynamic_config(backend_port, setup, (), certificate))
    static = static_config(port, files.dynamic, setup.workers)
    static.update(observability(directory, setup))
    write_yaml_atomic(files.static, static)
    return files


def observability(directory: Path, setup: Setup) -> dict[str, Any]:
    """The static options that turn on what the observed scenarios measure, the same for
    Traefik and proxynow (Traefik's names)."""
    options: dict[str, Any] = {}
    if setup.metrics:
        labels = {"addEntryPointsLabels": True, "addRoutersLabels": True}
        options["metrics"] = {"prometheus": {**labels, "addServicesLabels": True}}
    if setup.access_log:
        options["accessLog"] = {"filePath": str(directory / "access.log"), "format": "json"}
    return options
