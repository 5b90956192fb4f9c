"""Label corpus: the same containers read by real Traefik 3.7 and by proxynow, compared.

tests/e2e/differential/corpus/labels.yml holds real-world-shaped `traefik.*` label sets. Each
becomes a running busybox container (or several, for `replicas`). Then real Traefik 3.7
(its Docker provider on the engine's socket) and a real `proxynow run` (its Docker
provider with `traefikLabels: true`) start, both constrained to this module's
containers, and their `/api/rawdata` (each on its `traefik` entrypoint, api.insecure)
are compared:

- every router Traefik serves, proxynow serves with the same rule, service,
  entrypoints, middlewares, priority and TLS settings;
- every router proxynow serves, Traefik serves (what Traefik disables or drops,
  proxynow does not serve);
- every service Traefik serves has the same servers (URLs, addresses) in proxynow, and
  the same load-balancer options (passHostHeader, sticky, healthCheck);
- every middleware Traefik serves has the same options in proxynow.

Deliberate differences (docs/providers-docker.md, "Differences from Traefik"), the only
exceptions:
- a router using a middleware type that restricts access and is not applied yet
  (basicAuth, forwardAuth, ipAllowList, rateLimit, inFlightReq, TCP ipAllowList and
  inFlightConn) is disabled by proxynow, fail closed (control/middleware_support.py);
- a label that does not decode (an unknown key or middleware type, a value of the wrong
  type) makes Traefik drop the whole container; proxynow disables only the object it
  belongs to and serves the container's other objects (issue 18). Such label sets say
  `traefik_drops`, and the test checks both halves: Traefik shows none of the
  container's objects, proxynow shows the culprit disabled;
- listing only (what is served is the same): proxynow lists `ipWhiteList` as
  `ipAllowList`, `errors.service` qualified, a UDP router's default entrypoints, some
  defaults Traefik applies without listing them (`LISTED_DEFAULTS`, `tls.options`), and
  no derived name for a sticky cookie without one (the data plane derives Traefik's).

The engine is the one that answers `docker info`, else one started here (a fresh CI
machine), as tests/e2e/docker/conftest.py does. Both rawdata documents are written to the
fixtures' temporary directories to read a failure.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from proxynow.api.dump import redact
from proxynow.edge.balance.sticky import cookie_name
from proxynow.providers.docker.template import normalize
from tests.e2e.differential.traefik_harness import TRAEFIK, Process, _socket_inodes
from tests.support.docker import build_backend_image, docker_answers, ensure_dockerd, stop_dockerd
from tests.support.proc import ProxynowProcess, poll, start_proxynow

CORPUS = Path(__file__).parent / "corpus" / "labels.yml"
LABEL_SETS: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text())
DEADLINE = 60.0
SOCKET = "unix:///var/run/docker.sock"
FAIL_CLOSED = "is not implemented yet"
_API = re.compile(r"API on http://127\.0\.0\.1:(\d+)/api/")
DOMAIN_LABEL = "corpus.domain"
DEFAULT_RULE = 'Host(`{{ normalize .Name }}.{{ index .Labels "corpus.domain" }}`)'
ENTRYPOINTS = {
    "traefik": {"address": "127.0.0.1:0"},
    "web": {"address": "127.0.0.1:0"},
    "websecure": {"address": "127.0.0.1:0"},
    "mqtt": {"address": "127.0.0.1:0"},
    "dns": {"address": "127.0.0.1:0/udp"},
}
RESOLVERS = {
    "le": {
        "acme": {
            "email": "admin@example.com",
            "storage": "acme.json",
            "caServer": "http://127.0.0.1:1/directory",
            "httpChallenge": {"entryPoint": "web"},
        }
    }
}
TABLES = {
    ("http", "routers"): "routers",
    ("http", "services"): "services",
    ("http", "middlewares"): "middlewares",
    ("tcp", "routers"): "tcpRouters",
    ("tcp", "services"): "tcpServices",
    ("tcp", "middlewares"): "tcpMiddlewares",
    ("udp", "routers"): "udpRouters",
    ("udp", "services"): "udpServices",
}


# ---------------------------------------------------------------- containers


@dataclass
class Corpus:
    """The module's containers: their label sets by container name, and the engine."""

    prefix: str
    client: docker.DockerClient
    network: str = ""
    containers: list[str] = field(default_factory=list)  # ids, removed at the end
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)

    def constraint(self) -> str:
        return f"Label(`corpus`,`{self.prefix}`)"


