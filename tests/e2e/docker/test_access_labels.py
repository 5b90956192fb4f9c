"""The access-control middlewares set by Docker labels, end to end: real containers, a real
`proxynow run` with `providers.docker`, real requests (see test_e2e.py for the setup)."""

from __future__ import annotations

import base64
import http.client
from typing import Any

from tests.e2e.docker.conftest import Resources
from tests.support.proc import ProxynowProcess, poll

TIMEOUT = 15.0
APR1 = "$apr1$saltsalt$yAAkm4libquA.ZWLHbSBq/"  # "password"; a label keeps its `$` as is


def get(proxy: ProxynowProcess, host: str, headers: dict[str, str] | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=5)
    try:
        connection.request("GET", "/cgi-bin/who", headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("WWW-Authenticate"), response.read()
    finally:
        connection.close()


def test_basic_auth_and_ip_allow_list_from_labels(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    guarded = f"{docker_resources.name('guarded')}.test"
    fenced = f"{docker_resources.name('fenced')}.test"
    prefix = "proxynow.http"
    docker_resources.run(
        {
            f"{prefix}.routers.guarded.rule": f"Host(`{guarded}`)",
            f"{prefix}.routers.guarded.middlewares": "auth",
            f"{prefix}.middlewares.auth.basicauth.users": f"alice:{APR1}",
            f"{prefix}.middlewares.auth.basicauth.realm": "labels",
        }
    )
    docker_resources.run(
        {
            f"{prefix}.routers.fenced.rule": f"Host(`{fenced}`)",
            f"{prefix}.routers.fenced.middlewares": "far",
            f"{prefix}.middlewares.far.ipallowlist.sourcerange": "10.0.0.0/8, 192.168.0.0/16",
        }
    )
    poll(lambda: get(proxy, guarded)[0] == 401, TIMEOUT, "the guarded router")
    assert get(proxy, guarded)[1] == 'Basic realm="labels"'
    token = base64.b64encode(b"alice:password").decode()
    status, _, body = get(proxy, guarded, {"Authorization": f"Basic {token}"})
    assert status == 200 and b"hostname=" in body
    assert (
        get(proxy, guarded, {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})[0]
        == 401
    )
    poll(lambda: get(proxy, fenced)[0] == 403, TIMEOUT, "the fenced router")
