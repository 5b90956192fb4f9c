"""compose-examples/basic/ brought up for real, by the steps of docs/getting-started.md.

The walkthrough block `basic` of the page is read and run as it stands
(tests/support/walkthrough.py says what each kind of step becomes): `docker compose up
-d` in the example's folder, the page's `curl` commands sent to the published ports, and
`docker compose down -v`, after which no container, network or volume of the project may
be left. Between the steps the test checks what the page does not show: an unknown host
is 404, /ping answers, each route reaches its own container.
"""

from __future__ import annotations

import re
import subprocess

from tests.e2e.image.conftest import StackFactory
from tests.support.compose import Stack
from tests.support.walkthrough import Step, Walkthrough


def _get(walk: Walkthrough, url: str, *options: str) -> str:
    argv = walk.curl_argv(Step(f"curl {' '.join(options)} {url}", ""))
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout


def _checks(walk: Walkthrough, stack: Stack) -> None:
    """After the last `curl` of the page: what else a user relies on."""
    status = _get(walk, "http://nobody.localhost/", "-o", "/dev/null", "-w", "%{http_code}")
    assert status == "404"
    assert _get(walk, "http://127.0.0.1:8080/ping") == "OK"
    for service in ("app", "blog"):
        body = _get(walk, f"http://{service}.localhost/cgi-bin/who")
        (container,) = stack.containers(service)
        assert re.search(r"^hostname=(.*)$", body, re.M)[1] == service  # type: ignore[index]
        assert container.attrs["Config"]["Hostname"] == service


def test_getting_started_basic(compose_stack: StackFactory) -> None:
    stack = compose_stack("basic")
    walk = Walkthrough(stack)
    checked: list[str] = []

    def after(step: Step) -> None:
        if step.command.startswith("curl http://127.0.0.1:8080/"):
            _checks(walk, stack)
            checked.append("routes")
        if step.command.startswith("docker compose down"):
            assert stack.leftovers() == []
            checked.append("down")

    walk.run("basic", after)
    assert checked == ["routes", "down"]