def _labels(label_set: dict[str, Any], corpus: Corpus) -> dict[str, str]:
    labels = {
        key: str(value).replace("{network}", corpus.network)
        for key, value in (label_set.get("labels") or {}).items()
    }
    labels.setdefault(DOMAIN_LABEL, "corpus.localhost")
    labels["corpus"] = corpus.prefix
    return labels


def _in_parallel(work: Callable[[docker.APIClient, str], None], items: list[str]) -> None:
    """`work(api, item)` for every item, 4 threads at a time (the engine is the
    bottleneck), each thread with its own client: a shared one's connection pool
    overflows and leaks sockets."""

    def run(chunk: list[str]) -> None:
        with docker.APIClient(base_url=SOCKET, version="auto") as api:
            for item in chunk:
                work(api, item)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [items[i::4] for i in range(4)]))


def _start(
    corpus: Corpus, api: docker.APIClient, image: str, label_set: dict[str, Any], name: str
) -> None:
    ports = [
        (int(str(port).split("/")[0]), str(port).split("/")[1]) if "/" in str(port) else int(port)
        for port in label_set.get("ports") or []
    ]
    network = corpus.network if label_set.get("network") else "bridge"
    created = api.create_container(
        image,
        name=name,
        labels=_labels(label_set, corpus),
        ports=ports or None,
        host_config=api.create_host_config(network_mode=network),
    )
    corpus.containers.append(created["Id"])
    if label_set.get("network"):
        api.connect_container_to_network(created["Id"], "bridge")
    api.start(created["Id"])


