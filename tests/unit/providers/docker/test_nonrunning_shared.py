"""Stopped containers kept by `docker.allownonrunning`, and `network_mode: container:X`.

Two layers: the pure builder (a stopped container's router with a server-less service;
the address of a container that shares another's network namespace), and the provider's
cache driven by events through a fake Docker client (no daemon): a stop event keeps a
labelled container, an event on a network owner rebuilds the containers that share it.
The end-to-end tests against a real engine are in tests/e2e/docker/test_e2e.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import docker.errors
import pytest

from proxynow.config.static import DockerProvider as DockerProviderConfig
from proxynow.providers.docker.build import (
    BuildOptions,
    Container,
    allows_nonrunning,
    build_update,
    merge,
    network_owner_ref,
)
from proxynow.providers.docker.provider import DockerProvider, listed_containers

P = "proxynow."
ROUTED = {P + "http.routers.r.rule": "Host(`a`)"}
APP = Container("id-app", "app", ROUTED, networks={"bridge": "10.0.0.2"}, ports=(80,))
VPN = Container("id-vpn", "vpn", {}, networks={"front": "10.0.1.5", "back": "10.0.2.5"})
SIDECAR = Container(
    "id-side", "side", {**ROUTED, P + "http.services.s.loadbalancer.server.port": "8080"},
    network_mode="container:id-vpn",
)  # fmt: skip


def _dump(*containers: Container, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    update = build_update(containers, BuildOptions(**options))
    dumped = update.config.model_dump(by_alias=True, exclude_defaults=True)
    return dumped.get("http", {}), dict(update.object_errors)


def _server_urls(http: dict[str, Any], service: str = "s") -> list[str]:
    servers = http["services"][service]["loadBalancer"].get("servers", [])
    return [server["url"] for server in servers]


# ---------------------------------------------------------------- allownonrunning


@pytest.mark.parametrize(
    ("labels", "prefixes", "expected"),
    [
        ({P + "docker.allownonrunning": "true"}, ("proxynow",), True),
        ({"PROXYNOW.Docker.AllowNonRunning": "1"}, ("proxynow",), True),
        ({P + "docker.allownonrunning": "false"}, ("proxynow",), False),
        ({P + "docker.allownonrunning": "yes"}, ("proxynow",), False),  # not a Go bool
        ({"traefik.docker.allownonrunning": "true"}, ("proxynow",), False),
        ({"traefik.docker.allownonrunning": "true"}, ("proxynow", "traefik"), True),
        ({}, ("proxynow",), False),
    ],
)
def test_allows_nonrunning(
    labels: dict[str, str], prefixes: tuple[str, ...], expected: bool
) -> None:
    assert allows_nonrunning(labels, prefixes) is expected


@pytest.mark.parametrize("state", ["exited", "created", "paused", "dead"])
def test_stopped_container_with_the_label_keeps_a_serverless_service(state: str) -> None:
    labels = {**ROUTED, P + "docker.allownonrunning": "true"}
    http, errors = _dump(replace(APP, labels=labels, state=state))
    assert http["routers"]["r"] == {"rule": "Host(`a`)", "service": "app"}
    assert http["services"]["app"] == {"loadBalancer": {}}  # no server: 503, not 404
    assert errors == {}


def test_stopped_container_without_the_label_is_gone() -> None:
    assert _dump(replace(APP, state="exited")) == ({}, {})


# ---------------------------------------------------------------- network_mode container:X


def test_network_owner_ref() -> None:
    assert network_owner_ref(SIDECAR) == "id-vpn"
    assert network_owner_ref(replace(SIDECAR, network_mode="container:vpn")) == "vpn"
    assert network_owner_ref(APP) == ""
    assert network_owner_ref(replace(APP, network_mode="host")) == ""


def test_shared_namespace_takes_the_owners_address() -> None:
    http, errors = _dump(replace(SIDECAR, network_owner=VPN))
    assert _server_urls(http) == ["http://10.0.2.5:8080"]  # the first of VPN's by name
    assert errors == {}


def test_owners_network_label_wins_over_the_dependents() -> None:
    owner = replace(VPN, labels={P + "docker.network": "front"})
    dependent = replace(SIDECAR, labels={**SIDECAR.labels, P + "docker.network": "back"})
    http, _ = _dump(replace(dependent, network_owner=owner))
    assert _server_urls(http) == ["http://10.0.1.5:8080"]


def test_dependents_network_label_applies_to_the_owner() -> None:
    dependent = replace(SIDECAR, labels={**SIDECAR.labels, P + "docker.network": "front"})
    http, _ = _dump(replace(dependent, network_owner=VPN))
    assert _server_urls(http) == ["http://10.0.1.5:8080"]
    http, _ = _dump(replace(SIDECAR, network_owner=VPN), network="front")
    assert _server_urls(http) == ["http://10.0.1.5:8080"]


def test_owner_on_the_host_network() -> None:
    http, _ = _dump(replace(SIDECAR, network_owner=replace(VPN, network_mode="host")))
    assert _server_urls(http) == ["http://127.0.0.1:8080"]


def test_owner_sharing_another_namespace_is_followed() -> None:
    middle = Container("id-mid", "mid", {}, network_mode="container:id-vpn", network_owner=VPN)
    http, _ = _dump(replace(SIDECAR, network_mode="container:id-mid", network_owner=middle))
    assert _server_urls(http) == ["http://10.0.2.5:8080"]


def test_missing_owner_is_an_error_on_the_service() -> None:
    http, errors = _dump(SIDECAR)
    assert "servers" not in http["services"]["s"]["loadBalancer"]
    assert errors["http.services.s"] == (
        "container 'side' shares the network of container 'id-vpn', which was not found",
    )


def test_owner_without_address_is_an_error_on_the_service() -> None:
    _, errors = _dump(replace(SIDECAR, network_owner=replace(VPN, networks={})))
    assert errors["http.services.s"] == ("container 'vpn' has no IP address on any network",)


# ---------------------------------------------------------------- provider cache and events


def _inspect_data(container: Container, running: bool = True) -> dict[str, Any]:
    return {
        "Id": container.id,
        "Name": "/" + container.name,
        "State": {"Status": "running" if running else "exited"},
        "Config": {"Labels": dict(container.labels), "ExposedPorts": {}},
        "HostConfig": {"NetworkMode": container.network_mode or "bridge"},
        "NetworkSettings": {
            "Networks": {name: {"IPAddress": ip if running else ""}
                         for name, ip in container.networks.items()},
        },
    }  # fmt: skip


class FakeAPI:
    """`inspect_container` answers from a table (keys: ids and names), counting calls."""

    def __init__(self, table: dict[str, dict[str, Any]]) -> None:
        self.table = table
        self.inspected: list[str] = []

    def inspect_container(self, identifier: str) -> dict[str, Any]:
        self.inspected.append(identifier)
        if identifier not in self.table:
            raise docker.errors.NotFound(identifier)
        return self.table[identifier]


class FakeClient:
    def __init__(self, table: dict[str, dict[str, Any]]) -> None:
        self.api = FakeAPI(table)


def _event(identifier: str, action: str) -> dict[str, Any]:
    return {"Type": "container", "Action": action, "Actor": {"ID": identifier}}


def _urls(provider: DockerProvider, service: str = "s") -> list[str]:
    http, _ = _provider_http(provider)
    return _server_urls(http, service)


def _provider_http(provider: DockerProvider) -> tuple[dict[str, Any], dict[str, Any]]:
    update = merge(provider._kept())
    dumped = update.config.model_dump(by_alias=True, exclude_defaults=True)
    return dumped.get("http", {}), dict(update.object_errors)


def test_listing_keeps_only_running_or_labelled_entries() -> None:
    label = {P + "docker.allownonrunning": "true"}
    entries = [
        {"Id": "running", "State": "running", "Labels": {}},
        {"Id": "kept", "State": "exited", "Labels": label},
        {"Id": "exited", "State": "exited", "Labels": {}},
        {"Id": "created", "State": "created", "Labels": None},
    ]
    listed = listed_containers(entries, ("proxynow",))
    assert [container.id for container in listed] == ["running", "kept"]


async def test_owner_by_name_is_inspected_once_and_cached() -> None:
    dependent = replace(SIDECAR, network_mode="container:vpn")
    client: Any = FakeClient({"vpn": _inspect_data(VPN)})
    provider = DockerProvider(DockerProviderConfig())
    await provider._resync(client, [dependent])
    assert _urls(provider) == ["http://10.0.2.5:8080"]
    assert client.api.inspected == ["vpn"]


async def test_event_on_the_owner_rebuilds_its_dependents() -> None:
    client: Any = FakeClient({})
    provider = DockerProvider(DockerProviderConfig())
    await provider._resync(client, [VPN, SIDECAR])
    assert _urls(provider) == ["http://10.0.2.5:8080"]
    assert client.api.inspected == []  # the owner was in the listing
    moved = replace(VPN, networks={"back": "10.0.2.9"})
    client.api.table[VPN.id] = _inspect_data(moved)
    await provider._apply(client, [_event(VPN.id, "start")])
    assert _urls(provider) == ["http://10.0.2.9:8080"]
    assert client.api.inspected == [VPN.id]  # not the dependent: it did not change
    await provider._apply(client, [_event(VPN.id, "die")])
    _, errors = _provider_http(provider)
    assert "which was not found" in errors["http.services.s"][0]


async def test_stop_event_keeps_a_labelled_container() -> None:
    labelled = replace(APP, labels={**ROUTED, P + "docker.allownonrunning": "true"})
    client: Any = FakeClient({APP.id: _inspect_data(labelled, running=False)})
    provider = DockerProvider(DockerProviderConfig())
    await provider._resync(client, [labelled, replace(APP, id="id-other", name="other")])
    events: list[dict[str, Any] | BaseException] = [
        _event(APP.id, "die"),
        _event("id-other", "die"),
    ]
    await provider._apply(client, events)
    http, _ = _provider_http(provider)
    assert http["routers"] == {"r": {"rule": "Host(`a`)", "service": "app"}}
    assert http["services"] == {"app": {"loadBalancer": {}}}  # 503 while it is stopped
    assert client.api.inspected == [APP.id]  # the unlabelled one is dropped unasked
    await provider._apply(client, [_event(APP.id, "destroy")])
    assert _provider_http(provider) == ({}, {})
