"""Differential test: the same 100+ routers and 500+ raw requests on real Traefik 3.7 and on
proxynow must pick the same router (or both answer 404 / the same status).

Traefik runs from .venv/bin/traefik with the file provider on 127.0.0.1:0 and [::1]:0 (its
ports are read from /proc); every router's service is a backend that names itself in an
``X-Router`` header. Client addresses vary by binding the client socket in 127.0.0.0/8 and
on ::1. Where two matching routers have the same priority Traefik's order is unspecified
(Go map iteration), so either answer is accepted there; docs/rules.md explains the rest.

The proxynow side is ``proxynow run`` with the same routers (``proxynow_server``); the
in-process ``RouteTable`` fed the same raw requests is compared too, so that a routing
difference and a server difference show up as different failures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.differential.diff_requests import HAND_PICKED, all_requests
from tests.e2e.differential.traefik_harness import (
    ENTRYPOINTS,
    NOT_FOUND,
    InProcessProxynow,
    RawRequest,
    dynamic_config,
    load_routers,
    send,
    start_backends,
    start_traefik,
    write_traefik_config,
)
from tests.support.proc import start_proxynow

Answer = Callable[[RawRequest], str]


@pytest.fixture(scope="module")
def backend_ports() -> Iterator[dict[str, int]]:
    backends, ports = start_backends(list(load_routers()))
    try:
        yield ports
    finally:
        backends.stop()


@pytest.fixture(scope="module")
def traefik(
    tmp_path_factory: pytest.TempPathFactory, backend_ports: dict[str, int]
) -> Iterator[Answer]:
    static = write_traefik_config(tmp_path_factory.mktemp("traefik"), backend_ports)
    process, v4, v6 = start_traefik(static)
    try:
        yield lambda request: send(request, v4, v6)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def proxynow_server(
    tmp_path_factory: pytest.TempPathFactory, backend_ports: dict[str, int]
) -> Iterator[Answer]:
    directory = tmp_path_factory.mktemp("proxynow")
    proxy = start_proxynow(
        directory, {"entryPoints": ENTRYPOINTS}, dynamic_config(backend_ports), workers=1
    )
    try:
        v4, v6 = proxy.ports["web"], proxy.ports["web6"]
        yield lambda request: send(request, v4, v6)
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def proxynow_in_process() -> Answer:
    return InProcessProxynow().answer


def _acceptable(request: RawRequest, oracle: InProcessProxynow) -> set[str]:
    """Router names that Traefik may legitimately pick: all top-priority matches."""
    matches = list(oracle.top_matches(request))
    if len(matches) < 2 or matches[0].priority != matches[1].priority:
        return set()
    return {m.name for m in matches if m.priority == matches[0].priority}


def test_configuration_is_large_enough() -> None:
    assert len(load_routers()) >= 100
    assert len(all_requests()) >= 500
    assert len(HAND_PICKED) >= 150


def _compare(traefik: Answer, proxynow: Answer) -> dict[str, int]:
    oracle = InProcessProxynow()
    mismatches = []
    answers: dict[str, int] = {}
    for request in all_requests():
        expected, got = traefik(request), proxynow(request)
        answers[expected] = answers.get(expected, 0) + 1
        if expected != got and not {expected, got} <= _acceptable(request, oracle):
            mismatches.append(f"{request}: traefik={expected} proxynow={got}")
    assert mismatches == []
    return answers


def test_same_router_as_traefik(traefik: Answer, proxynow_server: Answer) -> None:
    answers = _compare(traefik, proxynow_server)
    # The requests must exercise routing, not only 404s: most routers are hit.
    assert answers.get(NOT_FOUND, 0) < len(all_requests()) // 3
    assert len(answers) > len(load_routers()) * 3 // 4


def test_route_table_decides_like_traefik(traefik: Answer, proxynow_in_process: Answer) -> None:
    _compare(traefik, proxynow_in_process)


def test_harness_sees_a_missing_router(traefik: Answer) -> None:
    # The comparison can fail: a request no router takes is a 404 on Traefik.
    assert traefik(RawRequest("/nothing-here", host="no-router.invalid")) == NOT_FOUND
