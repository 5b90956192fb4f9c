"""compose-examples/dashboard-auth, scaling and migrate-from-traefik brought up for real
with compose on this session's images (tests/e2e/image/conftest.py), requests sent to the
ports they publish on 127.0.0.1; `down -v` must leave nothing of the project behind."""

from __future__ import annotations

import base64
import os
import re
from collections import Counter

from tests.e2e.image.conftest import StackFactory
from tests.support.compose import Stack, get
from tests.support.proc import poll

TIMEOUT = 40.0


def _docker_gid() -> str:
    """The group of the engine's socket, read once the engine runs (the docker_engine
    fixture starts it; at collection time it may not exist yet)."""
    return str(os.stat("/var/run/docker.sock").st_gid)


def _hostname(body: str) -> str:
    found = re.search(r"^hostname=(.*)$", body, re.M)
    assert found is not None, body
    return found[1]


def _served(stack: Stack, host: str, path: str, **options: object) -> str:
    def check() -> str | None:
        status, _, body = get(stack, host, path, **options)  # type: ignore[arg-type]
        return body if status == 200 else None

    try:
        result: str = poll(check, TIMEOUT, f"{host}{path} through proxynow")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    return result


def _down_leaves_nothing(stack: Stack) -> None:
    stack.down()
    assert stack.leftovers() == []


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_dashboard_behind_basic_auth(compose_stack: StackFactory) -> None:
    stack = compose_stack("dashboard-auth", DOCKER_GID=_docker_gid())
    stack.compose("up", "-d")
    assert _hostname(_served(stack, "app.localhost", "/cgi-bin/who")) == "app"
    good = _basic("admin", "change-me")
    routers = _served(stack, "dashboard.localhost", "/api/http/routers", headers=good)
    assert "dashboard@docker" in routers and "app@docker" in routers
    page = get(stack, "dashboard.localhost", "/dashboard/", headers=good)
    assert page[0] == 200 and "<html" in page[2].lower()
    for headers in ({}, _basic("admin", "wrong"), _basic("root", "change-me")):
        status, head, _ = get(stack, "dashboard.localhost", "/api/http/routers", headers=headers)
        assert status == 401 and head["www-authenticate"].startswith("Basic"), headers
    assert get(stack, "app.localhost", "/api/http/routers")[0] == 404  # only on its host
    assert set(stack.published()) == {80}  # no insecure API port
    _down_leaves_nothing(stack)


def _replicas(stack: Stack, requests: int, cookie: str = "") -> Counter[str]:
    headers = {"Cookie": cookie} if cookie else {}
    seen: Counter[str] = Counter()
    for _ in range(requests):
        status, _, body = get(stack, "app.localhost", "/cgi-bin/who", headers=headers)
        seen[_hostname(body) if status == 200 else f"status {status}"] += 1
    return seen


def test_scaled_service_spreads_sticks_and_drops_replicas(compose_stack: StackFactory) -> None:
    stack = compose_stack("scaling", DOCKER_GID=_docker_gid())
    stack.compose("up", "-d")
    replicas = {c.id[:12]: c for c in stack.containers("app")}
    assert len(replicas) == 3
    # Docker health: a replica gets traffic once healthy; all three, in turn.
    poll(lambda: set(_replicas(stack, 6)) == set(replicas), TIMEOUT, "the three replicas")
    _, head, body = get(stack, "app.localhost", "/cgi-bin/who")
    cookie = head["set-cookie"].split(";", 1)[0]
    assert cookie.startswith("app_replica=") and "HttpOnly" in head["set-cookie"]
    pinned = _hostname(body)
    assert _replicas(stack, 10, cookie) == Counter({pinned: 10})
    # proxynow's active health check: a replica whose `/` fails is taken out while running.
    # Every condition names the whole answer (a failed request counts as "status N"), so
    # requests that did not reach a replica cannot pass for one taken out.
    broken = next(name for name in replicas if name != pinned)
    (last,) = set(replicas) - {broken, pinned}
    assert replicas[broken].exec_run(["mv", "/www/index.html", "/www/gone"]).exit_code == 0
    healthy = set(replicas) - {broken}
    poll(lambda: set(_replicas(stack, 6)) == healthy, TIMEOUT, "the unhealthy replica out")
    # A stopped replica is taken out too, and its sticky clients move to the one left.
    replicas[pinned].stop(timeout=5)
    poll(lambda: _replicas(stack, 4, cookie) == Counter({last: 4}), TIMEOUT, "pinned one out")
    assert _replicas(stack, 6) == Counter({last: 6})
    _down_leaves_nothing(stack)


def test_traefik_labelled_stack_served_unchanged(compose_stack: StackFactory) -> None:
    stack = compose_stack("migrate-from-traefik", proxy="traefik", DOCKER_GID=_docker_gid())
    stack.compose("up", "-d")
    assert _hostname(_served(stack, "whoami.localhost", "/cgi-bin/who")) == "whoami"
    status, head, body = get(stack, "shop.localhost", "/api/cgi-bin/who")
    assert status == 200 and _hostname(body) == "shop"
    assert "uri=/cgi-bin/who" in body  # stripPrefix
    assert head["x-served-by"] == "shop"  # headers
    assert get(stack, "shop.localhost", "/cgi-bin/who")[0] == 404  # PathPrefix(`/api`)
    routers = _served(stack, "localhost", "/api/http/routers", port=8080)
    assert "whoami@docker" in routers and "shop@docker" in routers
    _down_leaves_nothing(stack)
