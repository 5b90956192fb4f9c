"""Server health in a worker: which servers its balancers leave out, and why.

Two sources decide that a server is down. Active checks run in the control plane
(proxynow/control/healthcheck.py), which publishes a `HealthSet` (service name -> its DOWN server
URLs) to every worker apart from snapshots, as ACME challenges are (`Supervisor.
publish_health`, the channel's HEALTH message); `WorkerState.set_health` hands it here.
Passive checks (`loadBalancer.passiveHealthCheck`) are per worker: the servers of such a
service get a `WatchedPool`, which reports each dial's outcome to `PassiveHealth`; at
`maxFailedAttempts` failures within `failureWindow` the server is out of this worker's
balancer for `failureWindow`, then back (Traefik's PassiveServiceHealthChecker; it lets an
active check bring the server back instead, but ours lives in another process, so the
window always ends it).

`WorkerHealth.apply` turns both into `Balancer.set_down` calls: a load balancer leaves its
down servers out; a `weighted` service with `healthCheck: {}` leaves out the children that
have no live server (propagation: a child is up while any server under it is). It runs when
health changes and after every graph build (a rebuilt balancer starts with every child
live), and does nothing while nothing is down, so a configuration without health pays
nothing, and `pick` never looks at health at all. `failover` needs no state here: its pick
(edge/graph/build.py) serves the fallback when the main service's pick finds no live server.

What counts as a passive failure here: a dial that fails (refused, reset, TLS failure,
dial timeout). Traefik also counts a backend's 5xx answer and an exchange that dies midway;
those happen in the protocol (edge/http1/protocol.py, edge/proxy/dispatch.py), which has no hook for
it yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxynow.edge.core.errors import ProxyError
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.pool import ATTRIBUTES as POOL_ATTRIBUTES
from proxynow.edge.upstream.pool import Ready, UpstreamPool

if TYPE_CHECKING:
    from proxynow.config.dynamic import DynamicConfig, PassiveHealthCheck, Service
    from proxynow.edge.balance.wrr import BalancerRegistry

__all__ = [
    "EMPTY_HEALTH",
    "HealthSet",
    "PassiveHealth",
    "WatchedPool",
    "WorkerHealth",
    "service_up",
]

log = logging.getLogger(__name__)

_NOTHING: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class HealthSet:
    """The servers active health checks found down; picklable, never mutated once built."""

    # service name (qualified) -> URLs of its servers that are down
    down: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A copy without empty entries, so equal sets compare equal and nothing is shared.
        down = {name: frozenset(urls) for name, urls in self.down.items() if urls}
        object.__setattr__(self, "down", down)


EMPTY_HEALTH = HealthSet()


class WatchedPool(UpstreamPool):
    """A service's view of a shared pool that reports each dial's outcome.

    It shares the pool's state (the same idle list, key and TLS context), so connections
    are pooled as before; only `connect` differs. Connections it dials point back to it,
    and releasing them fills the shared idle list.
    """

    __slots__ = ("_report",)

    def __init__(self, inner: UpstreamPool, report: Callable[[bool], None]) -> None:
        # No super().__init__: that would make a second idle list and TLS context. Every
        # attribute is the inner pool's (the same list object for `idle`).
        for name in POOL_ATTRIBUTES:
            setattr(self, name, getattr(inner, name))
        self._report = report

    def connect(self, ready: Ready) -> None:
        report = self._report

        def watched(result: UpstreamConnection | ProxyError) -> None:
            report(not isinstance(result, ProxyError))
            ready(result)

        self.registry.dial(self, watched)


class PassiveHealth:
    """Failed attempts per (service, server URL) in this worker, and the servers they
    took out of the balancer until their failure window ends."""

    __slots__ = ("_failures", "_timers", "down", "on_change")

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        # service -> URLs this worker took out
        self.down: dict[str, frozenset[str]] = {}
        self.on_change: Callable[[], None] = _nothing

    def watch(
        self, service: str, url: str, pool: UpstreamPool, spec: PassiveHealthCheck
    ) -> WatchedPool:
        """The pool a server of `service` with a passive health check dials through."""
        key = (service, url)
        window, most = spec.failure_window, max(spec.max_failed_attempts, 1)

        def report(ok: bool) -> None:
            if ok:
                self._failures.pop(key, None)
            else:
                self.failed(key, window, most)

        return WatchedPool(pool, report)

    def failed(self, key: tuple[str, str], window: float, most: int) -> None:
        """Count one failed attempt; at `most` within `window` the server goes down."""
        if key in self._timers:
            return  # already down: a dial that was under way when it went
        loop = asyncio.get_running_loop()
        now = loop.time()
        times = [t for t in self._failures.get(key, ()) if t > now - window]
        times.append(now)
        if len(times) < most:
            self._failures[key] = times
            return
        self._failures.pop(key, None)
        service, url = key
        log.warning(
            "service %s: server %s is down for %gs after %d failed attempt(s) "
            "(passive health check)",
            service,
            url,
            window,
            len(times),
        )
        self.down[service] = self.down.get(service, _NOTHING) | {url}
        self._timers[key] = loop.call_later(max(window, 0.0), self._revive, key)
        self.on_change()

    def _revive(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        service, url = key
        left = self.down.get(service, _NOTHING) - {url}
        if left:
            self.down[service] = left
        else:
            self.down.pop(service, None)
        log.warning("service %s: server %s is back (passive health check window ended)", *key)
        self.on_change()

    def retain(self, services: Mapping[str, object]) -> None:
        """Forget the failed attempts of services that left the configuration."""
        if not self._failures:
            return
        for key in [key for key in self._failures if key[0] not in services]:
            del self._failures[key]

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class WorkerHealth:
    """Applies the active `HealthSet` and the passive downs to the worker's balancers."""

    __slots__ = ("_balancers", "_config", "_touched", "active", "passive")

    def __init__(self) -> None:
        self.active = EMPTY_HEALTH
        self.passive = PassiveHealth()
        self.passive.on_change = self.refresh
        self._config: DynamicConfig | None = None
        self._balancers: BalancerRegistry | None = None
        # Services whose balancer currently leaves something out.
        self._touched: set[str] = set()

    def set_active(self, health: HealthSet) -> None:
        self.active = health
        self.refresh()

    def refresh(self) -> None:
        """Apply again with the configuration and balancers of the last `apply`."""
        if self._config is not None and self._balancers is not None:
            self.apply(self._config, self._balancers)

    def apply(self, config: DynamicConfig, balancers: BalancerRegistry) -> None:
        """Make every balancer of `config` leave out exactly what is down now."""
        self._config, self._balancers = config, balancers
        self.passive.retain(config.http.services)
        down = self.down()
        if not down and not self._touched:
            return  # the common case: nothing down before or now
        services = config.http.services
        targets = {name: urls for name, urls in down.items() if name in services}
        if down:
            status = _Status(services, down)
            for name, service in services.items():
                weighted = service.weighted
                if weighted is None or weighted.health_check is None:
                    continue
                off = frozenset(c.name for c in weighted.services if not status.up(c.name))
                if off:
                    targets[name] = off
        for name in self._touched.difference(targets):
            targets[name] = _NOTHING
        for name, keys in targets.items():
            balancer = balancers.find(name)
            if balancer is not None:
                balancer.set_down(keys)
        self._touched = {name for name, keys in targets.items() if keys}

    def down(self) -> dict[str, frozenset[str]]:
        """Service -> its down server URLs, from both sources."""
        active, passive = self.active.down, self.passive.down
        if not passive:
            return dict(active)
        merged = dict(active)
        for name, urls in passive.items():
            merged[name] = merged.get(name, _NOTHING) | urls
        return merged

    def stop(self) -> None:
        self.passive.stop()