def _remove(api: docker.APIClient, identifier: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(identifier, force=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The engine that answers `docker info`, else one started here and stopped by PID
    (a fresh CI machine), as tests/e2e/docker/conftest.py does. A daemon that is restarting
    (another suite's outage test) is given a few seconds first."""
    with contextlib.suppress(AssertionError):
        poll(docker_answers, 3.0, "the Docker engine")
    daemon = ensure_dockerd(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
    try:
        yield
    finally:
        if daemon is not None:
            stop_dockerd(daemon)


@pytest.fixture(scope="module")
def corpus(engine: None) -> Iterator[Corpus]:
    client = docker.DockerClient(base_url=SOCKET, version="auto")
    prefix = f"pnlabels-{uuid.uuid4().hex[:8]}"
    image = f"{prefix}-backend:latest"
    state = Corpus(prefix, client)
    image_id = network_id = None
    try:
        build_backend_image(image)
        image_id = client.images.get(image).id
        network = client.networks.create(f"{prefix}-net", driver="bridge")
        network_id, state.network = network.id, network.name
        for label_set in LABEL_SETS:
            for replica in range(int(label_set.get("replicas", 1))):
                name = f"{prefix}-{label_set['name']}" + (f"-{replica}" if replica else "")
                state.by_name[name] = label_set
        _in_parallel(
            lambda api, n: _start(state, api, image, state.by_name[n], n), list(state.by_name)
        )
        yield state
    finally:
        # Removed even when the engine was briefly away (it is shared with other suites).
        with contextlib.suppress(AssertionError):
            poll(docker_answers, 30.0, "the Docker engine, to remove the containers")
        labelled = client.api.containers(all=True, filters={"label": f"corpus={prefix}"})
        _in_parallel(
            _remove, list(dict.fromkeys([*state.containers, *(c["Id"] for c in labelled)]))
        )
        if network_id is not None:
            with contextlib.suppress(docker.errors.NotFound):
                client.networks.get(network_id).remove()
        if image_id is not None:
            client.images.remove(image_id, force=True)
        client.close()


# ---------------------------------------------------------------- the two proxies


def _docker_provider(corpus: Corpus) -> dict[str, Any]:
    return {
        "endpoint": SOCKET,
        "exposedByDefault": True,
        "constraints": corpus.constraint(),
        "defaultRule": DEFAULT_RULE,
    }


def _rawdata(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/rawdata", timeout=2) as answer:
            data: dict[str, Any] = json.load(answer)
    except (OSError, ValueError):
        return None
    return data


def _from_docker(raw: dict[str, Any] | None) -> bool:
    return raw is not None and any(
        name.endswith("@docker") for table in TABLES.values() for name in raw.get(table) or {}
    )


def _ports(pid: int) -> list[int]:
    inodes = _socket_inodes(pid)
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            found.append(int(fields[1].rsplit(":", 1)[1], 16))
    return found


@pytest.fixture(scope="module")
def traefik(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Traefik's /api/rawdata once its Docker provider has published the containers."""
    directory = tmp_path_factory.mktemp("traefik")
    static = directory / "traefik.yml"
    static.write_text(
        yaml.safe_dump(
            {
                "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
                "api": {"insecure": True},
                "entryPoints": ENTRYPOINTS,
                "providers": {
                    "providersThrottleDuration": "0s",
                    "docker": _docker_provider(corpus),
                },
                "certificatesResolvers": RESOLVERS,
                "log": {"level": "ERROR"},
            }
        )
    )
    log_path = directory / "traefik.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [str(TRAEFIK), f"--configFile={static}"], cwd=directory, stdout=log, stderr=log
        )
    process = Process(popen)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert popen.poll() is None, log_path.read_text()
            raws = [_rawdata(port) for port in _ports(popen.pid)]
            found = next((raw for raw in raws if _from_docker(raw)), None)
            if found is not None:
                break
            assert time.monotonic() < deadline, "Traefik did not publish the containers in time"
            time.sleep(0.05)  # polling a condition with a deadline
        (directory / "rawdata.json").write_text(json.dumps(found, indent=1))  # to read a failure
        yield found
    finally:
        process.stop()


@pytest.fixture(scope="module")
def proxynow(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """proxynow's /api/rawdata once its Docker provider has published the containers."""
    static = {
        "api": {"insecure": True},
        "entryPoints": ENTRYPOINTS,
        "providers": {
            "providersThrottleDuration": "10ms",
            "docker": {**_docker_provider(corpus), "traefikLabels": True},
        },
        "certificatesResolvers": RESOLVERS,
        "log": {"level": "WARN"},
    }
    # Not `wait`: proxynow does not listen on UDP entrypoints yet (it says so), so the
    # `dns` entrypoint is never announced; the API's line is what matters here.
    process: ProxynowProcess = start_proxynow(
        tmp_path_factory.mktemp("proxynow"), static, workers=1, wait=False
    )
    try:
        port = int(poll(lambda: _API.search(_alive(process)), DEADLINE, "proxynow's API")[1])

        def published() -> dict[str, Any] | None:
            raw = _rawdata(_alive(process) and port)
            return raw if _from_docker(raw) else None

        found: dict[str, Any] = poll(published, DEADLINE, "proxynow to publish the containers")
        (process.directory / "rawdata.json").write_text(json.dumps(found, indent=1))
        yield found
    finally:
        process.stop()


def _alive(process: ProxynowProcess) -> str:
    assert process.process.poll() is None, process.stderr()
    return process.stderr()


# ---------------------------------------------------------------- comparison

ROUTER_TABLES = ("routers", "tcpRouters", "udpRouters")
SERVICE_TABLES = ("services", "tcpServices", "udpServices")
MIDDLEWARE_TABLES = ("middlewares", "tcpMiddlewares")
# What /api/rawdata adds to an object beside its configuration.
RUNTIME_FIELDS = frozenset({"status", "error", "usedBy", "using", "serverStatus", "type"})


def _docker(raw: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in (raw.get(table) or {}).items() if k.endswith("@docker")}


def _serves(item: dict[str, Any] | None) -> bool:
    return item is not None and item.get("status") in ("enabled", "warning")


def _fail_closed(item: dict[str, Any]) -> bool:
    """proxynow disabled it only because a restricting middleware is not applied yet."""
    errors = item.get("error") or []
    return (
        item.get("status") == "disabled"
        and bool(errors)
        and all(FAIL_CLOSED in error for error in errors)
    )


def _qualified(name: str) -> str:
    return name if "@" in name else f"{name}@docker"


def _router_view(item: dict[str, Any], traefik: bool) -> dict[str, Any]:
    """What is compared of a router: its configuration and `using` (the entrypoints it
    is served on). Traefik's, in proxynow's listing: names qualified; `tls.options` =
    `default`, which proxynow lists and Traefik leaves implicit; a TCP router's
    `tls.passthrough: false`, which Traefik lists. A UDP router that names no
    entrypoint is listed by Traefik without `entryPoints` (proxynow: the defaults)."""
    view = {k: v for k, v in item.items() if k not in RUNTIME_FIELDS - {"using"}}
    view["using"] = sorted(view.get("using") or [])
    view["entryPoints"] = sorted(view.get("entryPoints") or view["using"])
    if traefik:
        view["service"] = _qualified(view.get("service", ""))
        if "middlewares" in view:
            view["middlewares"] = [_qualified(m) for m in view["middlewares"]]
        tls = view.get("tls")
        if isinstance(tls, dict):
            if tls.get("passthrough") is False:
                tls = {k: v for k, v in tls.items() if k != "passthrough"}
            if not tls.get("passthrough") and "options" not in tls:
                tls = {**tls, "options": "default"}
            view["tls"] = tls
    return view


# Defaults proxynow lists and Traefik leaves out (applied at run time, same values).
LISTED_DEFAULTS = {
    ("compress", "minResponseBodyBytes"): 1024,
    ("ipAllowList", "rejectStatusCode"): 403,
    ("buffering", "memRequestBodyBytes"): 1048576,
    ("buffering", "memResponseBodyBytes"): 1048576,
    ("forwardAuth", "maxResponseBodySize"): -1,
    ("healthCheck", "method"): "GET",
    ("server", "weight"): 1,
}


def _without_defaults(kind: str, body: Any, theirs: Any) -> Any:
    if not isinstance(body, dict):
        return body
    return {
        k: v
        for k, v in body.items()
        if not (LISTED_DEFAULTS.get((kind, k), ...) == v and k not in (theirs or {}))
    }


def _config_view(item: dict[str, Any], traefik: bool) -> dict[str, Any]:
    """A service's or middleware's configuration. Traefik's: redacted as proxynow
    redacts secrets (docs/api.md), `ipWhiteList` read as `ipAllowList` (as proxynow
    decodes it), `errors.service` qualified."""
    view = {k: v for k, v in item.items() if k not in RUNTIME_FIELDS}
    if not traefik:
        return view
    view = dict(redact(view))
    if "ipWhiteList" in view:
        view["ipAllowList"] = view.pop("ipWhiteList")
    if isinstance(view.get("errors"), dict) and "service" in view["errors"]:
        view["errors"] = {**view["errors"], "service": _qualified(view["errors"]["service"])}
    return view


def _ours_as_listed(name: str, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """proxynow's view with the explicit defaults Traefik does not list taken out, and
    a sticky cookie's derived name filled in (the data plane's `cookie_name`, which
    Traefik lists in the configuration)."""
    view = {}
    for kind, body in ours.items():
        view[kind] = _without_defaults(kind, body, theirs.get(kind))
    balancer, their_balancer = view.get("loadBalancer"), theirs.get("loadBalancer") or {}
    if isinstance(balancer, dict):
        balancer = dict(balancer)
        their_servers = their_balancer.get("servers") or [{}]
        balancer["servers"] = [
            _without_defaults("server", server, their_servers[0])
            for server in balancer.get("servers") or []
        ]
        if "healthCheck" in balancer:
            balancer["healthCheck"] = _without_defaults(
                "healthCheck", balancer["healthCheck"], their_balancer.get("healthCheck")
            )
        cookie = (balancer.get("sticky") or {}).get("cookie")
        if isinstance(cookie, dict) and not cookie.get("name"):
            cookie = {**cookie, "name": cookie_name("", name)}
            balancer["sticky"] = {**balancer["sticky"], "cookie": cookie}
        view["loadBalancer"] = balancer
    return view


def _sorted_servers(view: dict[str, Any]) -> dict[str, Any]:
    balancer = view.get("loadBalancer")
    if isinstance(balancer, dict) and "servers" in balancer:
        servers = sorted(balancer["servers"], key=lambda s: json.dumps(s, sort_keys=True))
        view = {**view, "loadBalancer": {**balancer, "servers": servers}}
    return view


def _declared(label_set: dict[str, Any], container: str) -> set[tuple[str, str]]:
    """(rawdata table, name@docker) of every object the label set names, and the
    automatic service named after its container."""
    tables = {(p, s): t for (p, s), t in TABLES.items()}
    automatic = f"{normalize(container)}@docker"
    found = {(table, automatic) for table in SERVICE_TABLES}
    for key in label_set.get("labels") or {}:
        parts = key.split(".")
        if len(parts) > 3 and parts[0] == "traefik":
            table = tables.get((parts[1].lower(), parts[2].lower()))
            if table is not None:
                found.add((table, f"{parts[3]}@docker"))
    return found


def _dropped(corpus: Corpus) -> set[tuple[str, str]]:
    """The objects of the label sets Traefik leaves out whole (`traefik_drops`)."""
    return {
        obj
        for container, label_set in corpus.by_name.items()
        if label_set.get("traefik_drops")
        for obj in _declared(label_set, container)
    }


def test_the_corpus_is_large_enough(corpus: Corpus) -> None:
    assert len(LABEL_SETS) >= 60
    assert len(corpus.by_name) > len(LABEL_SETS)  # replicas too


def test_every_router_traefik_serves_proxynow_serves_alike(
    traefik: dict[str, Any], proxynow: dict[str, Any]
) -> None:
    compared, fail_closed, differences = 0, [], []
    for table in ROUTER_TABLES:
        ours = _docker(proxynow, table)
        for name, theirs in _docker(traefik, table).items():
            if not _serves(theirs):
                continue
            mine = ours.get(name)
            if mine is not None and _fail_closed(mine):
                fail_closed.append(name)
                continue
            if not _serves(mine):
                differences.append(f"{table} {name}: Traefik serves it, proxynow: {mine}")
                continue
            assert mine is not None
            compared += 1
            expected, got = _router_view(theirs, True), _router_view(mine, False)
            if got != expected:
                differences.append(f"{table} {name}: Traefik {expected}, proxynow {got}")
    assert not differences, "\n".join(differences)
    assert compared >= 60 and len(fail_closed) <= 12, (compared, fail_closed)


def test_what_traefik_does_not_serve_proxynow_does_not_serve(
    corpus: Corpus, traefik: dict[str, Any], proxynow: dict[str, Any]
) -> None:
    dropped = _dropped(corpus)
    differences = []
    for table in (*ROUTER_TABLES, *SERVICE_TABLES, *MIDDLEWARE_TABLES):
        theirs = _docker(traefik, table)
        for name, mine in _docker(proxynow, table).items():
            if _serves(mine) and not _serves(theirs.get(name)) and (table, name) not in dropped:
                differences.append(
                    f"{table} {name}: proxynow serves it, Traefik {theirs.get(name)}"
                )
    assert not differences, "\n".join(differences)


def test_traefik_drops_what_proxynow_disables(
    corpus: Corpus, traefik: dict[str, Any], proxynow: dict[str, Any]
) -> None:
    """The deliberate difference, both halves: Traefik shows nothing of the container,
    proxynow shows the object the broken label belongs to, disabled, with its error."""
    checked = 0
    for container, label_set in corpus.by_name.items():
        if not label_set.get("traefik_drops"):
            continue
        objects = _declared(label_set, container)
        assert not {o for o in objects if o[1] in (traefik.get(o[0]) or {})}, container
        disabled = [
            (table, name)
            for table, name in objects
            if (proxynow.get(table) or {}).get(name, {}).get("status") == "disabled"
        ]
        assert disabled, (container, "proxynow disables nothing")
        checked += 1
    assert checked >= 3


def test_services_have_the_same_servers_and_options(
    traefik: dict[str, Any], proxynow: dict[str, Any]
) -> None:
    compared, differences = 0, []
    for table in SERVICE_TABLES:
        ours = _docker(proxynow, table)
        for name, theirs in _docker(traefik, table).items():
            if not _serves(theirs):
                continue
            mine = ours.get(name)
            if not _serves(mine):
                differences.append(f"{table} {name}: Traefik serves it, proxynow: {mine}")
                continue
            assert mine is not None
            compared += 1
            expected = _sorted_servers(_config_view(theirs, True))
            got = _sorted_servers(_ours_as_listed(name, _config_view(mine, False), expected))
            if got != expected:
                differences.append(f"{table} {name}: Traefik {expected}, proxynow {got}")
    assert not differences, "\n".join(differences)
    assert compared >= 60


def test_middlewares_have_the_same_options(
    traefik: dict[str, Any], proxynow: dict[str, Any]
) -> None:
    compared, differences = 0, []
    for table in MIDDLEWARE_TABLES:
        ours = _docker(proxynow, table)
        for name, theirs in _docker(traefik, table).items():
            if not _serves(theirs):
                continue
            mine = ours.get(name)
            if mine is None or not (_serves(mine) or _fail_closed_middleware(mine)):
                differences.append(f"{table} {name}: Traefik serves it, proxynow: {mine}")
                continue
            compared += 1
            expected = _config_view(theirs, True)
            got = _ours_as_listed(name, _config_view(mine, False), expected)
            if got != expected:
                differences.append(f"{table} {name}: Traefik {expected}, proxynow {got}")
    assert not differences, "\n".join(differences)
    assert compared >= 25


def _fail_closed_middleware(item: dict[str, Any]) -> bool:
    return _fail_closed(item)
