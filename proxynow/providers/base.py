"""The provider protocol: how configuration sources talk to the aggregator.

A provider (file, docker, ...) runs as one task in the control plane's asyncio loop and
hands the aggregator *complete* configurations, never deltas: on every change it rebuilds
its whole `DynamicConfig` and calls `ConfigSink.submit`. Blocking work (reading files,
talking to the Docker API) goes to threads; the provider never blocks the loop.

Two kinds of errors travel to the sink:

- errors that belong to one object (a router with a bad label, a name defined in two
  files) ride along in `ProviderUpdate.object_errors`; the aggregator disables that object
  and shows the error on it, the rest of the provider's configuration keeps serving;
- provider-level errors (a file that does not parse, an unreachable Docker daemon) go to
  `ConfigSink.report_errors`. The provider then keeps its last good configuration in
  place simply by not submitting a new one; the aggregator logs each distinct error once
  and keeps the current list for the API. Reporting an empty list clears them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from proxynow.config.dynamic import DynamicConfig

__all__ = ["SECTIONS", "ConfigSink", "Provider", "ProviderUpdate", "object_key"]

SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("http", "routers", "routers"),
    ("http", "services", "services"),
    ("http", "middlewares", "middlewares"),
    ("http", "serversTransports", "servers_transports"),
    ("tcp", "routers", "routers"),
    ("tcp", "services", "services"),
    ("tcp", "middlewares", "middlewares"),
    ("tcp", "serversTransports", "servers_transports"),
    ("udp", "routers", "routers"),
    ("udp", "services", "services"),
)
"""The named objects of a `DynamicConfig`: (protocol, section as in Traefik's YAML,
attribute of the protocol's model). Their names are qualified `name@provider`."""


@dataclass(frozen=True, slots=True)
class ProviderUpdate:
    """One provider's complete configuration.

    `object_errors` maps an unqualified object key such as `"http.routers.api"` (see
    `object_key`) to errors that disable that object; the object itself should still be
    present in `config` so that the API can show what was configured.
    """

    provider: str
    config: DynamicConfig
    object_errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class ConfigSink(Protocol):
    """What a provider reports to (the aggregator implements it)."""

    def submit(self, update: ProviderUpdate) -> None:
        """Replace the provider's configuration; an update equal to the last is dropped."""

    def report_errors(self, provider: str, errors: Sequence[str]) -> None:
        """Set the provider's current provider-level errors (empty: healthy again)."""


class Provider(Protocol):
    """A source of dynamic configuration."""

    @property
    def name(self) -> str:
        """The provider name used to qualify object names (`api@<name>`)."""

    async def run(self, sink: ConfigSink) -> None:
        """Submit the configuration, then watch for changes until cancelled."""


def object_key(protocol: str, section: str, name: str) -> str:
    """`("http", "routers", "api")` → `"http.routers.api"` (section as in Traefik's YAML)."""
    return f"{protocol}.{section}.{name}"
