"""The API's lists against real Traefik's on the same dynamic file.

Both servers load `API_DYNAMIC` with `api.insecure` and `ping`; their
`/api/{http,tcp}/...` lists are compared item by item on what tooling reads: name,
status, provider, using, type and (routers) priority. Deliberate differences, listed in
docs/api.md, are left out: the two middlewares of Traefik's dashboard router (proxynow
answers their redirect and strip in the dashboard service itself) and `noop@internal`,
which proxynow does not list. The router and service `dashboard@internal` are compared.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.differential.traefik_harness import TRAEFIK, Process, listening_ports
from tests.support.proc import ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]

CHECKED = {"healthCheck": {"path": "/health", "interval": "1h"}}
API_DYNAMIC: dict[str, Any] = {
    "http": {
        "routers": {
            "plain": {"rule": "Host(`a.example.com`)", "service": "lb"},
            "secure": {"rule": "Host(`s.example.com`)", "service": "split", "tls": {}},
            "bad-rule": {"rule": "Host(`a.example.com`", "service": "lb"},
            "no-service": {"rule": "Host(`b.example.com`)", "service": "missing"},
            "bad-middleware": {"rule": "Path(`/m`)", "service": "lb", "middlewares": ["nope"]},
            "unknown-ep": {"rule": "Path(`/w`)", "service": "lb", "entryPoints": ["web", "nope"]},
            "redirect": {
                "rule": "PathPrefix(`/r`)",
                "service": "lb",
                "middlewares": ["to-https", "both"],
                "priority": 42,
            },
            "dash": {"rule": "Host(`api.example.com`)", "service": "api@internal"},
            "fail": {"rule": "Path(`/f`)", "service": "fo", "entryPoints": ["web"]},
        },
        "services": {
            # Traefik refuses a failover whose children have no health check (proxynow
            # serves it: docs/api.md, "Differences"); these have one.
            "lb": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}], **CHECKED}},
            "other": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:10"}], **CHECKED}},
            "split": {"weighted": {"services": [{"name": "lb", "weight": 2}]}},
            "fo": {"failover": {"service": "lb", "fallback": "other"}},
        },
        "middlewares": {
            "to-https": {"redirectScheme": {"scheme": "https"}},
            "both": {"chain": {"middlewares": ["to-https"]}},
            "unused": {"redirectScheme": {"scheme": "https", "permanent": True}},
        },
    },
    "tcp": {
        "routers": {
            "db": {"rule": "HostSNI(`*`)", "service": "db", "entryPoints": ["tcp"]},
            "db-missing": {"rule": "HostSNI(`x.example.com`)", "service": "nope", "tls": {}},
        },
        "services": {"db": {"loadBalancer": {"servers": [{"address": "127.0.0.1:11"}]}}},
    },
}

# Traefik's internal objects proxynow does not have: docs/api.md, "Differences".
NOT_LISTED = {
    "dashboard_redirect@internal",
    "dashboard_stripprefix@internal",
    "noop@internal",
}
LISTS = [
    "http/routers",
    "http/services",
    "http/middlewares",
    "tcp/routers",
    "tcp/services",
    "tcp/middlewares",
    "udp/routers",
    "udp/services",
]
# Only `traefik` on IPv4, so that its port is the one IPv4 listener of the process.
ENTRYPOINTS = {
    "web": {"address": "[::1]:0"},
    "tcp": {"address": "[::1]:0"},
    "traefik": {"address": "127.0.0.1:0"},
}


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def summary(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What is compared, by name."""
    keys = ("status", "provider", "using", "type", "priority")
    return {
        item["name"]: {key: item.get(key) for key in keys}
        for item in items
        if item["name"] not in NOT_LISTED
    }


def until_loaded(port: int, process: subprocess.Popen[bytes] | None, deadline_s: float) -> None:
    """Poll the API until the file's routers are listed."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"traefik exited with {process.returncode}")
        try:
            if any(r["name"] == "plain@file" for r in get_json(port, "/api/http/routers")):
                return
        except OSError:
            pass
        time.sleep(0.05)  # polling a condition with a deadline, not waiting for readiness
    raise TimeoutError("the API did not list the file's routers in time")


@pytest.fixture
def traefik_api(tmp_path: Path) -> Iterator[int]:
    dynamic = tmp_path / "dynamic.yml"
    dynamic.write_text(yaml.safe_dump(API_DYNAMIC))
    static = tmp_path / "traefik.yml"
    static.write_text(
        yaml.safe_dump(
            {
                "entryPoints": ENTRYPOINTS,
                "api": {"insecure": True},
                "ping": {},
                "providers": {"file": {"filename": str(dynamic), "watch": False}},
                "log": {"level": "ERROR"},
            }
        )
    )
    popen = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={static}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = Process(popen)
    try:
        deadline = time.monotonic() + 30
        while "v4" not in (ports := listening_ports(popen.pid)):
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("traefik did not listen")
            time.sleep(0.05)  # polling a condition with a deadline
        until_loaded(ports["v4"], popen, 30)
        yield ports["v4"]
    finally:
        process.stop()


def test_lists_match_traefik(
    traefik_api: int, proxynow_factory: Callable[..., ProxynowProcess]
) -> None:
    proxy = proxynow_factory(
        {"entryPoints": ENTRYPOINTS, "api": {"insecure": True}, "ping": {}},
        API_DYNAMIC,
        workers=1,
    )
    ours = proxy.ports["traefik"]
    until_loaded(ours, None, 30)
    for path in LISTS:
        theirs = summary(get_json(traefik_api, f"/api/{path}"))
        mine = summary(get_json(ours, f"/api/{path}"))
        assert mine == theirs, path
    # The counts of errors and warnings (the totals differ by the dashboard objects).
    overviews = [get_json(port, "/api/overview") for port in (ours, traefik_api)]
    counts = [
        {
            (protocol, section): (counts["errors"], counts["warnings"])
            for protocol in ("http", "tcp", "udp")
            for section, counts in overview[protocol].items()
        }
        for overview in overviews
    ]
    assert counts[0] == counts[1]
    assert counts[0]["http", "routers"] == (3, 1)


def test_ping_and_unknown_names_match_traefik(
    traefik_api: int, proxynow_factory: Callable[..., ProxynowProcess]
) -> None:
    proxy = proxynow_factory(
        {"entryPoints": ENTRYPOINTS, "api": {"insecure": True}, "ping": {}},
        API_DYNAMIC,
        workers=1,
    )
    for port in (traefik_api, proxy.ports["traefik"]):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
            assert (response.status, response.read()) == (200, b"OK")
        with pytest.raises(urllib.error.HTTPError) as missing:
            get_json(port, "/api/http/routers/nope%40file")
        assert missing.value.code == 404
        assert json.loads(missing.value.read()) == {"message": "router not found: nope@file"}
        page = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/http/routers?per_page=2&page=2", timeout=5
        )
        with page:
            assert page.headers["X-Next-Page"] == "3"
