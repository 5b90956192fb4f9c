"""Docker API data → `Container`, and the provider's reaction to a bad configuration.

The listing and inspect payloads below are trimmed from what Docker 20.10 (API 1.41)
returns; the end-to-end tests exercise the real thing.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxynow.config.static import DockerProvider as DockerProviderConfig
from proxynow.providers.base import ProviderUpdate
from proxynow.providers.docker.provider import (
    DockerProvider,
    from_inspect,
    from_listing,
    listed_containers,
)

LISTING = {
    "Id": "abc123def4567890",
    "Names": ["/shop_web_1"],
    "Labels": {"proxynow.http.routers.web.rule": "Host(`a`)"},
    "State": "running",
    "Status": "Up 3 seconds (health: starting)",
    "Ports": [
        {"PrivatePort": 8080, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8000, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8000, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
    ],
    "HostConfig": {"NetworkMode": "shop_default"},
    "NetworkSettings": {
        "Networks": {"shop_default": {"IPAddress": "172.20.0.3"}, "other": {"IPAddress": ""}}
    },
}

INSPECT = {
    "Id": "abc123def4567890",
    "Name": "/shop_web_1",
    "State": {"Status": "running", "Paused": False, "Health": {"Status": "unhealthy"}},
    "Config": {"Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
    "HostConfig": {"NetworkMode": "host"},
    "NetworkSettings": {
        "Networks": {"bridge": {"IPAddress": "172.17.0.2"}},
        "Ports": {"80/tcp": [{"HostIp": "10.1.1.1", "HostPort": "9000"}], "53/udp": None},
    },
}


def test_from_listing() -> None:
    container = from_listing(LISTING)
    assert container.name == "shop_web_1"
    assert container.health == "starting"
    assert container.ports == (80, 8080)
    assert container.bindings == {80: ("127.0.0.1", 8000)}
    assert container.networks == {"shop_default": "172.20.0.3", "other": ""}
    assert container.network_mode == "shop_default"


def test_from_listing_health_states() -> None:
    for status, health in [("Up 1 second (healthy)", "healthy"), ("Up (unhealthy)", "unhealthy"),
                           ("Up 2 hours", "")]:  # fmt: skip
        assert from_listing({**LISTING, "Status": status}).health == health


def test_from_inspect() -> None:
    container = from_inspect(INSPECT)
    assert (container.name, container.state, container.health) == (
        "shop_web_1", "running", "unhealthy")  # fmt: skip
    assert container.ports == (80,)
    assert container.bindings == {80: ("10.1.1.1", 9000)}
    assert container.network_mode == "host"


def test_paused_is_not_running() -> None:
    paused = {**INSPECT, "State": {"Status": "running", "Paused": True}}
    assert from_inspect(paused).state == "paused"


def test_a_listing_entry_that_does_not_parse_costs_only_itself() -> None:
    odd = {**LISTING, "Id": "0dd0dd0dd0dd99", "Ports": [{"Type": "tcp"}]}  # no PrivatePort
    stopped = {**LISTING, "Id": "5709ed", "State": "exited"}
    listed = listed_containers([odd, LISTING, stopped], ("proxynow",))
    assert [container.id for container in listed] == [LISTING["Id"]]


class Sink:
    def __init__(self) -> None:
        self.errors: list[Sequence[str]] = []

    def submit(self, update: ProviderUpdate) -> None:
        raise AssertionError("nothing should be submitted")

    def report_errors(self, provider: str, errors: Sequence[str]) -> None:
        self.errors.append(list(errors))


async def test_bad_constraints_are_a_provider_error() -> None:
    provider = DockerProvider(DockerProviderConfig(constraints="Label(`a`"))
    sink = Sink()
    await provider.run(sink)
    assert len(sink.errors) == 1
    assert "constraints:" in sink.errors[0][0] and "column" in sink.errors[0][0]


async def test_unreachable_endpoint_is_reported_once() -> None:
    import asyncio

    provider = DockerProvider(DockerProviderConfig(endpoint="unix:///nonexistent/docker.sock"))
    sink = Sink()
    task = asyncio.create_task(provider.run(sink))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not sink.errors:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        for _ in range(5):  # more retries happen, no more reports
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
    assert len(sink.errors) == 1 and "cannot reach" in sink.errors[0][0]
