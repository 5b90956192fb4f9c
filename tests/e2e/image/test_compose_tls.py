"""compose-examples/tls/ brought up for real, by the steps of docs/getting-started.md,
with Pebble in place of Let's Encrypt.

Pebble runs on this machine (tests/support/pebble.py) with its ACME directory on the
Docker bridge's address, where proxynow's container reaches it: the example's
`ACME_CA_SERVER` is that directory, and an override file mounts Pebble's CA into the
container and names it in `caCertificates`. Pebble resolves every name to 127.0.0.1 and
checks HTTP-01 on the port published for proxynow's :80. The page's `curl` commands go to
the published ports and trust only Pebble's issuing root. The walkthrough block `tls`
starts in the shell block `basic` left (its `cd` and `export` steps).
"""

from __future__ import annotations

import json
import subprocess

from tests.e2e.image.conftest import StackFactory
from tests.support.compose import Stack, bridge_address
from tests.support.pebble import PebbleFactory, free_port
from tests.support.walkthrough import Step, Walkthrough

CA_IN_CONTAINER = "/etc/proxynow/pebble-ca.pem"
OVERRIDE = """version: "2.4"
services:
  proxynow:
    volumes:
      - "{ca}:{target}:ro"
    environment:
      PROXYNOW_CERTIFICATESRESOLVERS_LE_ACME_CACERTIFICATES: "{target}"
"""


def _stored_domains(stack: Stack) -> list[str]:
    """The main domains of the certificates in the volume's acme.json."""
    (proxy,) = stack.containers("proxynow")
    result = proxy.exec_run(["cat", "/data/acme.json"])
    assert result.exit_code == 0, result.output
    stored = json.loads(result.output)
    return [c["domain"]["main"] for c in stored["le"]["Certificates"] or []]


def _served_issuer(walk: Walkthrough, url: str) -> str:
    argv = walk.curl_argv(Step(f"curl -v -o /dev/null {url}", ""))
    result = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10)
    issuers = [line for line in result.stderr.splitlines() if "issuer:" in line]
    assert issuers, result.stderr
    return issuers[0]


def test_getting_started_tls(compose_stack: StackFactory, pebble_factory: PebbleFactory) -> None:
    web = free_port()
    pebble = pebble_factory.start(http_port=web, tls_port=free_port(), listen_host=bridge_address())
    root = pebble.directory / "root.pem"
    root.write_bytes(pebble.root_pem())
    stack = compose_stack(
        "tls",
        override=OVERRIDE.format(ca=pebble.ca_file, target=CA_IN_CONTAINER),
        PROXYNOW_HTTP=f"127.0.0.1:{web}",
        ACME_CA_SERVER=pebble.directory_url,
    )
    walk = Walkthrough(stack, ca_file=root)
    walk.prelude("basic")
    checked: list[str] = []

    def after(step: Step) -> None:
        if step.command.startswith("curl https://"):
            domain = stack.env["DOMAIN"]
            assert _stored_domains(stack) == [domain]
            assert "Pebble" in _served_issuer(walk, f"https://{domain}/")
            checked.append("certificate")
        if step.command.startswith("docker compose down"):
            assert stack.leftovers() == []
            checked.append("down")

    walk.run("tls", after)
    assert checked == ["certificate", "down"]
