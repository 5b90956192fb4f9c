"""`proxynow healthcheck`: is the proxy configured by this static configuration healthy?

Like `traefik healthcheck`: GET `/ping` on the ping entrypoint (`ping.entryPoint`, by
default `traefik` on :8080) and call the proxy healthy on a 200 answer within the timeout.
An address that listens on every interface (`:8080`, `0.0.0.0`, `[::]`) is reached on the
loopback; an entrypoint with TLS is reached by HTTPS without verifying its certificate
(the probe asks only "does it answer", and on localhost). A container's HEALTHCHECK runs
it (docs/container.md). Blocking I/O is fine here: it is a short-lived command of its own.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass

from proxynow.api.internal import effective_static
from proxynow.config.static import StaticConfig

__all__ = ["PingTarget", "ping_target", "probe"]

PATH = "/ping"
_ANY = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True, slots=True)
class PingTarget:
    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{PATH}"


def ping_target(static: StaticConfig) -> PingTarget | str:
    """Where `/ping` answers for `static`, or why it does not."""
    if static.ping is None:
        return "ping is not enabled (--ping, or `ping: {}` in the static configuration)"
    name = static.ping.entry_point
    entrypoint = effective_static(static).entry_points.get(name)
    if entrypoint is None:
        return f"ping.entryPoint {name!r} is not an entrypoint"
    host = _ANY.get(entrypoint.host, entrypoint.host)
    return PingTarget(host, entrypoint.port, entrypoint.http.tls is not None)


def probe(target: PingTarget, timeout: float) -> tuple[bool, str]:
    """GET the target once; (healthy, what happened) within `timeout` seconds in all.

    The socket timeout bounds each read; the thread's join bounds the whole exchange, so
    that an endpoint dripping one byte at a time cannot hold the check past its deadline
    (the daemon thread dies with this short-lived process)."""
    outcome: list[tuple[bool, str]] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_get(target, timeout)), name="healthcheck", daemon=True
    )
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else (False, f"{target.url}: no answer within {timeout:g}s")


def _get(target: PingTarget, timeout: float) -> tuple[bool, str]:
    connection = _connection(target, timeout)
    try:
        connection.request("GET", PATH, headers={"User-Agent": "proxynow-healthcheck"})
        response = connection.getresponse()
        response.read(4096)  # bounded: a misbehaving endpoint cannot feed us forever
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{target.url}: {exc or type(exc).__name__}"
    finally:
        connection.close()
    return response.status == 200, f"{target.url}: {response.status} {response.reason}"


def _connection(target: PingTarget, timeout: float) -> http.client.HTTPConnection:
    if not target.tls:
        return http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
