"""End to end: a Docker-labelled container gets a Pebble certificate through `proxynow run`.

A real container carries the router labels (rule, `websecure` entrypoint, certresolver);
proxynow runs with `providers.docker` (constrained to this session's containers) and an
ACME resolver pointed at a real Pebble answering HTTP-01 on `web`. The client connects
to 127.0.0.1 with SNI `app.docker.test` and trusts only Pebble's issuing root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.acme.test_run_pebble import trusted_get
from tests.e2e.docker.conftest import (
    Engine,
    Resources,
    backend_image,
    docker_engine,
    docker_resources,
)
from tests.support.pebble import Pebble, PebbleFactory
from tests.support.proc import ProxynowProcess, poll, proxynow_factory

# The fixtures, imported for pytest: tests/e2e/docker/conftest.py is not in scope here.
__all__ = ["backend_image", "docker_engine", "docker_resources", "proxynow_factory"]

HOST = "app.docker.test"
RESOLVER = "pebble"
TIMEOUT = 30.0
BACKEND_BODY = b"hello from busybox\n"  # the image's /www/index.html


def _static(engine: Engine, pebble: Pebble, tmp_path: Path, web: int, websecure: int) -> Any:
    acme = {
        "email": "admin@example.com",
        "storage": str(tmp_path / "acme.json"),
        "caServer": pebble.directory_url,
        "caCertificates": [str(pebble.ca_file)],
        "keyType": "EC256",
        "httpChallenge": {"entryPoint": "web"},
    }
    return {
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{web}"},
            "websecure": {"address": f"127.0.0.1:{websecure}"},
        },
        "certificatesResolvers": {RESOLVER: {"acme": acme}},
        "providers": {
            "providersThrottleDuration": "10ms",
            "docker": {"constraints": f"Label(`proxynow.test`,`{engine.prefix}`)"},
        },
        "log": {"level": "INFO"},
    }


def test_labelled_container_is_served_with_a_pebble_certificate(
    docker_engine: Engine,
    docker_resources: Resources,
    pebble_factory: PebbleFactory,
    proxynow_factory: Callable[..., ProxynowProcess],
    tmp_path: Path,
) -> None:
    pebble, web, websecure = pebble_factory.start_for_proxy()
    proxy = proxynow_factory(_static(docker_engine, pebble, tmp_path, web, websecure))
    docker_resources.run(
        {
            "proxynow.http.routers.web.rule": f"Host(`{HOST}`)",
            "proxynow.http.routers.web.entrypoints": "websecure",
            "proxynow.http.routers.web.tls.certresolver": RESOLVER,
        }
    )
    root = pebble.root_pem()

    def served() -> tuple[int, bytes] | None:
        response = trusted_get(websecure, HOST, root)
        return response if response is not None and response[0] == 200 else None

    status, body = poll(served, TIMEOUT, "an HTTPS response from the container, Pebble-signed")
    assert (status, body) == (200, BACKEND_BODY)
    assert proxy.stderr().count(f"ordering a certificate for {HOST}") == 1