def service_up(
    services: Mapping[str, Service], down: Mapping[str, frozenset[str]], name: str
) -> bool:
    """True when service `name` has a live server somewhere under it."""
    return _Status(services, down).up(name)


class _Status:
    """Up/down of services, worked out once per name (Traefik's status propagation)."""

    __slots__ = ("_down", "_known", "_services")

    def __init__(self, services: Mapping[str, Service], down: Mapping[str, frozenset[str]]):
        self._services = services
        self._down = down
        self._known: dict[str, bool] = {}

    def up(self, name: str) -> bool:
        known = self._known.get(name)
        if known is not None:
            return known
        self._known[name] = False  # a cycle counts as down (the graph refuses cycles too)
        result = self._work_out(name)
        self._known[name] = result
        return result

    def _work_out(self, name: str) -> bool:
        service = self._services.get(name)
        if service is None:
            return False
        if service.load_balancer is not None:
            off = self._down.get(name, _NOTHING)
            return any(s.weight > 0 and s.url not in off for s in service.load_balancer.servers)
        if service.weighted is not None:
            return any(c.weight > 0 and self.up(c.name) for c in service.weighted.services)
        if service.failover is not None:
            return self.up(service.failover.service) or self.up(service.failover.fallback)
        if service.mirroring is not None:
            return self.up(service.mirroring.service)
        return False


def _nothing() -> None:
    return None
